//! An inference session: the neural game, one frame per `step(action)`.
//!
//! State is the hidden state z, the external score record and the external map, nothing else,
//! so memory is constant however long the game runs. No threads, no file system: the same code
//! runs natively and in wasm (weights come in as bytes through `checkpoint`). Per frame:
//! LogicNet decides the events from `(z_{t-1}, a)`, the record turns them into the score digits,
//! the local map is cropped around the player, DDIM runs `S + 1` DiT passes, the VAE decodes the
//! frame, and the frame is linked back into the map.
//!
//! Results are read back (event probabilities, the frame) at two points per frame. [`step`]
//! reads synchronously, which is what the CPU backends do (native and the browser's CPU
//! fallback); [`step_async`] awaits the reads, which WebGPU in the browser requires (a
//! synchronous read cannot block the page's only thread). Both share every computation: only the
//! two reads differ.
//!
//! [`step`]: WorldSession::step
//! [`step_async`]: WorldSession::step_async

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use serde::Serialize;

use super::ddim::{MAX_DDIM_STEPS, ddim_plan, ddim_step_coefficients, ddim_update, gaussian};
use super::dit::{FusedModulation, HostVHead, Modulation};
use super::host_dit::{HostDit, HostModulation};
use super::host_ops::Kernels;
use super::light_decoder::HostLightDecoder;
use super::model::{WorldConfig, WorldModel};
use super::record::{ScoreRecord, events_from_probs};
use super::schedule::{CLIP_NOISE, NUM_TIMESTEPS, Schedule};
use super::spatial::{HostMapEncoder, LinkResult, SpatialMap, crops_to_tensor};
use super::vae::Vae;
use crate::rng::Rng;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SessionError {
    #[error("the session has no state yet: call reset() with a first frame")]
    NotStarted,
    #[error("DDIM steps must be in 1..={MAX_DDIM_STEPS}, got {0}")]
    BadSteps(usize),
    #[error("frame has {found} bytes, expected {expected} (RGB8, {width}x{height})")]
    BadFrame {
        found: usize,
        expected: usize,
        width: usize,
        height: usize,
    },
    #[error("action {action} out of range (the game has {actions} actions)")]
    BadAction { action: u32, actions: usize },
    #[error(transparent)]
    Config(#[from] super::ConfigError),
    #[error("this model has no spatial module, so it cannot take a preset map")]
    NoSpatialModule,
    #[error("reading a result back from the device failed: {0}")]
    Read(String),
}

/// What one generated frame produced besides the pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct StepInfo {
    /// Event bits LogicNet fired for this frame.
    pub events: u8,
    /// Score after the events (when the model has a record).
    pub score: Option<u32>,
    /// Where the frame was linked into the map (when the model has one).
    pub link: Option<LinkResult>,
}

/// Largest differences between the host kernels and the backend's operations over a few
/// frames played from the same state ([`WorldSession::kernel_parity`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct KernelParity {
    pub frames: usize,
    /// Over every value of every frame's clean latent.
    pub latent_max_abs: f32,
    /// Over every byte of every frame's RGB8 image.
    pub rgb_max_abs: u8,
}

pub struct WorldSession<B: Backend> {
    model: WorldModel<B>,
    vae: Vae<B>,
    config: WorldConfig,
    schedule: Schedule,
    z: Option<Tensor<B, 4>>,
    pub record: Option<ScoreRecord>,
    pub map: Option<SpatialMap>,
    /// A designer's map: every reset starts the spatial map from it instead of an empty one.
    preset: Option<SpatialMap>,
    rng: Rng,
    device: B::Device,
    /// Frames generated since the last reset.
    pub frames: u64,
    /// The grid tokens' position embedding, made once.
    positions: Option<Tensor<B, 3>>,
    /// adaLN modulation per (noise level, action), made the first time a pass needs it: the
    /// weights never change within a session and a DDIM plan reuses the same few levels.
    modulations: Vec<CachedModulation<B>>,
    /// Run the passes through the backend's fused kernels (layer norm, attention, one
    /// multiply-add per DDIM update). Off: exactly the operations training runs.
    fused: bool,
    /// Where the fused path computes (see [`Self::set_kernels`]).
    kernels: Kernels,
    /// With [`Kernels::Host`]: the networks of a frame on host buffers.
    host: HostNets,
}

/// The networks a play session on a CPU backend runs on host buffers (see
/// [`host_conv`](super::host_conv) and [`host_dit`](super::host_dit)); each is `None` when the
/// model lacks it or the session uses the backend's kernels.
#[derive(Default)]
struct HostNets {
    decoder: Option<HostLightDecoder>,
    map: Option<HostMapEncoder>,
    /// The DiT cell and the v head: with them the whole DDIM loop runs on the host.
    dit: Option<(HostDit, HostVHead)>,
}

/// The host DDIM loop's buffers (planar, one sample).
struct HostLoop {
    z_prev: Vec<f32>,
    x: Vec<f32>,
    extra: Vec<f32>,
    z: Vec<f32>,
}

/// The modulation of one (noise level, action) pair, plain and in the fused form.
struct CachedModulation<B: Backend> {
    level: usize,
    action: u32,
    plain: Modulation<B>,
    fused: Option<FusedModulation<B>>,
    /// The fused modulation on the host, when the session runs the DiT there.
    host: Option<HostModulation>,
}

/// Most (noise level, action) modulations a session keeps (each holds gated copies of two
/// layers per block: about 0.3 MB at `tiny` sizes); beyond that the oldest are dropped.
const MAX_MODULATIONS: usize = 64;

/// RGB8 interleaved `h x w` frame -> `[1, 3, h, w]` in `[0, 1]`.
pub fn rgb8_to_tensor<B: Backend>(
    rgb: &[u8],
    h: usize,
    w: usize,
    device: &B::Device,
) -> Tensor<B, 4> {
    crops_to_tensor(&[rgb.to_vec()], h, w, device)
}

/// `[1, 3, h, w]` in `[0, 1]` -> RGB8 interleaved.
pub fn tensor_to_rgb8<B: Backend>(frame: Tensor<B, 4>) -> Vec<u8> {
    let [_, _, h, w] = frame.dims();
    planar_to_rgb8(&read_f32(frame.into_data()), h, w)
}

/// [`tensor_to_rgb8`] with an awaited read (WebGPU in the browser).
pub async fn tensor_to_rgb8_async<B: Backend>(
    frame: Tensor<B, 4>,
) -> Result<Vec<u8>, SessionError> {
    let [_, _, h, w] = frame.dims();
    let data = frame
        .into_data_async()
        .await
        .map_err(|e| SessionError::Read(format!("{e:?}")))?;
    Ok(planar_to_rgb8(&read_f32(data), h, w))
}

/// Planar `3 x h x w` floats in `[0, 1]` -> RGB8 interleaved (values outside are clamped).
pub fn planar_to_rgb8(data: &[f32], h: usize, w: usize) -> Vec<u8> {
    let mut out = vec![0u8; h * w * 3];
    for c in 0..3 {
        for i in 0..h * w {
            let v = data.get(c * h * w + i).copied().unwrap_or(0.0);
            out[3 * i + c] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    out
}

/// Float data of any float dtype as f32 (the conversion cannot fail for float tensors).
fn read_f32(data: TensorData) -> Vec<f32> {
    data.convert::<f32>().to_vec().unwrap_or_default()
}

/// The parts of a frame that [`WorldSession::step_profiled`] times separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// LogicNet on `(z_{t-1}, a)` and the read of its event probabilities.
    Logic,
    /// The local map crop on the host and its upload.
    MapCrop,
    /// The map CNN on the crop.
    MapCnn,
    /// Per-frame conditioning: action embedding, digit and map tokens, adaLN inputs.
    Condition,
    /// The frame's Gaussian noise (host PRNG and upload).
    Noise,
    /// The DiT cell, all `S + 1` passes.
    Dit,
    /// The v head, all `S + 1` passes.
    Head,
    /// DDIM update arithmetic.
    Ddim,
    /// VAE decode of the clean latent.
    Decode,
    /// Reading the frame back and converting it to RGB8.
    Readback,
    /// Linking the frame into the spatial map.
    Link,
}

impl Stage {
    pub const ALL: [Stage; 11] = [
        Stage::Logic,
        Stage::MapCrop,
        Stage::MapCnn,
        Stage::Condition,
        Stage::Noise,
        Stage::Dit,
        Stage::Head,
        Stage::Ddim,
        Stage::Decode,
        Stage::Readback,
        Stage::Link,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Logic => "logicnet + event read",
            Stage::MapCrop => "map crop (host) + upload",
            Stage::MapCnn => "map CNN",
            Stage::Condition => "conditioning (tokens, adaLN)",
            Stage::Noise => "noise (host) + upload",
            Stage::Dit => "DiT cell (S+1 passes)",
            Stage::Head => "v head (S+1 passes)",
            Stage::Ddim => "DDIM arithmetic",
            Stage::Decode => "decode (play decoder or VAE)",
            Stage::Readback => "frame read + RGB8",
            Stage::Link => "linking (spatial map)",
        }
    }
}

/// Seconds spent per [`Stage`], summed over the frames profiled.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Breakdown {
    pub seconds: [f64; Stage::ALL.len()],
    pub frames: u64,
}

impl Breakdown {
    pub fn get(&self, stage: Stage) -> f64 {
        self.seconds[stage as usize]
    }

    pub fn total(&self) -> f64 {
        self.seconds.iter().sum()
    }
}

/// Attributes the time since the previous mark to a stage. The clock is the caller's (core has
/// no clock that works in wasm); timings are only meaningful on backends that run each
/// operation when it is called (the CPU backends), not on queued GPU backends.
pub struct Profiler<'a> {
    clock: &'a mut dyn FnMut() -> f64,
    last: f64,
    pub breakdown: Breakdown,
}

impl<'a> Profiler<'a> {
    pub fn new(clock: &'a mut dyn FnMut() -> f64) -> Self {
        let last = clock();
        Self {
            clock,
            last,
            breakdown: Breakdown::default(),
        }
    }

    fn mark(&mut self, stage: Stage) {
        let now = (self.clock)();
        self.breakdown.seconds[stage as usize] += now - self.last;
        self.last = now;
    }

    /// Restart the interval (time since the last mark is not attributed).
    fn restart(&mut self) {
        self.last = (self.clock)();
    }
}

fn mark(p: &mut Option<&mut Profiler<'_>>, stage: Stage) {
    if let Some(p) = p {
        p.mark(stage);
    }
}

/// Work of one frame between its two read-backs: the state it started from and the event
/// probabilities still on the device.
struct Pending<B: Backend> {
    action: u32,
    ddim_steps: usize,
    z_prev: Tensor<B, 4>,
    probs: Option<Tensor<B, 2>>,
}

impl<B: Backend> WorldSession<B> {
    pub fn new(
        model: WorldModel<B>,
        vae: Vae<B>,
        config: WorldConfig,
        seed: u64,
        device: B::Device,
    ) -> Result<Self, SessionError> {
        config.validate()?;
        Ok(Self {
            model,
            vae,
            config,
            schedule: Schedule::default(),
            z: None,
            record: None,
            map: None,
            preset: None,
            rng: Rng::new(seed),
            device,
            frames: 0,
            positions: None,
            modulations: Vec::new(),
            fused: true,
            kernels: Kernels::Backend,
            host: HostNets::default(),
        })
    }

    pub fn config(&self) -> &WorldConfig {
        &self.config
    }

    /// Choose the fused kernels (the default) or exactly the operations training runs: the two
    /// give the same frames up to float rounding (see the tests).
    pub fn set_fused(&mut self, fused: bool) {
        self.fused = fused;
    }

    /// Where the fused path computes: [`Kernels::Host`] for a CPU backend runs the whole frame
    /// on host buffers (the DiT passes, the v head and the DDIM update, the map CNN and the
    /// play decoder: `host_dit`, `host_conv`; about 2x faster there), [`Kernels::Backend`] (the
    /// default, and the only sensible choice on a GPU) the backend's own operations. The
    /// unfused path always uses the backend's.
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.kernels = kernels;
        self.host = match kernels {
            Kernels::Backend => HostNets::default(),
            Kernels::Host => HostNets {
                decoder: self.vae.light.as_ref().map(|l| l.host()),
                map: self.model.map_encoder.as_ref().map(|m| m.host()),
                dit: Some((self.model.dit.host(), self.model.head.host())),
            },
        };
        // Cached modulations made before carry no host copy.
        self.modulations.clear();
    }

    /// The host kernels against the backend's operations, in the build that runs: from the
    /// current state, plays `actions` (generate, decode, link) once with each, with the same
    /// noise, and gives the largest differences. The session is left as it was. The unit tests
    /// compare the two natively; this is for builds whose kernels only run elsewhere (the
    /// browser's wasm builds, one with relaxed SIMD).
    pub fn kernel_parity(
        &mut self,
        actions: &[u32],
        ddim_steps: usize,
    ) -> Result<KernelParity, SessionError> {
        let saved = (
            self.z.clone(),
            self.record.clone(),
            self.map.clone(),
            self.rng.clone(),
            self.frames,
        );
        let kernels = self.kernels;
        let mut runs = Vec::with_capacity(2);
        for k in [Kernels::Host, Kernels::Backend] {
            self.set_kernels(k);
            let played: Result<Vec<_>, _> = actions
                .iter()
                .map(|&a| {
                    let (latent, events) = self.step_latent(a, ddim_steps)?;
                    let rgb = self.decode_rgb8(latent.clone());
                    self.finish(rgb.clone(), events)?;
                    Ok((read_f32(latent.into_data()), rgb))
                })
                .collect();
            (self.z, self.record, self.map, self.rng, self.frames) = saved.clone();
            match played {
                Ok(frames) => runs.push(frames),
                Err(e) => {
                    self.set_kernels(kernels);
                    return Err(e);
                }
            }
        }
        self.set_kernels(kernels);
        let mut parity = KernelParity {
            frames: actions.len(),
            latent_max_abs: 0.0,
            rgb_max_abs: 0,
        };
        for ((la, fa), (lb, fb)) in runs[0].iter().zip(&runs[1]) {
            for (a, b) in la.iter().zip(lb) {
                parity.latent_max_abs = parity.latent_max_abs.max((a - b).abs());
            }
            for (a, b) in fa.iter().zip(fb) {
                parity.rgb_max_abs = parity.rgb_max_abs.max(a.abs_diff(*b));
            }
        }
        Ok(parity)
    }

    fn check_frame(&self, rgb: &[u8]) -> Result<(), SessionError> {
        let (w, h) = (self.config.vae.width, self.config.vae.height);
        if rgb.len() != w * h * 3 {
            return Err(SessionError::BadFrame {
                found: rgb.len(),
                expected: w * h * 3,
                width: w,
                height: h,
            });
        }
        Ok(())
    }

    fn map_crop_rgb8(&self) -> Option<Vec<u8>> {
        let (map, s) = (self.map.as_ref()?, self.config.spatial.as_ref()?);
        Some(map.local_crop(s.encoder.crop_width, s.encoder.crop_height))
    }

    fn map_crop(&self) -> Option<Tensor<B, 4>> {
        let s = self.config.spatial.as_ref()?;
        let (h, w) = (s.encoder.crop_height, s.encoder.crop_width);
        Some(crops_to_tensor(
            &[self.map_crop_rgb8()?],
            h,
            w,
            &self.device,
        ))
    }

    /// The map tokens `[1, tokens, dim]` for a local map crop: host convolutions when the
    /// session has them, else the backend's map CNN.
    fn encode_map(&self, crop: Option<Vec<u8>>) -> Option<Tensor<B, 3>> {
        let (crop, s) = (crop?, self.config.spatial.as_ref()?);
        let (h, w) = (s.encoder.crop_height, s.encoder.crop_width);
        match (&self.host.map, self.fused) {
            (Some(host), true) => {
                let tokens = host.encode_rgb8(&crop, h, w);
                let shape = [1, host.tokens(), host.token_dim()];
                Some(Tensor::from_data(
                    TensorData::new(tokens, shape),
                    &self.device,
                ))
            }
            _ => self
                .model
                .encode_map(Some(crops_to_tensor(&[crop], h, w, &self.device))),
        }
    }

    /// Give the model a designer's map (MaaG Fig. 7): `views` are frames of the designed world
    /// and the player positions they are seen from ([`Game::preset_views`]). From the next
    /// [`reset`](Self::reset) on, the spatial map starts as these views instead of black, so
    /// the model is shown what lies ahead before the player gets there. An empty list clears
    /// the preset. Models without a spatial module refuse a non-empty preset.
    ///
    /// [`Game::preset_views`]: crate::games::Game::preset_views
    pub fn set_preset(&mut self, views: &[(Vec<u8>, (i64, i64))]) -> Result<(), SessionError> {
        if views.is_empty() {
            self.preset = None;
            return Ok(());
        }
        let Some(s) = &self.config.spatial else {
            return Err(SessionError::NoSpatialModule);
        };
        let (w, h) = (self.config.vae.width, self.config.vae.height);
        let mut map = SpatialMap::new(w, h, s.world_rows);
        for (frame, position) in views {
            self.check_frame(frame)?;
            map.write_frame(frame, *position);
        }
        self.preset = Some(map);
        Ok(())
    }

    /// Start from a real frame: the record starts at `score`, the map (when the model has one)
    /// starts from the preset or black and gets the frame at world `position`, and the frame is
    /// absorbed into z by one pass at noise level 0 with "no previous action".
    pub fn reset(
        &mut self,
        first_frame: &[u8],
        score: u32,
        position: (i64, i64),
    ) -> Result<(), SessionError> {
        self.check_frame(first_frame)?;
        let (w, h) = (self.config.vae.width, self.config.vae.height);
        if let Some(r) = &self.config.record {
            self.record = Some(ScoreRecord::new(score, r.scoring_events, r.ending_events));
        }
        if let Some(s) = &self.config.spatial {
            let mut map = self
                .preset
                .clone()
                .unwrap_or_else(|| SpatialMap::new(w, h, s.world_rows));
            map.write_frame(first_frame, position);
            self.map = Some(map);
        }
        let x0 = self
            .vae
            .encode_latent(rgb8_to_tensor(first_frame, h, w, &self.device));
        let digits = [super::record::score_digits(score)];
        let cond = self.model.condition(
            &[self.config.dit.no_action()],
            Some(&digits),
            self.map_crop(),
        );
        let (z, _) = self
            .model
            .pass(self.model.initial_state(1), x0, &[0.0], &cond);
        self.z = Some(z);
        self.frames = 0;
        Ok(())
    }

    /// A clean latent -> the RGB8 frame, as the session runs: the play decoder's host
    /// convolutions when it has them (one read of the small latent instead of the frame),
    /// else [`Self::decode`] and a read of the frame.
    pub fn decode_rgb8(&self, latent: Tensor<B, 4>) -> Vec<u8> {
        match self.host_decoder() {
            Some(host) => {
                let [_, c, h, w] = latent.dims();
                host.decode_rgb8(&self.unscaled(read_f32(latent.into_data())), c, h, w)
            }
            None => tensor_to_rgb8(self.decode(latent)),
        }
    }

    /// [`Self::decode_rgb8`] with an awaited read (WebGPU and the browser's CPU fallback).
    pub async fn decode_rgb8_async(&self, latent: Tensor<B, 4>) -> Result<Vec<u8>, SessionError> {
        match self.host_decoder() {
            Some(host) => {
                let [_, c, h, w] = latent.dims();
                let data = latent
                    .into_data_async()
                    .await
                    .map_err(|e| SessionError::Read(format!("{e:?}")))?;
                Ok(host.decode_rgb8(&self.unscaled(read_f32(data)), c, h, w))
            }
            None => tensor_to_rgb8_async(self.decode(latent)).await,
        }
    }

    fn host_decoder(&self) -> Option<&HostLightDecoder> {
        self.host.decoder.as_ref().filter(|_| self.fused)
    }

    /// The diffusion latent divided by the VAE's latent scale (what its decoders take).
    fn unscaled(&self, mut latent: Vec<f32>) -> Vec<f32> {
        let scale = self.config.vae.latent_scale as f32;
        latent.iter_mut().for_each(|v| *v /= scale);
        latent
    }

    /// Decode a clean latent to a frame in `[0, 1]` with the backend (fused or not, as the
    /// session runs).
    pub fn decode(&self, latent: Tensor<B, 4>) -> Tensor<B, 4> {
        if self.fused {
            self.vae.decode_latent_fused(latent, self.kernels)
        } else {
            self.vae.decode_latent(latent)
        }
    }

    /// Check the arguments and start a frame: the event probabilities are computed but not
    /// read yet.
    fn begin(&self, action: u32, ddim_steps: usize) -> Result<Pending<B>, SessionError> {
        if !(1..=MAX_DDIM_STEPS).contains(&ddim_steps) {
            return Err(SessionError::BadSteps(ddim_steps));
        }
        let n = self.config.dit.num_actions;
        if action as usize >= n {
            return Err(SessionError::BadAction { action, actions: n });
        }
        let z_prev = self.z.clone().ok_or(SessionError::NotStarted)?;
        let probs = match (&self.model.logic, &self.config.record) {
            (Some(logic), Some(_)) => Some(logic.probabilities(z_prev.clone(), &[action])),
            _ => None,
        };
        Ok(Pending {
            action,
            ddim_steps,
            z_prev,
            probs,
        })
    }

    /// Given the read probabilities: fire the events, update the record, run DDIM, update z.
    /// Returns the clean latent and the event bits.
    fn generate(
        &mut self,
        p: Pending<B>,
        probs: Option<Vec<f32>>,
        prof: &mut Option<&mut Profiler<'_>>,
    ) -> (Tensor<B, 4>, u8) {
        let events = match (probs, &self.config.record) {
            (Some(probs), Some(rc)) => events_from_probs(&probs, rc.threshold),
            _ => 0,
        };
        if let Some(rec) = &mut self.record {
            rec.apply(events);
        }
        mark(prof, Stage::Logic);
        let digits = self.record.as_ref().map(|r| [r.digits()]);
        let crop = self.map_crop_rgb8();
        mark(prof, Stage::MapCrop);
        let map = self.encode_map(crop);
        mark(prof, Stage::MapCnn);
        let cond = self
            .model
            .dit
            .condition(&[p.action], digits.as_ref().map(|d| &d[..]), map);
        let positions = self
            .positions
            .get_or_insert_with(|| self.model.dit.positions(&self.device))
            .clone();
        mark(prof, Stage::Condition);

        let [c, h, w] = self.config.vae.latent_shape();
        let noise = gaussian(&mut self.rng, [1, c, h, w], &self.device);
        let plan = ddim_plan(p.ddim_steps, NUM_TIMESTEPS);
        let mut x = noise.clamp(-CLIP_NOISE, CLIP_NOISE);
        let mut host = match (&self.host.dit, self.fused) {
            (Some(_), true) => Some(HostLoop {
                z_prev: read_f32(p.z_prev.clone().into_data()),
                x: read_f32(x.clone().into_data()),
                extra: cond
                    .extra()
                    .map_or_else(Vec::new, |e| read_f32(e.clone().into_data())),
                z: Vec::new(),
            }),
            _ => None,
        };
        mark(prof, Stage::Noise);
        // DDIM (eta 0) as `ddim::ddim_sample` runs it: S steps, then the last step's level again
        // on the clean latent, whose z becomes the state.
        let s = plan.steps();
        let mut z = None;
        for m in 0..=s {
            let (t, t_next) = plan.pairs[m.min(s - 1)];
            let level = t as usize;
            let at = match self
                .modulations
                .iter()
                .position(|m| m.level == level && m.action == p.action)
            {
                Some(i) => i,
                None => {
                    if self.modulations.len() >= MAX_MODULATIONS {
                        self.modulations.remove(0);
                    }
                    let plain = self.model.dit.modulation(&[level as f32], &cond);
                    let fused = self.model.dit.fuse(&plain);
                    let host = match (&self.host.dit, &fused) {
                        (Some(_), Some(f)) => Some(f.host()),
                        _ => None,
                    };
                    self.modulations.push(CachedModulation {
                        level,
                        action: p.action,
                        plain,
                        fused,
                        host,
                    });
                    self.modulations.len() - 1
                }
            };
            mark(prof, Stage::Condition);
            let cached = &self.modulations[at];
            if let (Some(hl), Some((dit, head)), Some(hm)) =
                (host.as_mut(), &self.host.dit, &cached.host)
            {
                // The pass, the head and the DDIM update on host buffers.
                hl.z = dit.forward(&hl.z_prev, &hl.x, &hl.extra, hm);
                mark(prof, Stage::Dit);
                let v = head.forward(&hl.z, self.config.dit.z_channels, h, w);
                mark(prof, Stage::Head);
                let (cx, cv) = ddim_step_coefficients(&self.schedule, t, t_next);
                let (cx, cv) = (cx as f32, cv as f32);
                for (xi, vi) in hl.x.iter_mut().zip(&v) {
                    *xi = cx * *xi + cv * vi;
                }
                mark(prof, Stage::Ddim);
                continue;
            }
            let z_new = match (&cached.fused, self.fused) {
                (Some(fm), true) => self.model.dit.forward_fused(
                    p.z_prev.clone(),
                    x.clone(),
                    &positions,
                    fm,
                    &cond,
                    self.kernels,
                ),
                _ => self.model.dit.forward_modulated(
                    p.z_prev.clone(),
                    x.clone(),
                    &positions,
                    &cached.plain,
                    &cond,
                ),
            };
            mark(prof, Stage::Dit);
            x = match self.fused {
                true => {
                    let v = self.model.head.forward_fused(z_new.clone(), self.kernels);
                    mark(prof, Stage::Head);
                    // x_next = cx x + cv v: the DDIM update folded into two scalars.
                    let (cx, cv) = ddim_step_coefficients(&self.schedule, t, t_next);
                    x.mul_scalar(cx) + v.mul_scalar(cv)
                }
                false => {
                    let v = self.model.head.forward(z_new.clone());
                    mark(prof, Stage::Head);
                    ddim_update(&self.schedule, x, v, t, t_next)
                }
            };
            z = Some(z_new);
            mark(prof, Stage::Ddim);
        }
        if let Some(hl) = host {
            let zc = self.config.dit.z_channels;
            z = Some(Tensor::from_data(
                TensorData::new(hl.z, [1, zc, h, w]),
                &self.device,
            ));
            x = Tensor::from_data(TensorData::new(hl.x, [1, c, h, w]), &self.device);
        }
        self.z = z;
        self.frames += 1;
        (x, events)
    }

    /// Generate the next latent for `action` with `ddim_steps` DDIM steps; updates z and the
    /// record. The caller decodes it (see [`WorldSession::step`] for the all-in-one path).
    pub fn step_latent(
        &mut self,
        action: u32,
        ddim_steps: usize,
    ) -> Result<(Tensor<B, 4>, u8), SessionError> {
        self.step_latent_profiled(action, ddim_steps, &mut None)
    }

    fn step_latent_profiled(
        &mut self,
        action: u32,
        ddim_steps: usize,
        prof: &mut Option<&mut Profiler<'_>>,
    ) -> Result<(Tensor<B, 4>, u8), SessionError> {
        if let Some(p) = prof {
            p.restart();
        }
        let p = self.begin(action, ddim_steps)?;
        let probs = p.probs.clone().map(|t| read_f32(t.into_data()));
        Ok(self.generate(p, probs, prof))
    }

    /// [`WorldSession::step_latent`] with an awaited read of the event probabilities.
    pub async fn step_latent_async(
        &mut self,
        action: u32,
        ddim_steps: usize,
    ) -> Result<(Tensor<B, 4>, u8), SessionError> {
        let p = self.begin(action, ddim_steps)?;
        let probs = match p.probs.clone() {
            Some(t) => Some(read_f32(
                t.into_data_async()
                    .await
                    .map_err(|e| SessionError::Read(format!("{e:?}")))?,
            )),
            None => None,
        };
        Ok(self.generate(p, probs, &mut None))
    }

    /// Link a generated (or real) RGB frame into the map; `None` without a spatial module.
    pub fn observe(&mut self, frame: &[u8]) -> Result<Option<LinkResult>, SessionError> {
        self.check_frame(frame)?;
        Ok(match (&mut self.map, &self.config.spatial) {
            (Some(map), Some(s)) => Some(map.observe(frame, s.link_range, s.mask)),
            _ => None,
        })
    }

    /// One frame: generate, decode to RGB8 (`width * height * 3`), link into the map.
    pub fn step(
        &mut self,
        action: u32,
        ddim_steps: usize,
    ) -> Result<(Vec<u8>, StepInfo), SessionError> {
        self.step_profiled(action, ddim_steps, None)
    }

    /// [`WorldSession::step`] that adds the time of each [`Stage`] to `prof` (when given).
    pub fn step_profiled(
        &mut self,
        action: u32,
        ddim_steps: usize,
        mut prof: Option<&mut Profiler<'_>>,
    ) -> Result<(Vec<u8>, StepInfo), SessionError> {
        let (x, events) = self.step_latent_profiled(action, ddim_steps, &mut prof)?;
        let frame = match self.host_decoder() {
            // Reading the latent, decoding and converting are one host step (counted as the
            // decode; the read of the small latent is in it).
            Some(_) => {
                let frame = self.decode_rgb8(x);
                mark(&mut prof, Stage::Decode);
                frame
            }
            None => {
                let decoded = self.decode(x);
                mark(&mut prof, Stage::Decode);
                tensor_to_rgb8(decoded)
            }
        };
        mark(&mut prof, Stage::Readback);
        let out = self.finish(frame, events)?;
        mark(&mut prof, Stage::Link);
        if let Some(p) = prof {
            p.breakdown.frames += 1;
        }
        Ok(out)
    }

    /// [`WorldSession::step`] with both reads awaited: what WebGPU in the browser needs. The
    /// same seed and actions give the same frames as the synchronous path.
    pub async fn step_async(
        &mut self,
        action: u32,
        ddim_steps: usize,
    ) -> Result<(Vec<u8>, StepInfo), SessionError> {
        let (x, events) = self.step_latent_async(action, ddim_steps).await?;
        let frame = self.decode_rgb8_async(x).await?;
        self.finish(frame, events)
    }

    fn finish(&mut self, frame: Vec<u8>, events: u8) -> Result<(Vec<u8>, StepInfo), SessionError> {
        let link = self.observe(&frame)?;
        Ok((
            frame,
            StepInfo {
                events,
                score: self.record.as_ref().map(|r| r.score),
                link,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::model::SpatialConfig;
    use crate::world::spatial::{MapEncoderConfig, MatchMask};
    use burn::backend::NdArray;
    use std::time::Instant;

    type B = NdArray;

    fn traveler_tiny() -> WorldConfig {
        WorldConfig::tiny(96, 96, 3, 1).with_spatial(SpatialConfig {
            encoder: MapEncoderConfig::tiny(76, 128, [5, 8]),
            world_rows: (20, 96),
            link_range: (10, 0),
            mask: MatchMask::All,
        })
    }

    fn session(cfg: &WorldConfig, seed: u64) -> WorldSession<B> {
        let dev = Default::default();
        let model = cfg.init_seeded::<B>(seed, &dev).unwrap();
        let vae = cfg.vae.init_seeded::<B>(seed + 1, &dev).unwrap();
        WorldSession::new(model, vae, cfg.clone(), seed, dev).unwrap()
    }

    #[test]
    fn session_runs_frames_and_is_deterministic() {
        let cfg = traveler_tiny();
        let first: Vec<u8> = (0..96 * 96 * 3).map(|i| (i % 251) as u8).collect();
        let mut outs = Vec::new();
        for _ in 0..2 {
            let mut s = session(&cfg, 3);
            assert_eq!(s.step(0, 4).unwrap_err(), SessionError::NotStarted);
            s.reset(&first, 12, (0, 0)).unwrap();
            let mut frames = Vec::new();
            for a in [2u32, 2, 1, 0] {
                let (f, info) = s.step(a, 2).unwrap();
                assert_eq!(f.len(), 96 * 96 * 3);
                assert!(info.score.unwrap() >= 12);
                assert!(info.link.is_some());
                frames.push(f);
            }
            assert!(matches!(s.step(0, 17), Err(SessionError::BadSteps(17))));
            assert!(matches!(s.step(3, 4), Err(SessionError::BadAction { .. })));
            outs.push(frames);
        }
        assert_eq!(outs[0], outs[1]);
    }

    #[test]
    fn a_preset_map_is_what_every_reset_starts_from() {
        use crate::games::{maps::parse_map, new_game, traveler::EXAMPLE_STRIP};
        let cfg = traveler_tiny();
        let preset = parse_map(EXAMPLE_STRIP).unwrap();
        let mut real = new_game(crate::games::GameKind::Traveler, Some(&preset)).unwrap();
        let first = real.reset(4);
        let views: Vec<(Vec<u8>, (i64, i64))> = real
            .preset_views()
            .into_iter()
            .map(|(f, p)| (f, (p.x as i64, p.y as i64)))
            .collect();
        assert!(!views.is_empty());
        let pos = (first.player.x as i64, first.player.y as i64);
        let mut s = session(&cfg, 2);
        s.reset(&first.frame, 0, pos).unwrap();
        let (plain, _) = s.map.as_ref().unwrap().coverage();
        s.set_preset(&views).unwrap();
        s.reset(&first.frame, 0, pos).unwrap();
        let (with_preset, _) = s.map.as_ref().unwrap().coverage();
        assert!(with_preset > plain, "{with_preset} <= {plain}");
        // What a step links into the map stays in this episode only: the next reset starts
        // from the preset again, not from the last episode's map.
        for _ in 0..6 {
            s.step(2, 1).unwrap();
        }
        s.reset(&first.frame, 0, pos).unwrap();
        assert_eq!(s.map.as_ref().unwrap().coverage().0, with_preset);
        // An empty preset clears it; a model without a spatial module refuses one.
        s.set_preset(&[]).unwrap();
        s.reset(&first.frame, 0, pos).unwrap();
        assert_eq!(s.map.as_ref().unwrap().coverage().0, plain);
        let mut flat = session(&WorldConfig::tiny(96, 96, 3, 1), 2);
        assert_eq!(
            flat.set_preset(&views).unwrap_err(),
            SessionError::NoSpatialModule
        );
        // A view of the wrong size is refused.
        let bad = vec![(vec![0u8; 10], (0, 0))];
        assert!(matches!(
            s.set_preset(&bad),
            Err(SessionError::BadFrame { .. })
        ));
    }

    /// Poll a future that never waits (the CPU backends resolve reads at once).
    fn ready<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("a CPU read was pending"),
        }
    }

    #[test]
    fn async_steps_match_sync_steps() {
        // With a record and LogicNet, so both reads (probabilities, frame) are exercised.
        let cfg = WorldConfig::tiny(96, 96, 3, 1);
        assert!(cfg.record.is_some() && cfg.logic.is_some());
        let first: Vec<u8> = (0..96 * 96 * 3).map(|i| (i * 7 % 253) as u8).collect();
        // One set of weights for both (`init_seeded` may pick a different init scale for a tiny
        // layer from run to run, so two seeded inits are not guaranteed to match).
        let mut sync = session(&cfg, 5);
        let mut asy = WorldSession::<B>::new(
            sync.model.clone(),
            sync.vae.clone(),
            cfg.clone(),
            5,
            Default::default(),
        )
        .unwrap();
        sync.reset(&first, 3, (0, 0)).unwrap();
        asy.reset(&first, 3, (0, 0)).unwrap();
        for a in [2u32, 2, 0, 1, 1] {
            let (fs, is) = sync.step(a, 2).unwrap();
            let (fa, ia) = ready(asy.step_async(a, 2)).unwrap();
            assert_eq!(fs, fa);
            assert_eq!(is, ia);
        }
        assert_eq!(asy.frames, 5);
        assert!(matches!(
            ready(asy.step_async(0, 0)),
            Err(SessionError::BadSteps(0))
        ));
        assert!(matches!(
            ready(asy.step_async(9, 4)),
            Err(SessionError::BadAction { action: 9, .. })
        ));
    }

    #[test]
    fn planar_to_rgb8_clamps_and_interleaves() {
        // 1x2 image: R = [0.5, 2.0], G = [-1, 1], B = [0, 0.25]
        let data = [0.5, 2.0, -1.0, 1.0, 0.0, 0.25];
        assert_eq!(planar_to_rgb8(&data, 1, 2), vec![128, 0, 0, 255, 255, 64]);
    }

    /// Not an assertion on speed (shared machine): prints the per-frame cost of the tiny model
    /// so `cargo test -- --nocapture` shows it.
    #[test]
    fn tiny_frame_cost_report() {
        let cfg = traveler_tiny();
        let mut s = session(&cfg, 1);
        let first = vec![128u8; 96 * 96 * 3];
        s.reset(&first, 0, (0, 0)).unwrap();
        s.step(0, 4).unwrap();
        let n = 5;
        let t = Instant::now();
        for _ in 0..n {
            s.step(2, 4).unwrap();
        }
        let per_frame = t.elapsed().as_secs_f64() * 1000.0 / n as f64;
        let dev = Default::default();
        let z = Tensor::<B, 4>::zeros([1, 4, 24, 24], &dev);
        let t = Instant::now();
        for _ in 0..n {
            let _ = tensor_to_rgb8(s.vae.decode_latent(z.clone()));
        }
        let decode = t.elapsed().as_secs_f64() * 1000.0 / n as f64;
        eprintln!("tiny traveler frame at S=4: {per_frame:.1} ms (decoder alone {decode:.1} ms)");
    }

    /// A session of a shipped model reset from its game's first frame (seed 7), and the game's
    /// number of actions; `None` when the model directory is missing.
    fn shipped_session(
        dir: &str,
        fused: bool,
        kernels: Kernels,
    ) -> Option<(WorldSession<burn::backend::Flex>, u32)> {
        use crate::world::WorldCheckpoint;
        use crate::world::checkpoint::{CONFIG_FILE, DYNAMICS_FILE, VAE_FILE};
        type F = burn::backend::Flex;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(dir);
        let text = std::fs::read_to_string(dir.join(CONFIG_FILE)).ok()?;
        let ck = WorldCheckpoint::from_json(&text).unwrap();
        let dev = Default::default();
        let vae = ck
            .load_vae::<F>(std::fs::read(dir.join(VAE_FILE)).unwrap(), &dev)
            .unwrap();
        let model = ck
            .load_dynamics::<F>(std::fs::read(dir.join(DYNAMICS_FILE)).unwrap(), &dev)
            .unwrap();
        let mut s = WorldSession::new(model, vae, ck.model.clone(), 7, dev).unwrap();
        s.set_fused(fused);
        s.set_kernels(kernels);
        let mut game = crate::games::new_game(ck.game, None).unwrap();
        let first = game.reset(7);
        s.reset(
            &first.frame,
            first.score,
            (first.player.x as i64, first.player.y as i64),
        )
        .unwrap();
        Some((s, ck.game.num_actions() as u32))
    }

    /// A shipped checkpoint's session, frame by frame: RGB8 checksum and mean, and a sample of
    /// the clean latent. `core/src/world/testdata/session-fixtures.json` holds these values as
    /// the unfused path (the operations training runs) produced them on flex, first before the
    /// frame-time work (2026-12-02), rewritten when the models got their play decoders
    /// (2026-12-03); the test checks the current code gives the same frames (bytes equal) and
    /// latents (to float rounding) on the unfused path, and the same up to float rounding on the
    /// fused path with the backend's and with the host's kernels.
    /// `GAMEGEN_WRITE_FIXTURES=1` rewrites the file.
    fn shipped_session_trace(
        dir: &str,
        fused: bool,
        kernels: Kernels,
    ) -> Option<serde_json::Value> {
        let (mut s, n) = shipped_session(dir, fused, kernels)?;
        let mut frames = Vec::new();
        for (i, steps) in [4usize, 4, 4, 1, 4, 2].into_iter().enumerate() {
            let a = (i as u32 / 2) % n;
            let (x, events) = s.step_latent(a, steps).unwrap();
            let lat = read_f32(x.clone().into_data());
            let rgb = s.decode_rgb8(x);
            let (_, info) = s.finish(rgb.clone(), events).unwrap();
            let stride = (lat.len() / 64).max(1);
            let sample: Vec<f32> = lat.iter().step_by(stride).copied().collect();
            let mut h: u64 = 0xcbf29ce484222325;
            for &b in &rgb {
                h = (h ^ b as u64).wrapping_mul(0x100000001b3);
            }
            let mean = rgb.iter().map(|&v| v as f64).sum::<f64>() / rgb.len() as f64;
            frames.push(serde_json::json!({
                "steps": steps,
                "action": a,
                "events": info.events,
                "score": info.score,
                "link": info.link.map(|l| [l.position.0, l.position.1]),
                "fnv": format!("{h:016x}"),
                "mean": mean,
                "latent_abs_sum": lat.iter().map(|v| v.abs() as f64).sum::<f64>(),
                "latent_sample": sample,
            }));
        }
        Some(serde_json::json!(frames))
    }

    #[test]
    fn kernel_parity_is_small_and_leaves_the_session_as_it_was() {
        let open = || shipped_session("models/world-pacman", true, Kernels::Host).expect("model");
        let ((mut a, n), (mut b, _)) = (open(), open());
        let actions: Vec<u32> = (0..3).map(|i| (i + 1) % n).collect();
        let p = a.kernel_parity(&actions, 4).unwrap();
        assert_eq!(p.frames, 3);
        assert!(p.latent_max_abs < 1e-4 && p.rgb_max_abs <= 2, "{p:?}");
        // Same state, same kernels and noise afterwards: the next frames equal a twin's.
        assert_eq!(a.kernels, Kernels::Host);
        for action in [1, 2] {
            assert_eq!(a.step(action, 4).unwrap(), b.step(action, 4).unwrap());
        }
    }

    #[test]
    fn shipped_models_give_the_fixture_frames() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/world/testdata/session-fixtures.json");
        let dirs = [
            "models/world-pong",
            "models/world-traveler",
            "models/world-pacman",
        ];
        let trace = |fused: bool, kernels: Kernels| {
            let mut m = serde_json::Map::new();
            for dir in dirs {
                if let Some(t) = shipped_session_trace(dir, fused, kernels) {
                    m.insert(dir.to_string(), t);
                }
            }
            m
        };
        if std::env::var("GAMEGEN_WRITE_FIXTURES").is_ok() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let text = serde_json::to_string_pretty(&serde_json::Value::Object(trace(
                false,
                Kernels::Backend,
            )))
            .unwrap();
            std::fs::write(&path, text).unwrap();
            return;
        }
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        // Unfused: the operations training runs, so the very bytes the code before gave.
        // Fused (the default), with the backend's or the host's kernels: the same up to float
        // rounding.
        for (fused, kernels) in [
            (false, Kernels::Backend),
            (true, Kernels::Backend),
            (true, Kernels::Host),
        ] {
            let now = trace(fused, kernels);
            assert!(!now.is_empty(), "no shipped world model found");
            for (dir, frames) in &now {
                let want = saved[dir].as_array().unwrap();
                let got = frames.as_array().unwrap();
                assert_eq!(want.len(), got.len());
                for (i, (w, g)) in want.iter().zip(got).enumerate() {
                    for key in ["steps", "action", "events", "score", "link"] {
                        assert_eq!(
                            w[key], g[key],
                            "{dir} fused={fused} {kernels:?} frame {i}: {key}"
                        );
                    }
                    let ws: Vec<f64> = serde_json::from_value(w["latent_sample"].clone()).unwrap();
                    let gs: Vec<f64> = serde_json::from_value(g["latent_sample"].clone()).unwrap();
                    let worst = ws
                        .iter()
                        .zip(&gs)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f64::max);
                    if !fused {
                        // Not bit-exact across machines: the CPU backend's matmul splits its
                        // reductions by the threads it gets, so sums round differently (CI saw
                        // 2e-5). Ten times tighter than the fused bound below.
                        assert!(
                            worst < 1e-4,
                            "{dir} unfused frame {i}: latent differs by {worst}"
                        );
                        continue;
                    }
                    let (wm, gm) = (w["mean"].as_f64().unwrap(), g["mean"].as_f64().unwrap());
                    let (wa, ga) = (
                        w["latent_abs_sum"].as_f64().unwrap(),
                        g["latent_abs_sum"].as_f64().unwrap(),
                    );
                    eprintln!(
                        "{dir} fused {kernels:?} frame {i}: latent sample max |diff| {worst:.2e}, \
                         latent |sum| {ga:.4} vs {wa:.4}, RGB mean {gm:.4} vs {wm:.4}, \
                         bytes {}",
                        if w["fnv"] == g["fnv"] {
                            "equal"
                        } else {
                            "differ"
                        }
                    );
                    assert!(worst < 1e-3, "{dir} frame {i}: latent differs by {worst}");
                    assert!((wm - gm).abs() < 0.05, "{dir} frame {i}: mean {gm} vs {wm}");
                    assert!(
                        (wa - ga).abs() <= 1e-4 * wa.max(1.0),
                        "{dir} frame {i}: latent |sum| {ga} vs {wa}"
                    );
                }
            }
        }
    }

    /// The frame loop as it was before the session kept per-frame constants: the condition
    /// built per frame and every pass computing its own position embedding and modulation
    /// (`WorldModel::pass` inside `ddim::ddim_sample`). Returns the clean latent and the frame.
    fn reference_step(s: &mut WorldSession<B>, action: u32, steps: usize) -> (Vec<f32>, Vec<u8>) {
        use crate::world::ddim::ddim_sample;
        let p = s.begin(action, steps).unwrap();
        let probs = p.probs.clone().map(|t| read_f32(t.into_data()));
        let events = match (probs, &s.config.record) {
            (Some(probs), Some(rc)) => events_from_probs(&probs, rc.threshold),
            _ => 0,
        };
        if let Some(rec) = &mut s.record {
            rec.apply(events);
        }
        let digits = s.record.as_ref().map(|r| [r.digits()]);
        let cond = s
            .model
            .condition(&[p.action], digits.as_ref().map(|d| &d[..]), s.map_crop());
        let [c, h, w] = s.config.vae.latent_shape();
        let noise = gaussian(&mut s.rng, [1, c, h, w], &s.device);
        let plan = ddim_plan(steps, NUM_TIMESTEPS);
        let model = &s.model;
        let z_prev = p.z_prev;
        let (x, z) = ddim_sample(&s.schedule, &plan, noise, |x, level| {
            model.pass(z_prev.clone(), x, &[level as f32], &cond)
        });
        s.z = Some(z);
        s.frames += 1;
        let latent = read_f32(x.clone().into_data());
        let frame = tensor_to_rgb8(s.vae.decode_latent(x));
        let (frame, _) = s.finish(frame, events).unwrap();
        (latent, frame)
    }

    #[test]
    fn cached_and_fused_frames_match_the_reference() {
        for (fused, kernels) in [
            (false, Kernels::Backend),
            (true, Kernels::Backend),
            (true, Kernels::Host),
        ] {
            for cfg in [traveler_tiny(), WorldConfig::tiny(96, 96, 3, 1)] {
                let first: Vec<u8> = (0..96 * 96 * 3).map(|i| (i * 13 % 241) as u8).collect();
                let mut new = session(&cfg, 9);
                new.set_fused(fused);
                new.set_kernels(kernels);
                let mut old = WorldSession::<B>::new(
                    new.model.clone(),
                    new.vae.clone(),
                    cfg.clone(),
                    9,
                    Default::default(),
                )
                .unwrap();
                new.reset(&first, 5, (0, 0)).unwrap();
                old.reset(&first, 5, (0, 0)).unwrap();
                for (i, steps) in [4usize, 4, 1, 4, 8, 2, 4].into_iter().enumerate() {
                    let a = (i as u32) % 3;
                    let (x, events) = new.step_latent(a, steps).unwrap();
                    let latent = read_f32(x.clone().into_data());
                    let frame = new.decode_rgb8(x);
                    let (frame, info) = new.finish(frame, events).unwrap();
                    let (ref_latent, ref_frame) = reference_step(&mut old, a, steps);
                    assert_eq!(info.score, old.record.as_ref().map(|r| r.score));
                    if !fused {
                        // The same operations on the same values: the same bits.
                        assert_eq!(latent, ref_latent, "frame {i}");
                        assert_eq!(frame, ref_frame, "frame {i}");
                        assert_eq!(new.map, old.map);
                        continue;
                    }
                    let scale = ref_latent.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                    let worst = latent
                        .iter()
                        .zip(&ref_latent)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f32, f32::max);
                    assert!(
                        worst <= 1e-4 * scale,
                        "{kernels:?} frame {i}: latent differs by {worst}"
                    );
                    let off = frame.iter().zip(&ref_frame).filter(|(a, b)| a != b).count();
                    let most = frame
                        .iter()
                        .zip(&ref_frame)
                        .map(|(a, b)| a.abs_diff(*b))
                        .max()
                        .unwrap_or(0);
                    assert!(
                        most <= 1 && off * 1000 <= frame.len(),
                        "{kernels:?} frame {i}: {off} bytes differ, by up to {most}"
                    );
                }
            }
        }
    }
}
