//! Subcommand definitions. Add a command: a file here with a clap `Args` struct and a `run`
//! function, one variant in [`Command`], one arm in [`run`].

mod ae;
mod backends;
mod balance;
mod bench;
mod bytecraft;
mod collect;
mod corpus;
mod generate;
mod manifest;
mod play;
mod plot;
mod repair;
mod serve;
mod similarity;
mod validate;
mod validate_prompt;
mod validate_ruffle;
mod world;

use clap::{Parser, Subcommand};

/// Neural game engines and ByteCraft SWF generation, on one Burn core.
#[derive(Parser, Debug)]
#[command(name = "gamegen", version = env!("GAMEGEN_LONG_VERSION"), long_version = env!("GAMEGEN_LONG_VERSION"))]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the compute backends usable now, with device names.
    Backends(backends::Args),
    /// Play a real game (traveler, pong, pacman) on a scripted action string, write a GIF.
    Play(play::Args),
    /// Record episodes of a real game with PlayGen diverse agents into compressed shards.
    Collect(collect::Args),
    /// Balanced sampling (PlayGen Alg. 2): k-means + NNLS over a collected dataset.
    Balance(balance::Args),
    /// Serve the demo pages (127.0.0.1 only unless --host is given).
    Serve(serve::Args),
    /// The frame autoencoder: the first model through the whole pipe.
    #[command(subcommand)]
    Ae(ae::Command),
    /// Validate SWF files: header and structure levels, one result per file.
    Validate(validate::Args),
    /// SWF datasets: procedural synthesis.
    #[command(subcommand)]
    Corpus(corpus::Command),
    /// Fix the length field and frame count of SWF files in place.
    Repair(repair::Args),
    /// Jaro-Winkler similarity of generated files to a reference set and to their true files.
    Similarity(similarity::Args),
    /// ByteCraft model debug commands: logits and greedy decoding of a Qwen2 checkpoint.
    #[command(subcommand)]
    Bytecraft(bytecraft::Command),
    /// Sample SWF files from a ByteCraft checkpoint: one .swf per sample plus results.jsonl.
    Generate(generate::Args),
    /// Neural game engines: train on collected episodes, roll out from a real first frame.
    #[command(subcommand)]
    World(world::Command),
    /// Redraw a run's pictures (loss.png, by-length.png) from its logs.
    Plot(plot::Args),
    /// Measurements of the engine's own steps (training-step time), to set beside peers'.
    #[command(subcommand)]
    Bench(bench::Command),
}

/// `--jobs`: at least 1, default all cores.
fn worker_count(jobs: Option<usize>) -> anyhow::Result<usize> {
    match jobs {
        Some(0) => anyhow::bail!("--jobs must be at least 1"),
        Some(j) => Ok(j),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// One stdout line per result, as JSON (`--json`) or text, nothing with `--quiet`. The first
/// write error stops further writing and is returned by [`ResultLines::finish`], except a
/// closed pipe (`| head`), which just ends the output.
struct ResultLines {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    json: bool,
    quiet: bool,
    error: Option<std::io::Error>,
}

impl ResultLines {
    fn new(json: bool, quiet: bool) -> Self {
        Self {
            out: std::io::BufWriter::new(std::io::stdout().lock()),
            json,
            quiet,
            error: None,
        }
    }

    fn emit<T: serde::Serialize>(&mut self, value: &T, text: impl FnOnce(&T) -> String) {
        use std::io::Write;
        if self.quiet || self.error.is_some() {
            return;
        }
        let res = if self.json {
            serde_json::to_string(value)
                .map_err(std::io::Error::other)
                .and_then(|s| writeln!(self.out, "{s}"))
        } else {
            writeln!(self.out, "{}", text(value))
        };
        if let Err(e) = res {
            self.error = Some(e);
        }
    }

    fn finish(mut self) -> anyhow::Result<()> {
        use anyhow::Context;
        use std::io::Write;
        self.out.flush().ok();
        match self.error {
            Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(e).context("cannot write the results")
            }
            _ => Ok(()),
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Backends(a) => backends::run(a),
        Command::Play(a) => play::run(a),
        Command::Collect(a) => collect::run(a),
        Command::Balance(a) => balance::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Ae(c) => ae::run(c),
        Command::Validate(a) => validate::run(a),
        Command::Corpus(c) => corpus::run(c),
        Command::Repair(a) => repair::run(a),
        Command::Similarity(a) => similarity::run(a),
        Command::Bytecraft(c) => bytecraft::run(c),
        Command::Generate(a) => generate::run(a),
        Command::World(c) => world::run(c),
        Command::Bench(c) => bench::run(c),
        Command::Plot(a) => plot::run(a),
    }
}
