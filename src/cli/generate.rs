//! `gamegen generate`: sample SWF files from a ByteCraft checkpoint.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args as ClapArgs;
use gamegen_core::bytecraft::generate::GenerationConfig;
use gamegen_core::bytecraft::prompts::Prompt;
use gamegen_core::bytecraft::sampler::SamplingConfig;
use gamegen_native::backend::BackendChoice;
use gamegen_native::bytecraft::Checkpoint;
use gamegen_native::bytecraft::generate::{JobConfig, Shard, run as run_job};
use gamegen_native::bytecraft::tokenizer::TextTokenizer;
use gamegen_native::{progress, with_backend};

#[derive(ClapArgs, Debug)]
#[command(after_help = "Examples:
  gamegen generate --model tests/fixtures/bytecraft/tokenizer_layout --prompt 'a pong game' -n 2 --max-new 64 --out /tmp/gen
  gamegen generate --model ByteCraft --prompts prompts.txt -n 10 --temperature 0.1 --min-p 0.05 --max-new 32768 --batch 25 --out out/ --shard 0/4

A prompt file separates prompts with lines holding only `Ŧ`; a .jsonl file (or one starting
with `{`) holds one {\"id\": ..., \"prompt\": ...} (or structured fields with \"kind\") per
line; a `gamegen corpus synth` manifest.jsonl is such a file. Prompts are rendered with the
checkpoint's own chat template (tokenizer_config.json), then `Bytes: `.
All samples of all prompts form one queue decoded --batch at a time; a finished sample's slot
is refilled at once (continuous batching), and the files do not depend on --batch or --shard.
Re-running skips the samples already in OUT/results.jsonl.")]
pub struct Args {
    /// Checkpoint directory (config.json, weights, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// One prompt given on the command line (id `p0`).
    #[arg(long, conflicts_with = "prompts", required_unless_present = "prompts")]
    prompt: Option<String>,
    /// Prompt file: text separated by `Ŧ` lines, or JSON Lines when it ends in .jsonl or
    /// starts with `{`.
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Samples per prompt.
    #[arg(short = 'n', long = "samples", default_value_t = 10)]
    samples: usize,
    /// Output directory: one .swf per sample plus results.jsonl.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = SamplingConfig::RECOMMENDED.temperature)]
    temperature: f32,
    #[arg(long, default_value_t = SamplingConfig::RECOMMENDED.top_p)]
    top_p: f32,
    #[arg(long, default_value_t = SamplingConfig::RECOMMENDED.min_p)]
    min_p: f32,
    /// 0 = off.
    #[arg(long, default_value_t = SamplingConfig::RECOMMENDED.top_k)]
    top_k: usize,
    #[arg(long, default_value_t = 32768)]
    max_new: usize,
    /// Extra stop token ids (the eos byte token always stops).
    #[arg(long, value_delimiter = ',')]
    stop: Vec<u32>,
    /// Let text tokens be drawn too (by default only byte tokens may be).
    #[arg(long, conflicts_with = "constrained")]
    allow_text: bool,
    /// Constrained decoding under the SWF grammar of the synthetic profile: byte tokens that
    /// would break the file (down to RECT, MATRIX, shape record and PlaceObject2 bits) or leave
    /// too few tokens to finish it are masked, End comes only once a visible shape was shown,
    /// and finished files get their lengths and frame counts patched: every sample that ends
    /// is valid as written. results.jsonl records the probability mass masked.
    #[arg(long)]
    constrained: bool,
    /// Run seed; each sample's seed derives from it, the prompt id and the sample index.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sequences in flight (KV-cache rows); a finished sample's row is refilled from the
    /// queue of all prompts' samples.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// System prompt (default: Qwen's).
    #[arg(long)]
    system: Option<String>,
    /// Handle prompts i, i+N, ... only ("i/N"); defaults to the Slurm array or Kubernetes
    /// indexed-job environment (JOB_COMPLETION_INDEX with GAMEGEN_SHARDS), else everything.
    #[arg(long)]
    shard: Option<String>,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    backend: BackendChoice,
}

fn load_prompts(a: &Args) -> anyhow::Result<Vec<Prompt>> {
    if let Some(text) = &a.prompt {
        anyhow::ensure!(!text.trim().is_empty(), "--prompt is empty");
        return Ok(vec![Prompt {
            id: "p0".to_string(),
            text: text.clone(),
        }]);
    }
    let path = a
        .prompts
        .as_ref()
        .expect("clap requires --prompt or --prompts");
    Ok(super::manifest::read_prompts(path)?
        .into_iter()
        .map(|r| r.prompt)
        .collect())
}

pub fn run(a: Args) -> anyhow::Result<()> {
    a.backend.ensure_usable()?;
    anyhow::ensure!(a.samples > 0, "-n must be positive");
    anyhow::ensure!(a.max_new > 0, "--max-new must be positive");
    let sampling = SamplingConfig {
        temperature: a.temperature,
        top_p: a.top_p,
        min_p: a.min_p,
        top_k: a.top_k,
    };
    sampling.validate()?;
    if a.constrained {
        let least = gamegen_core::swf::grammar::mask::SwfGrammar::min_tokens();
        anyhow::ensure!(
            a.max_new >= least,
            "--constrained needs --max-new >= {least} (the shortest finished file)"
        );
    }
    let shard = match (&a.shard, Shard::from_env()) {
        (Some(s), _) => Shard::parse(s).map_err(anyhow::Error::msg)?,
        (None, Some(env)) => env.map_err(anyhow::Error::msg)?,
        (None, None) => Shard::ALL,
    };
    let prompts = load_prompts(&a)?;
    let tokenizer = TextTokenizer::open(&a.model).context("cannot open tokenizer")?;
    let checkpoint = Checkpoint::open(&a.model).context("cannot open checkpoint")?;
    let cfg = JobConfig {
        out: a.out.clone(),
        samples_per_prompt: a.samples,
        seed: a.seed,
        batch: a.batch,
        system_prompt: a.system.clone(),
        generation: GenerationConfig {
            max_new: a.max_new,
            sampling,
            stop: a.stop.clone(),
            allowed: None,
        },
        allow_text: a.allow_text,
        shard,
        constrained: a.constrained,
    };
    let owned = (0..prompts.len()).filter(|&i| shard.owns(i)).count();
    let pb = progress::bar((owned * a.samples * a.max_new) as u64, "generate");
    let summary = with_backend!(a.backend, |B, device| {
        let (_, model) = checkpoint
            .into_model::<B>(&device)
            .context("cannot load model")?;
        run_job(&model, &tokenizer, &prompts, &cfg, &device, |n| {
            pb.inc(n as u64)
        })?
    });
    pb.finish_and_clear();
    println!(
        "{} sample(s) generated ({} valid, {} valid as written), {} already done; {} tokens in {:.1} s ({:.1} tokens/s); results in {}",
        summary.generated,
        summary.valid,
        summary.valid_as_written,
        summary.skipped,
        summary.tokens,
        summary.seconds,
        summary.tokens_per_second(),
        a.out.join("results.jsonl").display()
    );
    Ok(())
}
