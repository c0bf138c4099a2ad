//! `gamegen validate`: levels 1-2 of SWF validation over files and directories, and with
//! `--ruffle` level 3: each file classified in the Ruffle web player (headless Chromium).

use anyhow::{Context, bail};
use clap::Args as ClapArgs;
use gamegen_core::swf::{Options, Verdict};
use gamegen_native::swf_batch::{self, FileResult};
use std::path::PathBuf;
use std::time::Instant;

#[derive(ClapArgs, Debug)]
#[command(after_help = "\
Levels: 1 header (the ByteCraft paper's \"fully broken\" check), 2 structure (length field,
decompression, every tag parsed by Ruffle's swf crate, End tag, frame counts, character ids,
AVM1/AVM2 scripts). Verdicts: valid (levels 1-2 pass), damaged (header ok, structure not),
broken (header fails). Beside the verdict, \"as written\" marks files that are valid without
anything forgiven: the End tag (code 0, length 0) ends the data exactly, length field and frame
count are right, no unknown tags, sprites framed the same way (`valid_as_written` in --json;
\"forgiven\" marks valid files that are not). See docs/swf.md.

Level 3 (--ruffle): every file that levels 1-2 do not call broken is played in the Ruffle web
player (npm @ruffle-rs/ruffle in headless chromium, driven by Node + playwright-core, no network)
and classified: broken, blank, static, animated or interactive. --report writes a self-contained
HTML report (class table, thumbnails) and the same data as JSON beside it. Tools are found via
--chromium / GAMEGEN_CHROMIUM (default /usr/bin/chromium), --node / GAMEGEN_NODE (default node)
and --www / GAMEGEN_WWW (the directory with node_modules; default: www/ next to the binary's or
the current directory's ancestors).

Prompt adherence (--prompt-check): each file's attributes are read from its tags (stage size,
frame rate, frame count, background, the timeline's objects with shape, colour and motion,
keyboard/mouse handlers) and scored against its prompt's claims: 1 per claim met, the objects
together counting as one claim. Prompts come from --prompt (one for all files), --prompts
(the prompt files `gamegen generate` reads, with the same ids; a `gamegen corpus synth`
manifest.jsonl gives exact attributes), else a manifest.jsonl beside the files. Files match a
prompt through results.jsonl beside them (`gamegen generate` output) or by name.

Exit status: 0 when every file was validated, whatever the verdicts; 1 on bad arguments, an
unreadable file or an internal error; 2 with --strict when any file is not valid.

Examples:
  gamegen validate out/000.swf
  gamegen validate ../shared/swf-corpus --json --jobs 2 > report.jsonl
  gamegen validate generated/ --strict --quiet
  gamegen validate --ruffle generated/ --report report.html --jobs 2
  gamegen validate --prompt-check generated/ --prompts data/bc-eval/manifest.jsonl --json")]
pub struct Args {
    /// SWF files, or directories searched recursively for *.swf.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print one JSON object per file (JSON Lines) instead of one text line per file.
    #[arg(long)]
    pub json: bool,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Exit with status 2 if any file is damaged or broken.
    #[arg(long)]
    pub strict: bool,
    /// Print only the summary (on stderr).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Skip AVM1/AVM2 script decoding (faster, level 2 then checks tags only).
    #[arg(long)]
    pub no_scripts: bool,
    /// Largest decompressed body accepted, in MiB, whatever the length field claims.
    #[arg(long, default_value_t = 64)]
    pub max_mib: usize,
    /// Level 3: classify every file in the Ruffle web player (headless chromium).
    #[arg(long)]
    pub ruffle: bool,
    /// With --ruffle: write this HTML report and a .json with the same data beside it.
    #[arg(long, requires = "ruffle")]
    pub report: Option<PathBuf>,
    /// With --ruffle: the chromium binary (else $GAMEGEN_CHROMIUM, else /usr/bin/chromium).
    #[arg(long, requires = "ruffle")]
    pub chromium: Option<PathBuf>,
    /// With --ruffle: the node binary (else $GAMEGEN_NODE, else `node` on PATH).
    #[arg(long, requires = "ruffle")]
    pub node: Option<PathBuf>,
    /// With --ruffle: the directory holding node_modules (else $GAMEGEN_WWW, else found).
    #[arg(long, requires = "ruffle")]
    pub www: Option<PathBuf>,
    /// Score each file against its prompt (see below) instead of validating it.
    #[arg(long, conflicts_with = "ruffle")]
    pub prompt_check: bool,
    /// With --prompt-check: the prompts (JSON Lines or a Ŧ-separated prompt file).
    #[arg(long, requires = "prompt_check")]
    pub prompts: Option<PathBuf>,
    /// With --prompt-check: one prompt for every file.
    #[arg(long, requires = "prompt_check", conflicts_with = "prompts")]
    pub prompt: Option<String>,
    /// With --ruffle: seconds one file may take before its page is recreated.
    #[arg(long, default_value_t = 30.0, requires = "ruffle")]
    pub ruffle_timeout: f64,
}

/// The level 1-2 options the flags ask for.
pub fn options(args: &Args) -> Options {
    Options {
        max_body_len: args.max_mib.saturating_mul(1 << 20),
        scripts: !args.no_scripts,
        ..Options::default()
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let jobs = super::worker_count(args.jobs)?;
    let paths = swf_batch::expand_paths(&args.paths).context("cannot list the input paths")?;
    if paths.is_empty() {
        bail!("no SWF files found under the given paths");
    }
    if args.ruffle {
        return super::validate_ruffle::run(&args, &paths, jobs);
    }
    if args.prompt_check {
        return super::validate_prompt::run(&args, &paths, jobs);
    }
    let opts = options(&args);
    let start = Instant::now();
    let mut lines = super::ResultLines::new(args.json, args.quiet);
    let (mut valid, mut damaged, mut broken, mut failed) = (0usize, 0usize, 0usize, 0usize);
    let mut as_written = 0usize;
    let mut total_bytes = 0u64;
    swf_batch::validate_all(&paths, jobs, &opts, |r| {
        total_bytes += r.bytes;
        if r.report.as_ref().is_some_and(|rep| rep.valid_as_written) {
            as_written += 1;
        }
        match r.verdict() {
            Some(Verdict::Valid) => valid += 1,
            Some(Verdict::Damaged) => damaged += 1,
            Some(Verdict::Broken) => broken += 1,
            None => failed += 1,
        }
        lines.emit(&r, text_line);
    });
    lines.finish()?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{} files: {valid} valid ({as_written} valid as written), {damaged} damaged, {broken} broken{}; {:.1} MB in {:.2} s ({:.1} MB/s, {jobs} jobs)",
        paths.len(),
        if failed > 0 {
            format!(", {failed} not validated")
        } else {
            String::new()
        },
        total_bytes as f64 / 1e6,
        secs,
        total_bytes as f64 / 1e6 / secs.max(1e-9),
    );
    if failed > 0 {
        bail!("{failed} file(s) could not be validated (see their error fields)");
    }
    if args.strict && (damaged > 0 || broken > 0) {
        std::process::exit(2);
    }
    Ok(())
}

/// One human-readable line: verdict, level, path, then the first error or a short summary.
pub fn text_line(r: &FileResult) -> String {
    let Some(rep) = &r.report else {
        return format!(
            "error    -   {}  {}",
            r.path,
            r.error.as_deref().unwrap_or("")
        );
    };
    let forgiven = rep
        .findings
        .iter()
        .find(|f| gamegen_core::swf::structure::breaks_as_written(f));
    let detail = match (rep.first_error.as_ref().or(forgiven), &rep.header) {
        (Some(f), _) => match (&f.tag_index, &f.tag_name) {
            (Some(i), Some(n)) => format!("tag {i} {n}: {}", f.message),
            _ => f.message.clone(),
        },
        (None, Some(h)) => format!(
            "{} v{}, {}x{} @ {} fps, {} frames, {} tags",
            h.signature,
            h.version,
            h.stage_width,
            h.stage_height,
            h.frame_rate,
            h.frame_count,
            rep.stats.tags
        ),
        (None, None) => String::new(),
    };
    let written = match (rep.verdict, rep.valid_as_written) {
        (_, true) => "as written",
        (Verdict::Valid, false) => "forgiven",
        _ => "-",
    };
    format!(
        "{:<8} L{} {:<10}  {}  {}",
        rep.verdict.as_str(),
        rep.level_reached,
        written,
        r.path,
        detail
    )
}
