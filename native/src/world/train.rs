//! `gamegen world train`: PlayGen's two stages on a collected dataset, with periodic atomic
//! checkpoints, a JSON-lines log, loss curves as PNG, and exact resume after a kill.
//!
//! Stage one trains the VAE on single frames; stage two freezes it, encodes every frame once
//! (the latent cache) and trains the dynamics model with diffusion forcing on clips drawn
//! through the long-tail sampler; stage three refits LogicNet on play-time states. A checkpoint
//! is the weights it changed (`vae.safetensors` or `dynamics.safetensors`),
//! `optimizer-state.bin` (the AdamW moments of every stage that ran and the long-tail sampler)
//! and `config.json` with the step counts and the log's length, the commit point: the other
//! files are staged under hidden names first and moved to their final names after it
//! (`fsutil::write_staged`), so a run killed anywhere resumes from one whole checkpoint. Every
//! random draw is a pure function of (seed, stage, step), so a resumed run continues exactly
//! as an uninterrupted one (tested bit for bit, `tests/world_crash_safety.rs`).
//!
//! `--devices N` trains the VAE and the dynamics model data-parallel (each batch cut into N
//! shares, see `WorldTrainer::step_on`); stage three runs on the first device.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use burn::backend::Autodiff;
use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::Backend;
use gamegen_core::checkpoint;
use gamegen_core::data::longtail::{Draw, LongTailConfig, LongTailSampler};
use gamegen_core::games::GameKind;
use gamegen_core::optim::{OptimizerStateError, read_chunks, write_chunks};
use gamegen_core::rng::Rng;
use gamegen_core::world::checkpoint::TrainingState;
use gamegen_core::world::checkpoint::{CONFIG_FILE, DYNAMICS_FILE, VAE_FILE};
use gamegen_core::world::model::{SpatialConfig, StateUpdate};
use gamegen_core::world::train::VaeTrainer;
use gamegen_core::world::train::logic_fit::{LogicTrainer, gather_states};

use crate::replicas::Threads;
use gamegen_core::world::{StatePass, TrainConfig, WorldCheckpoint, WorldConfig, WorldTrainer};
use serde::{Deserialize, Serialize};

use super::data::{Dataset, clip_from_id, game_events};
use crate::fsutil::{self, write_atomic};
use crate::plot::{HELD_OUT_RGB, Panel, Series, TRAIN_RGB, write_png};

pub const LOG_FILE: &str = "train-log.jsonl";
pub const LOSS_PNG: &str = "loss.png";
pub const OPTIMIZER_FILE: &str = "optimizer-state.bin";
/// Stage three: rows per LogicNet step and its (constant) learning rate.
const LOGIC_BATCH: usize = 128;
const LOGIC_LR: f64 = 1e-3;

/// Model size presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    Tiny,
    Paper,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Tiny => "tiny",
            Preset::Paper => "paper",
        }
    }

    pub fn world_config(self, game: GameKind) -> WorldConfig {
        let (w, h) = game.frame_size();
        let (a, e) = (game.num_actions(), game_events(game).len());
        let mut cfg = match self {
            Preset::Tiny => WorldConfig::tiny(h, w, a, e),
            Preset::Paper => WorldConfig::paper(h, w, a, e),
        };
        // MaaG's spatial module for the games whose world is larger than the view.
        if let Some(spatial) = SpatialConfig::for_game(game, self == Preset::Paper) {
            cfg = cfg.with_spatial(spatial);
        }
        if let Some(r) = &mut cfg.record {
            r.scoring_events = 1;
            r.ending_events = if e > 1 { 2 } else { 0 };
        }
        cfg
    }

    pub fn train_config(self, seed: u64) -> TrainConfig {
        let t = match self {
            Preset::Tiny => TrainConfig::tiny(),
            Preset::Paper => TrainConfig::paper(),
        };
        TrainConfig { seed, ..t }
    }
}

#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub game: GameKind,
    pub data: PathBuf,
    pub out: PathBuf,
    pub preset: Preset,
    /// Target VAE steps (stage one), counted over all runs.
    pub vae_steps: usize,
    /// Target dynamics steps (stage two), counted over all runs.
    pub steps: usize,
    pub batch: usize,
    pub vae_batch: usize,
    pub clip_len: usize,
    pub seed: u64,
    pub checkpoint_every: usize,
    pub resume: bool,
    pub learning_rate: Option<f64>,
    pub max_episodes: Option<usize>,
    /// Target LogicNet steps on play-time states (stage three), counted over all runs.
    pub logic_steps: usize,
    /// Train PlayGen's model alone: no LogicNet, score record or spatial module (the MaaG
    /// ablation; [`WorldConfig::without_modules`]).
    pub without_modules: bool,
    /// Start a new run from another run's trained VAE (stage one is skipped), so that two
    /// dynamics models can be compared on the same autoencoder.
    pub vae_from: Option<PathBuf>,
    /// Override the preset's rare-colour weighting of the VAE's L1 term (0: plain mean).
    pub rare_colour_power: Option<f64>,
    /// Override the preset's state update of the recurrent cell.
    pub state_update: Option<StateUpdate>,
    /// Override the preset's play sampler state pass (saved in `config.json`).
    pub state_pass: Option<StatePass>,
    /// Weight of frame-to-frame change in the dynamics loss (new runs; recorded so a resumed
    /// run keeps it).
    pub change_weight: Option<f64>,
}

/// `loss.png` of a world-model run from its `train-log.jsonl` (after a change to the plots;
/// training redraws it at every checkpoint). False when the directory has no log.
pub fn replot(out: &Path) -> anyhow::Result<bool> {
    let path = out.join(LOG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    // A torn last row (a killed run) is skipped, as resuming would cut it.
    let lines: Vec<LogLine> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    plot_lines(out, &lines)?;
    Ok(true)
}

/// `loss.png`: the VAE's and the dynamics model's training and held-out losses, one panel each.
fn plot_lines(out: &Path, lines: &[LogLine]) -> anyhow::Result<()> {
    let series = |stage: &str| -> Vec<(f64, f64)> {
        lines
            .iter()
            .filter(|l| l.stage == stage)
            .map(|l| (l.step as f64, l.loss))
            .collect()
    };
    let (v, ve) = (series("vae"), series("vae-eval"));
    let (d, de) = (series("dynamics"), series("dynamics-eval"));
    let panel = |title, train, held_out| Panel {
        title,
        x_label: "step",
        y_label: "loss",
        log_y: true,
        series: vec![
            Series {
                name: "train",
                points: train,
                rgb: TRAIN_RGB,
            },
            Series {
                name: "held-out",
                points: held_out,
                rgb: HELD_OUT_RGB,
            },
        ],
    };
    write_png(
        &out.join(LOSS_PNG),
        &[
            panel("VAE reconstruction loss", &v, &ve),
            panel("dynamics (diffusion) loss", &d, &de),
        ],
    )?;
    Ok(())
}

/// One line of `train-log.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogLine {
    /// "vae", "vae-eval", "dynamics", "dynamics-eval", "logic", "logic-eval".
    pub stage: String,
    pub step: usize,
    pub loss: f64,
    /// VAE: L1; dynamics: diffusion part.
    #[serde(default)]
    pub part: f64,
    /// Dynamics: LogicNet cross-entropy; VAE eval: PSNR (dB); dynamics eval: the long-tail
    /// sampler's queue probability; logic eval: F-measure of events on held-out episodes.
    #[serde(default)]
    pub extra: f64,
    pub wall: f64,
}

/// What a finished run reports.
#[derive(Debug, Serialize)]
pub struct TrainReport {
    pub out: String,
    pub vae_steps: usize,
    pub dynamics_steps: usize,
    pub wall_seconds: f64,
    pub vae_eval_l1: Option<f64>,
    pub vae_eval_psnr: Option<f64>,
    pub dynamics_eval_loss: Option<f64>,
    pub logic_steps: usize,
    /// Held-out cross-entropy and event F-measure of LogicNet on play-time states.
    pub logic_eval_loss: Option<f64>,
    pub logic_eval_f1: Option<f64>,
    pub parameters_vae: usize,
    pub parameters_dynamics: usize,
}

/// Progress callback: `(stage, step, target, loss)`.
pub type Progress<'a> = &'a dyn Fn(&str, usize, usize, f64);

/// The optimiser states of a run by part: `vae`, `dynamics`, `sampler` (the long-tail
/// sampler), `logic` (stage three); `optimizer-state.bin` holds all that exist.
#[derive(Clone, Debug, Default, PartialEq)]
struct States(BTreeMap<String, Vec<u8>>);

/// First chunk of a world run's `optimizer-state.bin` (ByteCraft's names its optimiser).
const STATES_KIND: &str = "world-1";

impl States {
    /// The chunks: the kind, the number of parts, then each part's name and bytes.
    fn to_bytes(&self) -> Vec<u8> {
        let count = self.0.len().to_string();
        let mut chunks: Vec<&[u8]> = vec![STATES_KIND.as_bytes(), count.as_bytes()];
        for (name, bytes) in &self.0 {
            chunks.push(name.as_bytes());
            chunks.push(bytes);
        }
        write_chunks(chunks)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, OptimizerStateError> {
        let chunks = read_chunks(bytes)?;
        let kind = String::from_utf8_lossy(chunks.first().ok_or(OptimizerStateError::Format)?);
        if kind != STATES_KIND {
            return Err(OptimizerStateError::Kind {
                saved: kind.into_owned(),
                wanted: STATES_KIND,
            });
        }
        let count: usize = chunks
            .get(1)
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse().ok())
            .ok_or(OptimizerStateError::Format)?;
        if chunks.len() != 2 + 2 * count {
            return Err(OptimizerStateError::Format);
        }
        let mut parts = BTreeMap::new();
        for pair in chunks[2..].chunks(2) {
            let name = std::str::from_utf8(pair[0]).map_err(|_| OptimizerStateError::Format)?;
            parts.insert(name.to_string(), pair[1].to_vec());
        }
        Ok(Self(parts))
    }

    fn get(&self, part: &str) -> Option<&[u8]> {
        self.0.get(part).map(Vec::as_slice)
    }

    fn set(&mut self, part: &str, bytes: Vec<u8>) {
        self.0.insert(part.to_string(), bytes);
    }

    fn remove(&mut self, parts: &[&str]) {
        for p in parts {
            self.0.remove(*p);
        }
    }
}

struct Run<'a> {
    opts: &'a TrainOptions,
    ckpt: WorldCheckpoint,
    log: std::fs::File,
    lines: Vec<LogLine>,
    start: Instant,
    /// Wall seconds of earlier runs (resume).
    wall_before: f64,
    states: States,
    /// Whether the checkpoint resumed from had its optimiser state (false: it predates it).
    states_saved: bool,
}

/// The tag of a checkpoint's staged files: its step counts, unique within a run.
fn checkpoint_tag(t: &TrainingState) -> String {
    format!("v{}-d{}-l{}", t.vae_steps, t.dynamics_steps, t.logic_steps)
}

impl Run<'_> {
    fn wall(&self) -> f64 {
        self.wall_before + self.start.elapsed().as_secs_f64()
    }

    fn log(
        &mut self,
        stage: &str,
        step: usize,
        loss: f64,
        part: f64,
        extra: f64,
    ) -> anyhow::Result<()> {
        let line = LogLine {
            stage: stage.into(),
            step,
            loss,
            part,
            extra,
            wall: self.wall(),
        };
        // One write per row, so a kill leaves at most one torn row (cut on resume).
        let mut text = serde_json::to_string(&line)?;
        text.push('\n');
        self.log.write_all(text.as_bytes())?;
        self.lines.push(line);
        Ok(())
    }

    fn plot(&self) -> anyhow::Result<()> {
        plot_lines(&self.opts.out, &self.lines)
    }

    /// A checkpoint: stage the weights given and the optimiser states, commit with
    /// `config.json` (step counts, the log's length), then move the staged files to their
    /// final names (see `fsutil::write_staged`).
    fn save(&mut self, vae: Option<Vec<u8>>, dynamics: Option<Vec<u8>>) -> anyhow::Result<()> {
        let out = &self.opts.out;
        let tag = checkpoint_tag(&self.ckpt.training);
        if let Some(b) = vae {
            fsutil::write_staged(out, VAE_FILE, &tag, &b)?;
        }
        if let Some(b) = dynamics {
            fsutil::write_staged(out, DYNAMICS_FILE, &tag, &b)?;
        }
        fsutil::write_staged(out, OPTIMIZER_FILE, &tag, &self.states.to_bytes())?;
        self.log.sync_data()?;
        let (log_bytes, wall) = (self.log.metadata()?.len(), self.wall());
        let t = &mut self.ckpt.training;
        t.optimizer_state = Some(OPTIMIZER_FILE.to_string());
        t.log_bytes = Some(log_bytes);
        t.wall_seconds = wall;
        write_atomic(&out.join(CONFIG_FILE), self.ckpt.to_json().as_bytes())?;
        fsutil::settle_staged(out, Some(&tag))?;
        self.plot()
    }

    /// Put the saved optimiser state of `part` into a trainer (`load`), when the stage resumes
    /// mid-way. Checkpoints from before the state was saved have none: their moments restart
    /// (`train` says so once).
    fn restore(
        &self,
        part: &str,
        load: impl FnOnce(&[u8]) -> Result<(), OptimizerStateError>,
    ) -> anyhow::Result<()> {
        if !self.states_saved {
            return Ok(());
        }
        let path = self.opts.out.join(OPTIMIZER_FILE);
        let bytes = self.states.get(part).with_context(|| {
            format!("{} has no {part} state for this checkpoint", path.display())
        })?;
        load(bytes)
            .with_context(|| format!("cannot resume the {part} state from {}", path.display()))
    }
}

fn read_log(path: &Path) -> Vec<LogLine> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The data-parallel replicas the run in `out` was trained with, when it holds one that says
/// (so `--resume` without `--devices` continues with the same split).
pub fn recorded_replicas(out: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(out.join(CONFIG_FILE)).ok()?;
    WorldCheckpoint::from_json(&text).ok()?.training.replicas
}

/// Open or create the run directory: a fresh checkpoint, or (with `--resume`) the one on disk,
/// checked against the options.
fn open_run(opts: &TrainOptions) -> anyhow::Result<(WorldCheckpoint, bool)> {
    let cfg_path = opts.out.join(CONFIG_FILE);
    if cfg_path.exists() {
        if !opts.resume {
            anyhow::bail!(
                "{} already holds a model; pass --resume to continue it or choose another --out",
                opts.out.display()
            );
        }
        let text = std::fs::read_to_string(&cfg_path)
            .with_context(|| format!("reading {}", cfg_path.display()))?;
        let c =
            WorldCheckpoint::from_json(&text).with_context(|| format!("{}", cfg_path.display()))?;
        // Finish the checkpoint `config.json` names, drop what a killed run left half done.
        fsutil::settle_staged(&opts.out, Some(&checkpoint_tag(&c.training)))
            .and_then(|()| fsutil::remove_stale_temps(&opts.out))
            .with_context(|| format!("cleaning up {}", opts.out.display()))?;
        if c.game != opts.game || c.preset != opts.preset.name() {
            anyhow::bail!(
                "{} is a {} {} model, not {} {}",
                opts.out.display(),
                c.preset,
                c.game.name(),
                opts.preset.name(),
                opts.game.name()
            );
        }
        let trained_without = c.model.has_no_modules();
        let preset_without = opts.preset.world_config(opts.game).has_no_modules();
        if opts.without_modules && !trained_without {
            anyhow::bail!(
                "{} has LogicNet or the spatial module; resume it without --without-modules",
                opts.out.display()
            );
        }
        if !opts.without_modules && trained_without && !preset_without {
            anyhow::bail!(
                "{} was trained --without-modules; resume it with --without-modules",
                opts.out.display()
            );
        }
        if c.training.dynamics_steps > 0 && opts.vae_steps > c.training.vae_steps {
            anyhow::bail!(
                "{} has dynamics trained on a VAE of {} steps; training the VAE further would \
                 invalidate them (use --vae-steps {} or start a new --out)",
                opts.out.display(),
                c.training.vae_steps,
                c.training.vae_steps
            );
        }
        return Ok((c, true));
    }
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    // A first run killed before its first checkpoint committed left nothing to keep.
    fsutil::settle_staged(&opts.out, None)
        .and_then(|()| fsutil::remove_stale_temps(&opts.out))
        .with_context(|| format!("cleaning up {}", opts.out.display()))?;
    let mut model = opts.preset.world_config(opts.game);
    if opts.without_modules {
        model = model.without_modules();
    }
    if let Some(power) = opts.rare_colour_power {
        model.vae.rare_colour_power = power;
        model.validate().context("--rare-colour-power")?;
    }
    if let Some(update) = opts.state_update {
        model.dit.state_update = update;
        model.validate().context("--state-update")?;
    }
    if let Some(pass) = opts.state_pass {
        model.state_pass = pass;
    }
    if let Some(w) = opts.change_weight {
        anyhow::ensure!(
            w.is_finite() && (0.0..=100.0).contains(&w),
            "--change-weight must be in 0..=100, got {w}"
        );
    }
    let mut c = WorldCheckpoint::new(opts.game, opts.preset.name(), model);
    c.training.seed = opts.seed;
    c.training.change_weight = opts.change_weight.filter(|&w| w > 0.0);
    c.training.clip_len = opts.clip_len;
    if let Some(src) = &opts.vae_from {
        adopt_vae(&mut c, src, &opts.out)?;
        // Nothing of stage one is owed: the adopted VAE is final.
        anyhow::ensure!(
            opts.vae_steps <= c.training.vae_steps,
            "--vae-from {} brings a VAE of {} steps; --vae-steps {} would train it further \
             (pass --vae-steps {} or less)",
            src.display(),
            c.training.vae_steps,
            opts.vae_steps,
            c.training.vae_steps
        );
    }
    Ok((c, false))
}

/// Copy another run's trained VAE into a new run directory: the two configs must describe the
/// same game and autoencoder.
fn adopt_vae(c: &mut WorldCheckpoint, src: &Path, out: &Path) -> anyhow::Result<()> {
    let cfg_path = src.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&cfg_path)
        .with_context(|| format!("--vae-from: cannot read {}", cfg_path.display()))?;
    let other = WorldCheckpoint::from_json(&text)
        .with_context(|| format!("--vae-from: {}", cfg_path.display()))?;
    anyhow::ensure!(
        other.game == c.game && other.model.vae == c.model.vae,
        "--vae-from {}: its VAE ({} {}) differs from this run's ({} {})",
        src.display(),
        other.preset,
        other.game.name(),
        c.preset,
        c.game.name()
    );
    anyhow::ensure!(
        other.training.vae_steps > 0,
        "--vae-from {}: its VAE is not trained",
        src.display()
    );
    let bytes = std::fs::read(src.join(VAE_FILE))
        .with_context(|| format!("--vae-from: cannot read {}", src.join(VAE_FILE).display()))?;
    write_atomic(&out.join(VAE_FILE), &bytes)?;
    c.training.vae_steps = other.training.vae_steps;
    Ok(())
}

fn check_options(o: &TrainOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        o.batch > 0 && o.vae_batch > 0,
        "batch sizes must be positive"
    );
    anyhow::ensure!(
        (2..=64).contains(&o.clip_len),
        "--clip-len must be in 2..=64"
    );
    anyhow::ensure!(
        o.checkpoint_every > 0,
        "--checkpoint-every must be positive"
    );
    if let Some(lr) = o.learning_rate {
        anyhow::ensure!(lr > 0.0 && lr.is_finite(), "--lr must be a positive number");
    }
    Ok(())
}

/// Mean absolute error and PSNR (dB, peak 1) of images `y` against `x`, both in `[0, 1]`.
pub(crate) fn l1_and_psnr<B: Backend>(
    y: burn::tensor::Tensor<B, 4>,
    x: burn::tensor::Tensor<B, 4>,
) -> (f64, f64) {
    let l1: f64 = (y.clone() - x.clone()).abs().mean().into_scalar().to_f64();
    let mse: f64 = (y - x).powi_scalar(2).mean().into_scalar().to_f64();
    (l1, 10.0 * (1.0 / mse.max(1e-12)).log10())
}

/// Train (or resume) a world model. `B` is the inner backend; training runs on `Autodiff<B>`,
/// data-parallel over `devices` for the VAE and dynamics stages (the models live on the first;
/// one device trains as before).
pub fn train<B: Backend>(
    devices: &[B::Device],
    opts: &TrainOptions,
    progress: Progress,
) -> anyhow::Result<TrainReport> {
    check_options(opts)?;
    let device = devices
        .first()
        .context("--devices must be at least 1")?
        .clone();
    let (ckpt, resumed) = open_run(opts)?;
    let mut data = Dataset::load(&opts.data, opts.game, opts.max_episodes)?;
    let (train_ok, _) = data.has_clips(opts.clip_len);
    anyhow::ensure!(
        train_ok,
        "no training episode has {} frames (--clip-len)",
        opts.clip_len
    );
    let log_path = opts.out.join(LOG_FILE);
    let lines = if resumed {
        // Rows after the checkpoint (and a torn last row) are redone by this run.
        if let Some(len) = ckpt.training.log_bytes {
            fsutil::truncate(&log_path, len)
                .with_context(|| format!("trimming {}", log_path.display()))?;
        }
        fsutil::drop_torn_last_line(&log_path)
            .with_context(|| format!("trimming {}", log_path.display()))?;
        read_log(&log_path)
    } else {
        Vec::new()
    };
    let mut states = States::default();
    let states_saved = resumed && ckpt.training.optimizer_state.is_some();
    if let Some(name) = ckpt.training.optimizer_state.as_ref().filter(|_| resumed) {
        let path = opts.out.join(name);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        states = States::from_bytes(&bytes).with_context(|| {
            format!("cannot resume the optimiser state from {}", path.display())
        })?;
    } else if resumed {
        let t = &ckpt.training;
        if t.vae_steps + t.dynamics_steps + t.logic_steps > 0 {
            eprintln!(
                "note: {} has no saved optimiser state (an older checkpoint): the AdamW moments \
                 and the long-tail sampler restart",
                opts.out.display()
            );
        }
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(resumed)
        .write(true)
        .truncate(!resumed)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let wall_before = ckpt.training.wall_seconds;
    let mut ckpt = ckpt;
    ckpt.training.replicas = Some(devices.len());
    let mut run = Run {
        opts,
        ckpt,
        log,
        lines,
        start: Instant::now(),
        wall_before,
        states,
        states_saved,
    };
    let mut train_cfg = opts.preset.train_config(run.ckpt.training.seed);
    if let Some(lr) = opts.learning_rate {
        train_cfg.learning_rate = lr;
    }
    train_cfg.change_weight = run.ckpt.training.change_weight.unwrap_or(0.0);
    let model_cfg = run.ckpt.model.clone();

    // ---- Stage one: the VAE.
    let vae_init = if (resumed || opts.vae_from.is_some()) && opts.out.join(VAE_FILE).exists() {
        let bytes = std::fs::read(opts.out.join(VAE_FILE))?;
        run.ckpt
            .load_vae::<Autodiff<B>>(bytes, &device)
            .with_context(|| format!("{}", opts.out.join(VAE_FILE).display()))?
    } else {
        run.ckpt.training.vae_steps = 0;
        run.states = States::default();
        model_cfg
            .vae
            .init_seeded::<Autodiff<B>>(train_cfg.seed, &device)?
    };
    let mut vt = VaeTrainer::new(vae_init, train_cfg.clone());
    vt.step = run.ckpt.training.vae_steps;
    anyhow::ensure!(
        vt.step >= opts.vae_steps || run.ckpt.model.vae.light_decoder.is_none(),
        "{} has a play decoder trained against its encoder: training the VAE further would \
         leave it stale (keep --vae-steps {}, or train a copy, then run world train-decoder)",
        opts.out.display(),
        vt.step
    );
    if vt.step > 0 && vt.step < opts.vae_steps {
        run.restore("vae", |b| vt.load_optimizer_state(b, &device))?;
    }
    let eval_frames = data.eval_frames(32);
    let eval_vae = |vae: &gamegen_core::world::Vae<B>| -> (f64, f64) {
        let x = data.frames_tensor::<B>(&eval_frames, &device);
        l1_and_psnr(vae.decode_latent(vae.encode_latent(x.clone())), x)
    };
    let mut vae_eval = None;
    if vt.step < opts.vae_steps {
        while vt.step < opts.vae_steps {
            // Each step's draws depend on (seed, step) only, so a resumed run makes the same.
            let mut rng = Rng::for_stream(train_cfg.seed ^ 0x5641_4500, vt.step as u64);
            let picks = data.sample_frames(opts.vae_batch, &mut rng);
            let (total, l1) =
                vt.step_on(data.frames_tensor::<B>(&picks, &device), devices, &Threads);
            anyhow::ensure!(
                total.is_finite(),
                "VAE loss became {total} at step {}; lower --lr",
                vt.step
            );
            if vt.step.is_multiple_of(10) || vt.step == opts.vae_steps {
                run.log("vae", vt.step, total as f64, l1 as f64, 0.0)?;
            }
            progress("vae", vt.step, opts.vae_steps, total as f64);
            if vt.step.is_multiple_of(opts.checkpoint_every) || vt.step == opts.vae_steps {
                let (l1, psnr) = eval_vae(&vt.vae.valid());
                vae_eval = Some((l1, psnr));
                run.log("vae-eval", vt.step, l1, l1, psnr)?;
                run.ckpt.training.vae_steps = vt.step;
                run.states.set("vae", vt.optimizer_state()?);
                run.save(Some(checkpoint::to_safetensors(&vt.vae)?), None)?;
            }
        }
    }
    let vae = vt.vae.valid();
    if vae_eval.is_none() {
        vae_eval = Some(eval_vae(&vae));
    }

    // ---- Stage two: dynamics on cached latents.
    let total_frames: usize = data.episodes.iter().map(|e| e.len()).sum();
    data.encode_latents::<B>(&vae, 32, &device, &|done| {
        progress("encode", done, total_frames, 0.0)
    });
    let model =
        if resumed && run.ckpt.training.dynamics_steps > 0 && opts.out.join(DYNAMICS_FILE).exists()
        {
            let bytes = std::fs::read(opts.out.join(DYNAMICS_FILE))?;
            run.ckpt
                .load_dynamics::<Autodiff<B>>(bytes, &device)
                .with_context(|| format!("{}", opts.out.join(DYNAMICS_FILE).display()))?
        } else {
            run.ckpt.training.dynamics_steps = 0;
            run.states.remove(&["dynamics", "sampler", "logic"]);
            model_cfg.init_seeded::<Autodiff<B>>(train_cfg.seed.wrapping_add(1), &device)?
        };
    let mut wt =
        WorldTrainer::<Autodiff<B>>::from_model(model, model_cfg.clone(), train_cfg.clone(), None);
    wt.step = run.ckpt.training.dynamics_steps;
    let eval_clips = data.eval_clips(16, opts.clip_len);
    let eval_batch = data.clip_batch::<B>(&eval_clips, opts.clip_len, &model_cfg, &device);
    let eval_dyn = |wt: &WorldTrainer<Autodiff<B>>| -> anyhow::Result<f64> {
        let mut s = 0.0;
        for seed in 0..3 {
            s += wt.eval_loss(&eval_batch, seed)? as f64;
        }
        Ok(s / 3.0)
    };
    let mut sampler = LongTailSampler::new(LongTailConfig {
        queue_size: 256,
        window: 50,
        p_max: 0.5,
    });
    if wt.step > 0 && wt.step < opts.steps {
        run.restore("dynamics", |b| wt.load_optimizer_state(b, &device))?;
        run.restore("sampler", |b| {
            sampler.restore(b).map_err(|_| OptimizerStateError::Format)
        })?;
    }
    let mut dyn_eval = None;
    while wt.step < opts.steps {
        let mut rng = Rng::for_stream(train_cfg.seed ^ 0x4459_4e00, wt.step as u64);
        let clips = match sampler.draw(opts.batch, &mut rng) {
            Draw::Queue(c) => c,
            Draw::Dataset => data.sample_clips(opts.batch, opts.clip_len, &mut rng),
        };
        let batch = data.clip_batch::<B>(&clips, opts.clip_len, &model_cfg, &device);
        let stats = wt.step_on(&batch, devices, &Threads)?;
        // Stage two retrains LogicNet jointly: a refit of stage three is owed again.
        run.ckpt.training.logic_steps = 0;
        anyhow::ensure!(
            stats.loss.is_finite(),
            "dynamics loss became {} at step {}; lower --lr",
            stats.loss,
            stats.step
        );
        if let Some(ids) = &stats.ids {
            for (&id, &l) in ids.iter().zip(&stats.per_clip) {
                sampler.record(clip_from_id(id), l as f64);
            }
        }
        if wt.step.is_multiple_of(10) || wt.step == opts.steps {
            run.log(
                "dynamics",
                wt.step,
                stats.loss as f64,
                stats.diffusion as f64,
                stats.logic as f64,
            )?;
        }
        progress("dynamics", wt.step, opts.steps, stats.loss as f64);
        if wt.step.is_multiple_of(opts.checkpoint_every) || wt.step == opts.steps {
            let e = eval_dyn(&wt)?;
            dyn_eval = Some(e);
            run.log("dynamics-eval", wt.step, e, e, sampler.probability())?;
            run.ckpt.training.dynamics_steps = wt.step;
            run.ckpt.training.clip_len = opts.clip_len;
            run.states.set("dynamics", wt.optimizer_state()?);
            run.states.set("sampler", sampler.state());
            run.states.remove(&["logic"]);
            let bytes = checkpoint::to_safetensors(&wt.model.valid())?;
            run.save(None, Some(bytes))?;
        }
    }
    if dyn_eval.is_none() && wt.step > 0 {
        dyn_eval = Some(eval_dyn(&wt)?);
    }

    // ---- Stage three: LogicNet on the states it reads at play time (`logic_fit`).
    let logic_eval = fit_logic::<B>(
        &mut run, &data, &mut wt, &model_cfg, &train_cfg, &device, progress,
    )?;

    // A run with nothing left to do still leaves a complete directory.
    if !opts.out.join(DYNAMICS_FILE).exists() {
        let bytes = checkpoint::to_safetensors(&wt.model.valid())?;
        run.save(None, Some(bytes))?;
    }
    Ok(TrainReport {
        out: opts.out.display().to_string(),
        vae_steps: run.ckpt.training.vae_steps,
        dynamics_steps: run.ckpt.training.dynamics_steps,
        wall_seconds: run.wall(),
        vae_eval_l1: vae_eval.map(|v| v.0),
        vae_eval_psnr: vae_eval.map(|v| v.1),
        dynamics_eval_loss: dyn_eval,
        logic_steps: run.ckpt.training.logic_steps,
        logic_eval_loss: logic_eval.map(|l| l.0),
        logic_eval_f1: logic_eval.map(|l| l.1),
        parameters_vae: vae.num_params(),
        parameters_dynamics: wt.model.num_params(),
    })
}

/// Stage three: refit LogicNet on the level-0 states a play session feeds it, from the frozen
/// dynamics model (see `gamegen_core::world::train::logic_fit`). Returns the last held-out
/// `(cross-entropy, event F-measure)` when it ran and there are held-out episodes.
fn fit_logic<B: Backend>(
    run: &mut Run,
    data: &Dataset,
    wt: &mut WorldTrainer<Autodiff<B>>,
    model_cfg: &WorldConfig,
    train_cfg: &TrainConfig,
    device: &B::Device,
    progress: Progress,
) -> anyhow::Result<Option<(f64, f64)>> {
    let opts = run.opts;
    let Some(logic) = wt.model.logic.clone() else {
        return Ok(None);
    };
    if run.ckpt.training.logic_steps >= opts.logic_steps {
        return Ok(None);
    }
    let mut logic_eval = None;
    let frozen = wt.model.valid();
    let train_eps: Vec<usize> = (0..data.train_episodes).collect();
    let eval_eps: Vec<usize> = (data.train_episodes..data.episodes.len()).collect();
    let frames = |eps: &[usize]| -> usize { eps.iter().map(|&i| data.episodes[i].len()).sum() };
    let total = frames(&train_eps) + frames(&eval_eps);
    let bank = data.state_bank(&frozen, model_cfg, &train_eps, device, &|d| {
        progress("states", d, total, 0.0)
    })?;
    let held = if eval_eps.is_empty() {
        None
    } else {
        let before = frames(&train_eps);
        Some(
            data.state_bank(&frozen, model_cfg, &eval_eps, device, &|d| {
                progress("states", before + d, total, 0.0)
            })?,
        )
    };
    let threshold = model_cfg.record.as_ref().map_or(0.5, |r| r.threshold);
    let mut lt = LogicTrainer::<Autodiff<B>>::new(logic, LOGIC_LR, train_cfg.weight_decay);
    lt.step = run.ckpt.training.logic_steps;
    if lt.step > 0 {
        run.restore("logic", |b| lt.load_optimizer_state(b, device))?;
    }
    while lt.step < opts.logic_steps {
        let mut rng = Rng::for_stream(train_cfg.seed ^ 0x4c47_4300, lt.step as u64);
        let rows: Vec<usize> = (0..LOGIC_BATCH.min(bank.len()))
            .map(|_| rng.below(bank.len() as u64) as usize)
            .collect();
        let acts: Vec<u32> = rows.iter().map(|&r| bank.actions[r]).collect();
        let evs: Vec<u8> = rows.iter().map(|&r| bank.events[r]).collect();
        let loss = lt.step(gather_states(&bank.states, &rows), &acts, &evs);
        anyhow::ensure!(
            loss.is_finite(),
            "LogicNet loss became {loss} at step {}",
            lt.step
        );
        if lt.step.is_multiple_of(10) || lt.step == opts.logic_steps {
            run.log("logic", lt.step, loss as f64, loss as f64, 0.0)?;
        }
        progress("logic", lt.step, opts.logic_steps, loss as f64);
        if lt.step.is_multiple_of(opts.checkpoint_every) || lt.step == opts.logic_steps {
            if let Some(h) = &held {
                let (loss, counts) =
                    lt.evaluate(h.states.clone(), &h.actions, &h.events, threshold);
                let f1 = counts.f1().unwrap_or(1.0);
                logic_eval = Some((loss as f64, f1));
                run.log("logic-eval", lt.step, loss as f64, loss as f64, f1)?;
            }
            wt.model.logic = Some(lt.net.clone());
            run.ckpt.training.logic_steps = lt.step;
            run.states.set("logic", lt.optimizer_state()?);
            let bytes = checkpoint::to_safetensors(&wt.model.valid())?;
            run.save(None, Some(bytes))?;
        }
    }
    Ok(logic_eval)
}

/// f32/f64 scalars from `into_scalar` as f64.
trait ToF64 {
    fn to_f64(self) -> f64;
}

impl<E: burn::tensor::ElementConversion> ToF64 for E {
    fn to_f64(self) -> f64 {
        self.elem::<f64>()
    }
}
