//! `gamegen balance`: PlayGen's balanced sampling (Alg. 2) over a collected dataset; writes a
//! balanced manifest that points at the original shards.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args as ClapArgs;
use gamegen_core::data::balance::{balance, mean_histograms};
use gamegen_core::data::stats::EpisodeStats;
use gamegen_native::collect::read_manifest;

#[derive(ClapArgs, Debug)]
#[command(after_help = "\
Reads DATA/manifest.json (from gamegen collect), clusters the episodes with k-means on their
features (position histogram, action mix, event rates), solves non-negative least squares for
per-cluster counts toward a uniform position/action target, samples that many episodes from
each cluster and writes OUT/manifest.json listing them (shards stay where they are).

Examples:
  gamegen balance --data data/traveler --out data/traveler-balanced
  gamegen balance --data data/pacman --out data/pacman-balanced --clusters 16 --json")]
pub struct Args {
    /// A collection directory (with manifest.json).
    #[arg(long)]
    data: PathBuf,
    /// Output directory for the balanced manifest.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 8)]
    clusters: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the result as JSON instead of histograms.
    #[arg(long)]
    json: bool,
}

fn bars(title: &str, h: &[f64]) -> String {
    let mut s = format!("{title}\n");
    for (i, v) in h.iter().enumerate() {
        s += &format!(
            "  {i:>2} {:>5.1}% {}\n",
            v * 100.0,
            "#".repeat((v * 60.0).round() as usize)
        );
    }
    s
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if a.clusters == 0 {
        anyhow::bail!("--clusters must be at least 1");
    }
    let m = read_manifest(&a.data)?;
    if m.episodes.is_empty() {
        anyhow::bail!("{}: the manifest lists no episodes", a.data.display());
    }
    let r = balance(&m.episodes, a.clusters, a.seed);
    let all: Vec<usize> = (0..m.episodes.len()).collect();
    let (p0, a0) = mean_histograms(&m.episodes, &all);
    let (p1, a1) = mean_histograms(&m.episodes, &r.selected);
    let data_dir = std::fs::canonicalize(&a.data)
        .with_context(|| format!("resolving {}", a.data.display()))?;
    let episodes: Vec<EpisodeStats> = r.selected.iter().map(|&i| m.episodes[i].clone()).collect();
    let out = serde_json::json!({
        "format": "gamegen-balanced",
        "version": 1,
        "data_dir": data_dir.display().to_string(),
        "game": m.config.game,
        "clusters": a.clusters,
        "seed": a.seed,
        "cluster_sizes": r.cluster_sizes,
        "counts": r.counts,
        "before": {"episodes": m.episodes.len(), "positions": p0, "actions": a0},
        "after": {"episodes": r.selected.len(), "positions": p1, "actions": a1},
        "episodes": episodes,
    });
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let path = a.out.join("manifest.json");
    gamegen_native::fsutil::write_atomic(&path, serde_json::to_string_pretty(&out)?.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    if a.json {
        let mut summary = out.clone();
        if let Some(o) = summary.as_object_mut() {
            o.remove("episodes");
        }
        println!("{summary}");
    } else {
        print!(
            "{}",
            bars(
                &format!("position histogram before ({} episodes)", m.episodes.len()),
                &p0
            )
        );
        print!(
            "{}",
            bars(
                &format!("position histogram after ({} episodes)", r.selected.len()),
                &p1
            )
        );
        print!("{}", bars("action mix before", &a0));
        print!("{}", bars("action mix after", &a1));
        println!(
            "cluster sizes {:?} -> counts {:?}; wrote {}",
            r.cluster_sizes,
            r.counts,
            path.display()
        );
    }
    Ok(())
}
