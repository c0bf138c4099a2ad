//! `gamegen validate --ruffle`: levels 1-2 first (fast, in Rust), then every file they do not
//! call broken through the Ruffle web player, then the classes, the report and the summary.

use super::validate::{Args, options};
use anyhow::{Context, bail};
use gamegen_core::swf::Verdict;
use gamegen_native::ruffle_classify::{self, Class, Config, Job, Observation};
use gamegen_native::ruffle_report::{FileRow, Report};
use gamegen_native::swf_batch::{self, FileResult};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

pub fn run(args: &Args, paths: &[PathBuf], jobs: usize) -> anyhow::Result<()> {
    if !args.ruffle_timeout.is_finite() || args.ruffle_timeout <= 0.0 {
        bail!("--ruffle-timeout must be a positive number of seconds");
    }
    // Find the tools before any work, so a missing browser costs nothing and says so.
    let cfg = Config::resolve(
        args.chromium.clone(),
        args.node.clone(),
        args.www.clone(),
        jobs,
        (args.ruffle_timeout * 1000.0) as u64,
    )?;
    let start = Instant::now();
    let opts = options(args);
    let mut levels: Vec<FileResult> = Vec::with_capacity(paths.len());
    swf_batch::validate_all(paths, jobs, &opts, |r| levels.push(r));

    // Files levels 1-2 call broken never reach the player (it would only show #panic).
    let mut job_of_file: Vec<Option<usize>> = vec![None; levels.len()];
    let mut ruffle_jobs = Vec::new();
    for (i, r) in levels.iter().enumerate() {
        let Some(rep) = &r.report else { continue };
        if rep.verdict == Verdict::Broken {
            continue;
        }
        let (width, height, fps) = rep.header.as_ref().map_or((550.0, 400.0, 24.0), |h| {
            (h.stage_width, h.stage_height, h.frame_rate)
        });
        job_of_file[i] = Some(ruffle_jobs.len());
        ruffle_jobs.push(Job {
            path: paths[i].clone(),
            width,
            height,
            fps,
        });
    }
    let mut seen: Vec<Option<Observation>> = vec![None; ruffle_jobs.len()];
    let pb = gamegen_native::progress::bar(ruffle_jobs.len() as u64, "ruffle");
    let mut ruffle_start = Instant::now();
    if !ruffle_jobs.is_empty() {
        let mut done = 0u64;
        ruffle_classify::run(
            &cfg,
            &ruffle_jobs,
            || ruffle_start = Instant::now(),
            |id, obs| {
                seen[id] = Some(obs);
                done += 1;
                pb.set_position(done);
            },
        )?;
    }
    pb.finish_and_clear();
    let ruffle_secs = if ruffle_jobs.is_empty() {
        0.0
    } else {
        ruffle_start.elapsed().as_secs_f64()
    };

    let mut failed = 0usize;
    let mut not_valid = 0usize;
    let rows: Vec<FileRow> = levels
        .into_iter()
        .zip(job_of_file)
        .map(|(r, job)| {
            let obs = job.and_then(|j| seen[j].take());
            let rep = r.report.as_ref();
            if rep.is_none() {
                failed += 1;
            }
            if rep.is_some_and(|p| p.verdict != Verdict::Valid) {
                not_valid += 1;
            }
            let (class, reason, broken_by) = match (&obs, rep) {
                (Some(o), _) => {
                    let (c, why) = ruffle_classify::classify(o);
                    (c, why, (c == Class::Broken).then_some("ruffle"))
                }
                (None, Some(p)) => (
                    Class::Broken,
                    p.first_error
                        .as_ref()
                        .map_or("levels 1-2: broken".into(), |f| f.message.clone()),
                    Some("header"),
                ),
                (None, None) => (
                    Class::Broken,
                    r.error.clone().unwrap_or_default(),
                    Some("unreadable"),
                ),
            };
            FileRow {
                path: r.path,
                bytes: r.bytes,
                verdict: rep.map(|p| p.verdict.as_str().to_string()),
                valid_as_written: rep.map(|p| p.valid_as_written),
                level_reached: rep.map(|p| p.level_reached),
                first_error: rep.and_then(|p| p.first_error.as_ref().map(|f| f.message.clone())),
                class,
                reason,
                broken_by,
                ruffle: obs,
            }
        })
        .collect();

    if !args.quiet {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        for row in &rows {
            let res = if args.json {
                serde_json::to_string(row)
                    .map_err(std::io::Error::other)
                    .and_then(|s| writeln!(out, "{s}"))
            } else {
                writeln!(
                    out,
                    "{:<11} {:<8} {}  {}",
                    row.class.as_str(),
                    row.verdict.as_deref().unwrap_or("error"),
                    row.path,
                    row.reason
                )
            };
            match res {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                other => other.context("cannot write the results")?,
            }
        }
        out.flush().ok();
    }
    let report = Report::new(rows, start.elapsed().as_secs_f64(), ruffle_secs, cfg.jobs);
    if let Some(html) = &args.report {
        let json = report
            .write(html)
            .with_context(|| format!("cannot write the report {}", html.display()))?;
        eprintln!("report: {} and {}", html.display(), json.display());
    }
    let s = &report.summary;
    eprint!("{}", report.table_text());
    eprintln!(
        "{} files ({} through Ruffle) in {:.1} s; Ruffle {:.1} s, {:.3} s per file, {} pages",
        s.files, s.ruffle_files, s.wall_seconds, s.ruffle_seconds, s.seconds_per_file, s.jobs
    );
    if failed > 0 {
        bail!("{failed} file(s) could not be validated (see their reason fields)");
    }
    if args.strict && not_valid > 0 {
        std::process::exit(2);
    }
    Ok(())
}
