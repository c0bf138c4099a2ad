//! `gamegen world vam train|eval`: the evaluation network (`core/src/world/evalnet.rs`: Valid
//! Action Model, valid numerical model and FID/FVD features in one small CNN) trained on real
//! frames of one game, and its accuracy on real held-out episodes.
//!
//! A directory holds `config.json` (format `gamegen-evalnet`: game, network config, training
//! facts and held-out accuracy) and `evalnet.safetensors`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::ElementConversion;
use burn::tensor::backend::Backend;
use gamegen_core::checkpoint;
use gamegen_core::data::collect::{MANIFEST_NAME, shard_name};
use gamegen_core::data::shard;
use gamegen_core::games::{GameKind, Position};
use gamegen_core::metrics::FMeasure;
use gamegen_core::rng::Rng;
use gamegen_core::world::eval::evalnet::{
    EvalNet, EvalNetConfig, batch_tensor, downsample, judge, loss, pair_input,
};
use serde::{Deserialize, Serialize};

use crate::collect::read_manifest;
use crate::fsutil::write_atomic;

pub const FORMAT: &str = "gamegen-evalnet";
pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "evalnet.safetensors";

/// One recorded episode, as the evaluation needs it.
pub struct RealEpisode {
    pub index: u64,
    /// RGB8 frames, full size.
    pub frames: Vec<Vec<u8>>,
    pub actions: Vec<u8>,
    pub scores: Vec<u32>,
    pub positions: Vec<(i64, i64)>,
    /// Per frame, the game's other positions ([`GameKind::num_aux_positions`] of them: Pong's
    /// right paddle and ball, Pac-Man's monster).
    pub aux: Vec<Vec<Position>>,
}

/// Read a `gamegen collect` directory (the manifest's game must be `game` when given); at most
/// `max` episodes, only those with at least `min_frames` frames.
pub fn read_episodes(
    dir: &Path,
    game: Option<GameKind>,
    max: usize,
    min_frames: usize,
) -> anyhow::Result<(GameKind, Vec<RealEpisode>)> {
    anyhow::ensure!(
        dir.join(MANIFEST_NAME).is_file(),
        "{} has no {MANIFEST_NAME} (collect episodes with gamegen collect)",
        dir.display()
    );
    let manifest = read_manifest(dir)?;
    let kind = manifest.config.game;
    if let Some(g) = game {
        anyhow::ensure!(
            g == kind,
            "{} holds {} episodes, not {}",
            dir.display(),
            kind.name(),
            g.name()
        );
    }
    let (w, h) = kind.frame_size();
    let fl = w * h * 3;
    let mut out = Vec::new();
    for e in manifest
        .episodes
        .iter()
        .filter(|e| e.frames as usize >= min_frames)
    {
        if out.len() >= max {
            break;
        }
        let path = dir.join(shard_name(e.index));
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let ep =
            shard::decode(&bytes).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
        anyhow::ensure!(
            ep.game == kind
                && ep.frames.len() == ep.actions.len() * fl
                && ep.aux.len() == ep.player.len() * kind.num_aux_positions(),
            "{}: not a {} episode of whole frames",
            path.display(),
            kind.name()
        );
        out.push(RealEpisode {
            index: e.index,
            frames: ep.frames.chunks(fl).map(|c| c.to_vec()).collect(),
            actions: ep.actions,
            scores: ep.scores,
            positions: ep.player.iter().map(|p| (p.x as i64, p.y as i64)).collect(),
            aux: match kind.num_aux_positions() {
                0 => vec![Vec::new(); ep.player.len()],
                k => ep.aux.chunks(k).map(|c| c.to_vec()).collect(),
            },
        });
    }
    Ok((kind, out))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalNetCheckpoint {
    pub format: String,
    pub game: GameKind,
    pub net: EvalNetConfig,
    pub steps: usize,
    pub batch: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub data: String,
    pub train_episodes: usize,
    pub held_out_episodes: usize,
    pub wall_seconds: f64,
    /// Accuracy on the held-out tenth of `data` (real frames).
    pub held_out: Option<RealAccuracy>,
}

/// How well the network judges real frame pairs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RealAccuracy {
    pub pairs: usize,
    /// VAM accuracy (ActAcc on real frames).
    pub act_acc: f64,
    pub prob_diff: f64,
    /// F-measure of "the score changed" (the numerical judge on real frames).
    pub score_f1: Option<f64>,
    pub score_counts: FMeasure,
    /// Accuracy of always guessing the most common action (chance level).
    pub majority_baseline: f64,
}

/// Options of `gamegen world vam train`.
#[derive(Clone, Debug)]
pub struct VamTrainOptions {
    pub game: GameKind,
    pub data: PathBuf,
    pub out: PathBuf,
    pub steps: usize,
    pub batch: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub max_episodes: usize,
}

/// Downsampled frames of an episode, in the network's input layout.
fn small_frames(cfg: &EvalNetConfig, ep: &RealEpisode) -> Vec<Vec<f32>> {
    ep.frames
        .iter()
        .map(|f| downsample(f, cfg.width, cfg.height, cfg.downsample))
        .collect()
}

/// Judge every real pair `(t-1, t)`, `t >= 1`, of the episodes.
pub fn real_accuracy<B: Backend>(
    net: &EvalNet<B>,
    cfg: &EvalNetConfig,
    episodes: &[RealEpisode],
    device: &B::Device,
) -> RealAccuracy {
    let mut acc = RealAccuracy::default();
    let (mut right, mut pd) = (0usize, 0f64);
    let mut counts = vec![0usize; cfg.num_actions];
    for ep in episodes {
        let small = small_frames(cfg, ep);
        for chunk in (1..ep.actions.len()).collect::<Vec<_>>().chunks(128) {
            let pairs: Vec<Vec<f32>> = chunk
                .iter()
                .map(|&t| pair_input(&small[t - 1], &small[t]))
                .collect();
            for (j, &t) in judge(net, cfg, &pairs, device).iter().zip(chunk) {
                let a = ep.actions[t] as usize;
                if a >= cfg.num_actions {
                    continue;
                }
                counts[a] += 1;
                acc.pairs += 1;
                right += usize::from(j.predicted_action() == a);
                pd += j.prob_diff(a) as f64;
                acc.score_counts
                    .add(j.score_changed >= 0.5, ep.scores[t] != ep.scores[t - 1]);
            }
        }
    }
    let n = acc.pairs.max(1) as f64;
    acc.act_acc = right as f64 / n;
    acc.prob_diff = pd / n;
    acc.score_f1 = acc.score_counts.f1();
    acc.majority_baseline = counts.iter().copied().max().unwrap_or(0) as f64 / n;
    acc
}

/// Train an evaluation network on real frames; writes `config.json` and the weights.
pub fn train<B: Backend>(
    device: &B::Device,
    opts: &VamTrainOptions,
    progress: &dyn Fn(usize, usize, f32),
) -> anyhow::Result<EvalNetCheckpoint> {
    anyhow::ensure!(
        (1..=1_000_000).contains(&opts.steps),
        "--steps must be in 1..=1000000"
    );
    anyhow::ensure!(
        (2..=4096).contains(&opts.batch),
        "--batch must be in 2..=4096"
    );
    anyhow::ensure!(
        opts.learning_rate.is_finite() && opts.learning_rate > 0.0,
        "--lr must be a positive number"
    );
    let start = Instant::now();
    let (game, episodes) = read_episodes(&opts.data, Some(opts.game), opts.max_episodes, 2)?;
    anyhow::ensure!(
        episodes.len() >= 2,
        "{} has fewer than 2 episodes of 2 frames or more",
        opts.data.display()
    );
    let held = (episodes.len() / 10).max(1);
    let (train_eps, held_eps) = episodes.split_at(episodes.len() - held);
    let (w, h) = game.frame_size();
    let cfg = EvalNetConfig::small(w, h, game.num_actions());
    let valid = fit::<B>(device, &cfg, train_eps, opts, progress)?;
    let held_out = real_accuracy(&valid, &cfg, held_eps, device);
    let ck = EvalNetCheckpoint {
        format: FORMAT.to_string(),
        game,
        net: cfg,
        steps: opts.steps,
        batch: opts.batch,
        learning_rate: opts.learning_rate,
        seed: opts.seed,
        data: opts.data.display().to_string(),
        train_episodes: train_eps.len(),
        held_out_episodes: held_eps.len(),
        wall_seconds: start.elapsed().as_secs_f64(),
        held_out: Some(held_out),
    };
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    write_atomic(
        &opts.out.join(WEIGHTS_FILE),
        &checkpoint::to_safetensors(&valid)?,
    )?;
    write_atomic(
        &opts.out.join(CONFIG_FILE),
        serde_json::to_string_pretty(&ck)?.as_bytes(),
    )?;
    Ok(ck)
}

/// Train a fresh network of shape `cfg` on the pairs of `train_eps` (AdamW, linear decay).
pub fn fit<B: Backend>(
    device: &B::Device,
    cfg: &EvalNetConfig,
    train_eps: &[RealEpisode],
    opts: &VamTrainOptions,
    progress: &dyn Fn(usize, usize, f32),
) -> anyhow::Result<EvalNet<B>> {
    let cfg = cfg.clone();
    let small: Vec<Vec<Vec<f32>>> = train_eps.iter().map(|e| small_frames(&cfg, e)).collect();
    let index: Vec<(usize, usize)> = train_eps
        .iter()
        .enumerate()
        .flat_map(|(i, e)| (1..e.actions.len()).map(move |t| (i, t)))
        .filter(|&(i, t)| (train_eps[i].actions[t] as usize) < cfg.num_actions)
        .collect();
    anyhow::ensure!(
        !index.is_empty(),
        "no training pairs in {}",
        opts.data.display()
    );
    let changes = index
        .iter()
        .filter(|&&(i, t)| train_eps[i].scores[t] != train_eps[i].scores[t - 1])
        .count();
    let pos_weight =
        (((index.len() - changes) as f64 / changes.max(1) as f64).sqrt() as f32).clamp(1.0, 20.0);

    B::seed(device, opts.seed);
    let mut net = cfg.init::<Autodiff<B>>(device)?;
    let mut optim = AdamWConfig::new().with_weight_decay(1e-4).init();
    let mut rng = Rng::for_stream(opts.seed, 0x0056_414d);
    for step in 0..opts.steps {
        let mut pairs = Vec::with_capacity(opts.batch);
        let mut actions = Vec::with_capacity(opts.batch);
        let mut changed = Vec::with_capacity(opts.batch);
        for _ in 0..opts.batch {
            let (i, t) = index[rng.below(index.len() as u64) as usize];
            pairs.push(pair_input(&small[i][t - 1], &small[i][t]));
            actions.push(train_eps[i].actions[t]);
            changed.push(train_eps[i].scores[t] != train_eps[i].scores[t - 1]);
        }
        let out = net.forward(batch_tensor::<Autodiff<B>>(&cfg, &pairs, device));
        let l = loss(&out, &actions, &changed, pos_weight, 1.0);
        let value: f32 = l.clone().into_scalar().elem();
        anyhow::ensure!(
            value.is_finite(),
            "training diverged at step {step} (loss {value})"
        );
        let grads = GradientsParams::from_grads(l.backward(), &net);
        // Linear decay to a tenth.
        let lr = opts.learning_rate * (1.0 - 0.9 * step as f64 / opts.steps as f64);
        net = optim.step(lr, net, grads);
        if step % 10 == 0 || step + 1 == opts.steps {
            progress(step + 1, opts.steps, value);
        }
    }
    Ok(net.valid())
}

/// Load an evaluation network directory; `game`, when given, must match.
pub fn load<B: Backend>(
    dir: &Path,
    game: Option<GameKind>,
    device: &B::Device,
) -> anyhow::Result<(EvalNetCheckpoint, EvalNet<B>)> {
    let cfg_path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&cfg_path).map_err(|_| {
        anyhow::anyhow!(
            "no evaluation network at {} (train one: gamegen world vam train --game {} --data DIR --out {})",
            dir.display(),
            game.map_or("GAME", |g| g.name()),
            dir.display()
        )
    })?;
    let ck: EvalNetCheckpoint = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not an evaluation network config: {e}",
            cfg_path.display()
        )
    })?;
    anyhow::ensure!(
        ck.format == FORMAT,
        "{}: format is {:?}, expected {FORMAT:?}",
        cfg_path.display(),
        ck.format
    );
    if let Some(g) = game {
        anyhow::ensure!(
            ck.game == g,
            "{} is an evaluation network for {}, not {}",
            dir.display(),
            ck.game.name(),
            g.name()
        );
    }
    anyhow::ensure!(
        ck.net.width == ck.game.frame_size().0
            && ck.net.height == ck.game.frame_size().1
            && ck.net.num_actions == ck.game.num_actions(),
        "{}: the network's frame size or action count does not fit {}",
        cfg_path.display(),
        ck.game.name()
    );
    let wpath = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&wpath).with_context(|| format!("reading {}", wpath.display()))?;
    let net = checkpoint::from_safetensors(ck.net.init::<B>(device)?, bytes)
        .with_context(|| format!("{}", wpath.display()))?;
    Ok((ck, net))
}

/// The model card of a trained evaluation network (`README.md`), from its checkpoint and its
/// accuracy on a separate real evaluation set, with the Hugging Face front matter every card
/// in `models/` carries (licence, library, task).
pub fn model_card(ck: &EvalNetCheckpoint, eval_set: Option<(&str, &RealAccuracy)>) -> String {
    let eval_arg = eval_set.map_or(String::new(), |(dir, _)| format!(" --eval-data {dir}"));
    let row = |name: &str, a: &RealAccuracy| {
        format!(
            "| {name} | {} | {:.3} | {:.3} | {:.3} | {} |\n",
            a.pairs,
            a.act_acc,
            a.majority_baseline,
            a.prob_diff,
            a.score_f1.map_or("n/a".into(), |f| format!("{f:.3}"))
        )
    };
    let mut s = format!(
        "---\nlicense: other\nlicense_name: mit-or-apache-2.0\nlibrary_name: burn\n\
pipeline_tag: other\ntags:\n  - gamegen\n  - burn\n  - evaluation\n  - {g}\n---\n\n\
# eval-{g}: evaluation network for {g}\n\n\
One small CNN (`core/src/world/evalnet.rs`, {p} parameters) over two neighbouring frames \
(downsampled {d}x, plus their difference) with two heads: the **Valid Action Model** (which \
action turned frame t-1 into frame t; ActAcc, ProbDiff) and the **valid numerical model** (did \
the score change; NumCon), and a {f}-wide feature layer used for gamegen's own FID/FVD (not \
comparable with Inception-based numbers). Used by `gamegen world eval`.\n\n\
- data: `{data}` ({te} episodes trained on, the last {he} held out)\n\
- steps: {steps} x batch {batch}, AdamW lr {lr} (linear decay to a tenth), seed {seed}\n\
- wall time: {wall:.0} s on the shared 2-core CPU (nice 19, a training job beside it)\n\
- made with: `gamegen world vam train --game {g} --data {data}{eval_arg} --out models/eval-{g} --steps {steps}`\n\n\
## Accuracy on real frames\n\n\
| frames | pairs | ActAcc | chance (majority action) | ProbDiff | score-change F1 |\n|---|---|---|---|---|---|\n",
        g = ck.game.name(),
        p = param_estimate(&ck.net),
        d = ck.net.downsample,
        f = ck.net.feature_dim,
        data = ck.data,
        te = ck.train_episodes,
        he = ck.held_out_episodes,
        steps = ck.steps,
        batch = ck.batch,
        lr = ck.learning_rate,
        seed = ck.seed,
        wall = ck.wall_seconds,
    );
    if let Some(a) = &ck.held_out {
        s.push_str(&row("held-out tenth of the training data", a));
    }
    if let Some((dir, a)) = eval_set {
        s.push_str(&row(&format!("`{dir}` (separate set)"), a));
    }
    s.push_str(
        "\nChance = always answering the most common action. Re-measure with \
`gamegen world vam eval --model models/eval-GAME --data DIR`.\n",
    );
    s
}

fn param_estimate(cfg: &EvalNetConfig) -> usize {
    let mut cin = 9;
    let mut p = 0;
    let (mut w, mut h) = cfg.input_size();
    for &c in &cfg.channels {
        p += cin * c * 9 + c;
        cin = c;
        w = w.div_ceil(2);
        h = h.div_ceil(2);
    }
    p + (cin * w * h + 1) * cfg.feature_dim + (cfg.feature_dim + 1) * (cfg.num_actions + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gamegen_core::games;

    /// Real Traveler episodes with random actions held for a few frames.
    fn episodes(n: usize, len: usize, seed: u64) -> Vec<RealEpisode> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|i| {
                let mut g = games::new_game(GameKind::Traveler, None).unwrap();
                let first = g.reset(seed * 100 + i as u64);
                let mut ep = RealEpisode {
                    index: i as u64,
                    frames: vec![first.frame],
                    actions: vec![gamegen_core::data::episode::NO_ACTION],
                    scores: vec![first.score],
                    positions: vec![(first.player.x as i64, first.player.y as i64)],
                    aux: vec![first.aux],
                };
                let mut a = 0u8;
                for t in 1..len {
                    if t % 3 == 1 {
                        a = rng.below(3) as u8;
                    }
                    let s = g.step(a);
                    ep.frames.push(s.frame);
                    ep.actions.push(a);
                    ep.scores.push(s.score);
                    ep.positions.push((s.player.x as i64, s.player.y as i64));
                    ep.aux.push(s.aux);
                }
                ep
            })
            .collect()
    }

    /// The shipped Traveler VAM (`models/eval-traveler`) tells the actions apart on real
    /// episodes it has never seen far better than chance.
    #[test]
    fn shipped_vam_on_real_frames_beats_chance_by_far() {
        type B = burn::backend::NdArray;
        let dev = Default::default();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/eval-traveler");
        let (ck, net) = load::<B>(&dir, Some(GameKind::Traveler), &dev).unwrap();
        let acc = real_accuracy(&net, &ck.net, &episodes(2, 40, 2), &dev);
        assert_eq!(acc.pairs, 78);
        assert!(
            acc.act_acc > 0.9 && acc.act_acc > acc.majority_baseline + 0.4,
            "{acc:?}"
        );
        // The wrong game is a clear error.
        let err = load::<B>(&dir, Some(GameKind::Pong), &dev).err().unwrap();
        assert!(err.to_string().contains("not pong"), "{err}");
    }

    /// `fit` runs and its output loads into the same shape (quality is tested above).
    #[test]
    fn fit_runs_a_few_steps() {
        type B = burn::backend::NdArray;
        let dev = Default::default();
        let (w, h) = GameKind::Traveler.frame_size();
        let cfg = EvalNetConfig::small(w, h, 3);
        let opts = VamTrainOptions {
            game: GameKind::Traveler,
            data: PathBuf::from("(in memory)"),
            out: PathBuf::new(),
            steps: 3,
            batch: 4,
            learning_rate: 3e-3,
            seed: 1,
            max_episodes: 100,
        };
        let net = fit::<B>(&dev, &cfg, &episodes(2, 6, 1), &opts, &|_, _, _| {}).unwrap();
        let acc = real_accuracy(&net, &cfg, &episodes(1, 6, 2), &dev);
        assert_eq!(acc.pairs, 5);
    }
}
