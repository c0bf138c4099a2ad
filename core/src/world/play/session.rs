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

use super::PlayPath;
use super::cell_burn::BurnCell;
use super::cell_host::{HostCell, HostNets};
use super::frame::{read_f32, rgb8_to_tensor, tensor_to_rgb8, tensor_to_rgb8_async};
use super::modulations::Modulations;
use super::profile::{Profiler, Stage, mark};
use super::sampler::{FinalPass, sample};
use crate::rng::Rng;
use crate::world::ddim::{MAX_DDIM_STEPS, StatePass, ddim_plan, gaussian, gaussian_values};
use crate::world::model::spatial::crops_to_tensor;
use crate::world::model::{LinkResult, SpatialMap, Vae, WorldConfig, WorldModel};
use crate::world::record::{ScoreRecord, events_from_probs};
use crate::world::schedule::{CLIP_NOISE, NUM_TIMESTEPS, Schedule};

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
    Config(#[from] crate::world::ConfigError),
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

pub struct WorldSession<B: Backend> {
    pub(super) model: WorldModel<B>,
    pub(super) vae: Vae<B>,
    pub(super) config: WorldConfig,
    pub(super) schedule: Schedule,
    pub(super) z: Option<Tensor<B, 4>>,
    pub record: Option<ScoreRecord>,
    pub map: Option<SpatialMap>,
    /// A designer's map: every reset starts the spatial map from it instead of an empty one.
    preset: Option<SpatialMap>,
    pub(super) rng: Rng,
    pub(super) device: B::Device,
    /// Frames generated since the last reset.
    pub frames: u64,
    /// The grid tokens' position embedding, made once (the Burn paths).
    positions: Option<Tensor<B, 3>>,
    /// adaLN modulation per (noise level, action), made the first time a pass needs it.
    modulations: Modulations<B>,
    path: PlayPath,
    /// The frame's networks as CPU kernels, with [`PlayPath::Host`].
    host: Option<HostNets>,
}

/// Work of one frame between its two read-backs: the state it started from and the event
/// probabilities still on the device.
pub(super) struct Pending<B: Backend> {
    pub(super) action: u32,
    ddim_steps: usize,
    pub(super) z_prev: Tensor<B, 4>,
    pub(super) probs: Option<Tensor<B, 2>>,
}

impl<B: Backend> WorldSession<B> {
    /// A session on `device`, on the play path [`PlayPath::for_backend`] picks for `B`.
    pub fn new(
        model: WorldModel<B>,
        vae: Vae<B>,
        config: WorldConfig,
        seed: u64,
        device: B::Device,
    ) -> Result<Self, SessionError> {
        config.validate()?;
        let mut session = Self {
            model,
            vae,
            config,
            schedule: Schedule::default(),
            z: None,
            record: None,
            map: None,
            preset: None,
            rng: Rng::new(seed),
            frames: 0,
            positions: None,
            modulations: Modulations::default(),
            path: PlayPath::Fused,
            host: None,
            device,
        };
        session.set_path(PlayPath::for_backend::<B>(&session.device));
        Ok(session)
    }

    /// Override what the sampler's state pass sees (the model's `state_pass` otherwise).
    pub fn set_state_pass(&mut self, pass: StatePass) -> Result<(), SessionError> {
        pass.validate()?;
        self.config.state_pass = pass;
        Ok(())
    }

    pub fn config(&self) -> &WorldConfig {
        &self.config
    }

    /// The play path the session computes with.
    pub fn path(&self) -> PlayPath {
        self.path
    }

    /// Compute with `path` from the next frame on. All paths give the same frames up to float
    /// rounding (the reference gives exactly what training computes; see [`super::parity`]).
    pub fn set_path(&mut self, path: PlayPath) {
        self.path = path;
        self.host = (path == PlayPath::Host).then(|| HostNets::of(&self.model, &self.vae));
        self.modulations.clear();
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

    pub(super) fn map_crop(&self) -> Option<Tensor<B, 4>> {
        let s = self.config.spatial.as_ref()?;
        let (h, w) = (s.encoder.crop_height, s.encoder.crop_width);
        Some(crops_to_tensor(
            &[self.map_crop_rgb8()?],
            h,
            w,
            &self.device,
        ))
    }

    /// The map tokens `[1, tokens, dim]` for a local map crop: the map CNN's kernels on the CPU
    /// path, else the backend's.
    fn encode_map(&self, crop: Option<Vec<u8>>) -> Option<Tensor<B, 3>> {
        let (crop, s) = (crop?, self.config.spatial.as_ref()?);
        let (h, w) = (s.encoder.crop_height, s.encoder.crop_width);
        match self.host.as_ref().and_then(|n| n.map.as_ref()) {
            Some(host) => {
                let tokens = host.encode_rgb8(&crop, h, w);
                let shape = [1, host.tokens(), host.token_dim()];
                Some(Tensor::from_data(
                    TensorData::new(tokens, shape),
                    &self.device,
                ))
            }
            None => self
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
        let x0 = self.encode_rgb8(first_frame);
        let digits = [crate::world::record::score_digits(score)];
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

    /// A clean latent -> the RGB8 frame, as the session runs: the play decoder's kernels on the
    /// CPU path when the model has one (one read of the small latent instead of the frame), else
    /// [`Self::decode`] and a read of the frame.
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

    fn host_decoder(&self) -> Option<&gamegen_kernels::nets::LightDecoder> {
        self.host.as_ref().and_then(|n| n.decoder.as_ref())
    }

    /// The diffusion latent divided by the VAE's latent scale (what its decoders take).
    fn unscaled(&self, mut latent: Vec<f32>) -> Vec<f32> {
        let scale = self.config.vae.latent_scale as f32;
        latent.iter_mut().for_each(|v| *v /= scale);
        latent
    }

    /// Decode a clean latent to a frame in `[0, 1]` with the backend: the operations training
    /// runs on the reference path, the fused ones otherwise.
    pub fn decode(&self, latent: Tensor<B, 4>) -> Tensor<B, 4> {
        match self.path {
            PlayPath::Reference => self.vae.decode_latent(latent),
            PlayPath::Fused | PlayPath::Host => self.vae.decode_latent_fused(latent),
        }
    }

    /// Check the arguments and start a frame: the event probabilities are computed but not
    /// read yet.
    pub(super) fn begin(&self, action: u32, ddim_steps: usize) -> Result<Pending<B>, SessionError> {
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
        mark(prof, Stage::Condition);

        let [c, h, w] = self.config.vae.latent_shape();
        let noise = gaussian(&mut self.rng, [1, c, h, w], &self.device);
        let plan = ddim_plan(p.ddim_steps, NUM_TIMESTEPS);
        let x = noise.clamp(-CLIP_NOISE, CLIP_NOISE);
        let (x, z) = match &self.host {
            Some(nets) => {
                let mut cell = HostCell {
                    nets,
                    burn_dit: &self.model.dit,
                    schedule: &self.schedule,
                    modulations: &mut self.modulations,
                    cond: &cond,
                    z_prev: read_f32(p.z_prev.into_data()),
                    extra: cond
                        .extra()
                        .map_or_else(Vec::new, |e| read_f32(e.clone().into_data())),
                    action: p.action,
                    grid: (h, w),
                };
                let x = read_f32(x.into_data());
                let last = FinalPass::of(self.config.state_pass, || {
                    gaussian_values(&mut self.rng, c * h * w)
                });
                mark(prof, Stage::Noise);
                let (x, z) = sample(&mut cell, &plan, x, last, prof);
                let zc = self.config.dit.z_channels;
                (
                    Tensor::from_data(TensorData::new(x, [1, c, h, w]), &self.device),
                    Tensor::from_data(TensorData::new(z, [1, zc, h, w]), &self.device),
                )
            }
            None => {
                let positions = self
                    .positions
                    .get_or_insert_with(|| self.model.dit.positions(&self.device));
                let last = FinalPass::of(self.config.state_pass, || {
                    gaussian(&mut self.rng, [1, c, h, w], &self.device)
                });
                mark(prof, Stage::Noise);
                let mut cell = BurnCell {
                    dit: &self.model.dit,
                    head: &self.model.head,
                    schedule: &self.schedule,
                    modulations: &mut self.modulations,
                    cond: &cond,
                    positions,
                    z_prev: p.z_prev,
                    action: p.action,
                    fused: self.path == PlayPath::Fused,
                };
                sample(&mut cell, &plan, x, last, prof)
            }
        };
        self.z = Some(z);
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

    pub(super) fn step_latent_profiled(
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

    /// A real frame through the VAE and back, decoded as play decodes (the play decoder when the
    /// model has one): the best any generated frame of this model can look.
    pub fn reconstruct(&self, frame: &[u8]) -> Result<Vec<u8>, SessionError> {
        self.check_frame(frame)?;
        let latent = self.encode_rgb8(frame);
        Ok(self.decode_rgb8(latent))
    }

    /// The VAE's latent of an RGB8 frame of this model's size (checked by the caller).
    fn encode_rgb8(&self, frame: &[u8]) -> Tensor<B, 4> {
        let (w, h) = (self.config.vae.width, self.config.vae.height);
        self.vae
            .encode_latent(rgb8_to_tensor(frame, h, w, &self.device))
    }

    /// One teacher-forced frame: predict the next frame for `action` from the current state, as
    /// [`step`](Self::step) does, then let the state, the record and the map take the *real*
    /// next frame (`real`, with its `score`) instead of the prediction. Called after a
    /// [`reset`](Self::reset) on an episode's first frame and then once per recorded frame, every
    /// prediction is made from the real frames before it: the one-step error of the model,
    /// without the drift of a rollout.
    ///
    /// The state is what the sampler's final pass would have made had it been given the real
    /// latent: that pass (the same previous state, level and action) over the encoded real
    /// frame, conditioned on the real score's digits and the map as it stood before the frame.
    /// The returned [`StepInfo`] is the prediction's (its events, the score its record reached
    /// before being corrected; no link, as the prediction is not linked into the map).
    pub fn step_teacher_forced(
        &mut self,
        action: u32,
        ddim_steps: usize,
        real: &[u8],
        score: u32,
    ) -> Result<(Vec<u8>, StepInfo), SessionError> {
        self.check_frame(real)?;
        let p = self.begin(action, ddim_steps)?;
        let z_prev = p.z_prev.clone();
        let probs = p.probs.clone().map(|t| read_f32(t.into_data()));
        let (x, events) = self.generate(p, probs, &mut None);
        let frame = self.decode_rgb8(x);
        let predicted_score = self.record.as_ref().map(|r| r.score);

        if let Some(r) = &mut self.record {
            r.score = score;
        }
        let digits = self.record.as_ref().map(|r| [r.digits()]);
        let map = self.encode_map(self.map_crop_rgb8());
        let cond = self
            .model
            .dit
            .condition(&[action], digits.as_ref().map(|d| &d[..]), map);
        let latent = self.encode_rgb8(real);
        let (latent, level) = match self.config.state_pass {
            StatePass::Relabel => {
                let level = *ddim_plan(ddim_steps, NUM_TIMESTEPS)
                    .pass_levels()
                    .last()
                    .expect("a plan has at least one pass");
                (latent, level)
            }
            StatePass::Renoise { level } => {
                let noise = gaussian::<B, 4>(&mut self.rng, latent.dims(), &self.device);
                let (sa, sb) = self.schedule.coefficients(level);
                (latent.mul_scalar(sa) + noise.mul_scalar(sb), level)
            }
        };
        let (z, _) = self.model.pass(z_prev, latent, &[level as f32], &cond);
        self.z = Some(z);
        self.observe(real)?;
        Ok((
            frame,
            StepInfo {
                events,
                score: predicted_score,
                link: None,
            },
        ))
    }

    pub(super) fn finish(
        &mut self,
        frame: Vec<u8>,
        events: u8,
    ) -> Result<(Vec<u8>, StepInfo), SessionError> {
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
    use crate::world::model::spatial::{MapEncoderConfig, MatchMask};
    use crate::world::play::planar_to_rgb8;
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

    /// A session of the shipped Pong model (trained weights: a fresh model's zero-initialised
    /// output layers would give every input the same state).
    fn shipped_pong(seed: u64) -> WorldSession<B> {
        use crate::world::WorldCheckpoint;
        use crate::world::checkpoint::{CONFIG_FILE, DYNAMICS_FILE, VAE_FILE};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/world-pong");
        let read = |f: &str| std::fs::read(dir.join(f)).expect("the shipped Pong model");
        let ck =
            WorldCheckpoint::from_json(&String::from_utf8(read(CONFIG_FILE)).unwrap()).unwrap();
        let dev = Default::default();
        let vae = ck.load_vae::<B>(read(VAE_FILE), &dev).unwrap();
        let model = ck.load_dynamics::<B>(read(DYNAMICS_FILE), &dev).unwrap();
        WorldSession::new(model, vae, ck.model.clone(), seed, dev).unwrap()
    }

    #[test]
    fn teacher_forcing_takes_the_state_from_the_real_frames() {
        let mut game = crate::games::new_game(crate::games::GameKind::Pong, None).unwrap();
        let first = game.reset(3);
        let actions = [4u8, 4, 8, 0];
        let real: Vec<_> = actions.iter().map(|&a| game.step(a)).collect();
        let state = |s: &WorldSession<B>| read_f32(s.z.clone().unwrap().into_data());
        // Two sessions with different noise, teacher-forced on the same real frames.
        let mut runs = Vec::new();
        for seed in [1, 2] {
            let mut s = shipped_pong(seed);
            s.reset(&first.frame, first.score, (0, 0)).unwrap();
            let (mut states, mut predictions) = (Vec::new(), Vec::new());
            for (a, r) in actions.iter().zip(&real) {
                let (pred, info) = s
                    .step_teacher_forced(*a as u32, 2, &r.frame, r.score + 7)
                    .unwrap();
                assert_eq!(pred.len(), r.frame.len());
                assert!(info.link.is_none());
                assert_eq!(s.record.as_ref().unwrap().score, r.score + 7);
                states.push(state(&s));
                predictions.push(pred);
            }
            assert_eq!(s.frames, 4);
            runs.push((states, predictions));
        }
        // The noise changed the predictions but none of the states: they come from the real
        // frames alone.
        assert!(runs[0].1 != runs[1].1, "different noise, same predictions");
        assert!(
            runs[0].0 == runs[1].0,
            "teacher-forced states depend on the noise"
        );
        // A free rollout's state depends on the noise, and differs from the forced one.
        let mut free = Vec::new();
        for seed in [1, 2] {
            let mut s = shipped_pong(seed);
            s.reset(&first.frame, first.score, (0, 0)).unwrap();
            s.step(actions[0] as u32, 2).unwrap();
            free.push(state(&s));
        }
        assert!(free[0] != free[1], "free rollouts ignore the noise");
        assert!(
            free[0] != runs[0].0[0],
            "teacher forcing kept the predicted state"
        );

        let mut s = shipped_pong(1);
        assert_eq!(
            s.step_teacher_forced(0, 2, &real[0].frame, 0).unwrap_err(),
            SessionError::NotStarted
        );
        s.reset(&first.frame, 0, (0, 0)).unwrap();
        assert!(matches!(
            s.step_teacher_forced(0, 2, &real[0].frame[..10], 0),
            Err(SessionError::BadFrame { .. })
        ));
        let rec = s.reconstruct(&real[0].frame).unwrap();
        assert_eq!(rec.len(), real[0].frame.len());
        assert!(matches!(
            s.reconstruct(&[0u8; 3]),
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
}
