//! `gamegen plot`: redraw a run's pictures from the logs and reports beside them.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args as ClapArgs;
use gamegen_native::bytecraft::train as bytecraft_train;
use gamegen_native::world::{eval, train as world_train};

#[derive(ClapArgs, Debug)]
#[command(after_help = "Each directory is one of:
  a `bytecraft train` run (tokenizer.json + train-log.jsonl): loss.png
  a `world train` run (train-log.jsonl): loss.png
  a `world eval --sweep` report (eval.json): by-length.png and its caption in eval.md

Examples:
  gamegen plot models/bytecraft-mini models/world-pong
  gamegen plot docs/eval/*-sweep")]
pub struct Args {
    /// Run or report directories.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    for dir in &a.dirs {
        let what = if dir.join("eval.json").is_file() {
            eval::replot(dir)
                .with_context(|| format!("cannot redraw {}", dir.display()))?
                .then_some("by-length.png")
        } else if dir.join("tokenizer.json").is_file()
            && dir.join(bytecraft_train::LOG_FILE).is_file()
        {
            bytecraft_train::plot(dir)
                .with_context(|| format!("cannot redraw {}", dir.display()))?;
            Some(bytecraft_train::LOSS_PNG)
        } else {
            world_train::replot(dir)
                .with_context(|| format!("cannot redraw {}", dir.display()))?
                .then_some(world_train::LOSS_PNG)
        };
        match what {
            Some(file) => println!("{}", dir.join(file).display()),
            None => anyhow::bail!(
                "{}: nothing to plot (no train-log.jsonl, and no eval.json with a length sweep)",
                dir.display()
            ),
        }
    }
    Ok(())
}
