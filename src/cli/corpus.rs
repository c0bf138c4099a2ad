//! `gamegen corpus`: datasets of SWF files.

use anyhow::{Context, bail};
use clap::{Args as ClapArgs, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Procedural valid SWF animations and small AVM1 games, each with a ByteCraft-format
    /// prompt, paraphrases and the attribute record it was built from.
    Synth(SynthArgs),
}

#[derive(ClapArgs, Debug)]
#[command(after_help = "\
Writes OUT/000000.swf (uncompressed FWS), OUT/000000.json (record: attributes, structured prompt,
paraphrases) per file and OUT/manifest.jsonl. The same --seed gives the same bytes; files already
present are kept, so an interrupted run resumes. Every file passes `gamegen validate`.

Examples:
  gamegen corpus synth --count 100 --out data/synth --seed 1
  gamegen corpus synth --count 10000 --out data/synth --seed 1 --json")]
pub struct SynthArgs {
    /// Number of files.
    #[arg(long)]
    pub count: u64,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Corpus seed: file i is generated from (seed, i) alone.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Synth(a) => synth(a),
    }
}

fn synth(a: SynthArgs) -> anyhow::Result<()> {
    if a.count == 0 {
        bail!("--count must be at least 1");
    }
    let pb = gamegen_native::progress::bar(a.count, "synth");
    let summary =
        gamegen_native::swf_synth::write_corpus(&a.out, a.seed, a.count, |i| pb.set_position(i))
            .with_context(|| format!("cannot write the corpus to {}", a.out.display()))?;
    pb.finish_and_clear();
    if a.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "{} files in {} ({} written, {} already there), {:.1} KB of SWF",
            a.count,
            a.out.display(),
            summary.written,
            summary.skipped,
            summary.bytes as f64 / 1024.0
        );
    }
    Ok(())
}
