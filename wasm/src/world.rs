//! The neural game in the browser: a trained world model (`config.json`, `vae.safetensors`,
//! `dynamics.safetensors`, fetched by the page) run as a [`WorldSession`] on the page's backend.
//!
//! Every frame is read back with an awaited read (`WorldSession::step_async`): on WebGPU a
//! synchronous read cannot work on the page's only thread, and on the CPU fallback the awaited
//! read resolves at once, so one path serves both (and the CPU fallback's play path, the CPU
//! kernels of `gamegen-kernels`, reads its inputs synchronously).

use burn::tensor::backend::Backend;
use gamegen_core::games::GameKind;
use gamegen_core::games::canvas::rgb_to_rgba;
use gamegen_core::world::play::{Profiler, Stage, StepInfo};
use gamegen_core::world::{PlayPath, WorldCheckpoint, WorldSession};
use wasm_bindgen::prelude::*;

use crate::backend::{Active, Cpu, Gpu, active};
use crate::game::{RealGame, names};
use crate::js_err;

enum Session {
    Gpu(Box<WorldSession<Gpu>>),
    Cpu(Box<WorldSession<Cpu>>),
}

fn load<B: Backend>(
    ckpt: &WorldCheckpoint,
    vae: Vec<u8>,
    dynamics: Vec<u8>,
    seed: u64,
) -> Result<Box<WorldSession<B>>, JsValue> {
    let device = B::Device::default();
    let vae = ckpt
        .load_vae::<B>(vae, &device)
        .map_err(|e| js_err(format!("vae.safetensors: {e}")))?;
    let model = ckpt
        .load_dynamics::<B>(dynamics, &device)
        .map_err(|e| js_err(format!("dynamics.safetensors: {e}")))?;
    WorldSession::new(model, vae, ckpt.model.clone(), seed, device)
        .map(Box::new)
        .map_err(js_err)
}

/// A trained world model playing its game, one generated frame per `step`.
#[wasm_bindgen]
pub struct NeuralGame {
    session: Session,
    ckpt: WorldCheckpoint,
    events: u8,
}

#[wasm_bindgen]
impl NeuralGame {
    /// Build from the text of `config.json` and the bytes of the two weight files.
    /// `init_backend` must have been awaited first.
    #[wasm_bindgen(constructor)]
    pub fn new(
        config_json: &str,
        vae: Vec<u8>,
        dynamics: Vec<u8>,
        seed: u32,
    ) -> Result<NeuralGame, JsValue> {
        let ckpt = WorldCheckpoint::from_json(config_json)
            .map_err(|e| js_err(format!("config.json: {e}")))?;
        let seed = seed as u64;
        let session = match active() {
            Some(Active::WebGpu { .. }) => Session::Gpu(load::<Gpu>(&ckpt, vae, dynamics, seed)?),
            // On the CPU fallback the session runs the CPU kernels (`PlayPath::for_backend`):
            // simd128 loops over host buffers in wasm memory, about 1.7x faster than the
            // backend's operations here (docs/benchmarks.md).
            Some(Active::Cpu { .. }) => Session::Cpu(load::<Cpu>(&ckpt, vae, dynamics, seed)?),
            None => return Err(js_err("call init_backend() before loading a model")),
        };
        Ok(NeuralGame {
            session,
            ckpt,
            events: 0,
        })
    }

    /// Start from a real frame (RGB `w*h*3` or RGBA `w*h*4` bytes), the score shown in it and
    /// the player's world position.
    pub fn reset(&mut self, frame: &[u8], score: u32, x: i32, y: i32) -> Result<(), JsValue> {
        let (w, h) = self.size();
        let rgb = if frame.len() == w * h * 4 {
            frame
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect()
        } else {
            frame.to_vec()
        };
        let pos = (x as i64, y as i64);
        self.events = 0;
        match &mut self.session {
            Session::Gpu(s) => s.reset(&rgb, score, pos),
            Session::Cpu(s) => s.reset(&rgb, score, pos),
        }
        .map_err(js_err)
    }

    /// Show the model the designer's map of `real` (a `RealGame` made `withMap` and reset, as
    /// it will be played), from the next `reset` on: the model's spatial map starts as that
    /// world instead of black (MaaG's designer control). A model without a spatial module
    /// raises an exception. `clearPreset` goes back to black.
    #[wasm_bindgen(js_name = setPreset)]
    pub fn set_preset(&mut self, real: &RealGame) -> Result<(), JsValue> {
        let views: Vec<(Vec<u8>, (i64, i64))> = real
            .game
            .preset_views()
            .into_iter()
            .map(|(frame, p)| (frame, (p.x as i64, p.y as i64)))
            .collect();
        if views.is_empty() {
            return Err(js_err("this game has no designer's map to show"));
        }
        match &mut self.session {
            Session::Gpu(s) => s.set_preset(&views),
            Session::Cpu(s) => s.set_preset(&views),
        }
        .map_err(js_err)
    }

    #[wasm_bindgen(js_name = clearPreset)]
    pub fn clear_preset(&mut self) -> Result<(), JsValue> {
        match &mut self.session {
            Session::Gpu(s) => s.set_preset(&[]),
            Session::Cpu(s) => s.set_preset(&[]),
        }
        .map_err(js_err)
    }

    /// Whether the model has MaaG's spatial module (an external map it reads).
    #[wasm_bindgen(getter, js_name = hasMap)]
    pub fn has_map(&self) -> bool {
        self.ckpt.model.spatial.is_some()
    }

    /// Pixels of the external map seen so far (0 without a spatial module or before `reset`).
    #[wasm_bindgen(getter, js_name = mapSeenPixels)]
    pub fn map_seen_pixels(&self) -> u32 {
        let map = match &self.session {
            Session::Gpu(s) => &s.map,
            Session::Cpu(s) => &s.map,
        };
        map.as_ref()
            .map_or(0, |m| m.coverage().0.min(u32::MAX as usize) as u32)
    }

    /// Generate the next frame for `action` with `ddim_steps` DDIM steps (1..=16); resolves to
    /// its RGBA bytes (`width * height * 4`). Await each step before the next call (wasm-bindgen
    /// refuses a second call on the object while one is pending).
    pub async fn step(&mut self, action: u32, ddim_steps: usize) -> Result<Vec<u8>, JsValue> {
        let result: Result<(Vec<u8>, StepInfo), _> = match &mut self.session {
            Session::Gpu(s) => s.step_async(action, ddim_steps).await,
            Session::Cpu(s) => s.step_async(action, ddim_steps).await,
        };
        let (frame, info) = result.map_err(js_err)?;
        self.events = info.events;
        Ok(rgb_to_rgba(&frame))
    }

    /// Where a frame's time goes on the CPU fallback: runs one frame per action of `actions`
    /// with `ddim_steps` DDIM steps (continuing the session) and resolves to JSON
    /// `{"frames", "ms_per_frame", "stages": [{"stage", "ms_per_frame"}]}`, timed with
    /// `performance.now()`. On WebGPU the work is queued, so stage times would mean nothing:
    /// that raises an exception.
    #[wasm_bindgen(js_name = profileFrames)]
    pub fn profile_frames(
        &mut self,
        actions: Vec<u32>,
        ddim_steps: usize,
    ) -> Result<String, JsValue> {
        let Session::Cpu(s) = &mut self.session else {
            return Err(js_err(
                "profiling needs the CPU fallback (GPU work is queued)",
            ));
        };
        let performance = web_sys::window()
            .and_then(|w| w.performance())
            .ok_or_else(|| js_err("no performance clock on this page"))?;
        let mut clock = move || performance.now() / 1000.0;
        let mut prof = Profiler::new(&mut clock);
        for &a in &actions {
            let (_, info) = s
                .step_profiled(a, ddim_steps, Some(&mut prof))
                .map_err(js_err)?;
            self.events = info.events;
        }
        let b = prof.breakdown;
        let per = |sec: f64| sec * 1000.0 / b.frames.max(1) as f64;
        let stages: Vec<_> = Stage::ALL
            .iter()
            .map(|&st| serde_json::json!({"stage": st.name(), "ms_per_frame": per(b.get(st))}))
            .collect();
        Ok(serde_json::json!({
            "frames": b.frames,
            "ms_per_frame": per(b.total()),
            "stages": stages,
        })
        .to_string())
    }

    /// On the CPU fallback: plays `actions` from the current state once with the host kernels
    /// and once with the backend's operations (same noise; the session is left as it was) and
    /// returns JSON `{"frames", "latent_max_abs", "rgb_max_abs"}`: the largest differences,
    /// so a page or test can check this wasm build's kernels (e.g. the relaxed-SIMD ones, which
    /// run nowhere else) against Burn's. Raises on WebGPU, which has no host kernels.
    #[wasm_bindgen(js_name = kernelParity)]
    pub fn kernel_parity(
        &mut self,
        actions: Vec<u32>,
        ddim_steps: usize,
    ) -> Result<String, JsValue> {
        let Session::Cpu(s) = &mut self.session else {
            return Err(js_err("kernel parity needs the CPU fallback"));
        };
        let parity = s.kernel_parity(&actions, ddim_steps).map_err(js_err)?;
        serde_json::to_string(&parity).map_err(js_err)
    }

    /// The play path the session computes with: `reference`, `fused` or `host` (the CPU
    /// kernels, the CPU fallback's default; see `PlayPath`). For side-by-side measurements.
    #[wasm_bindgen(js_name = setPlayPath)]
    pub fn set_play_path(&mut self, path: &str) -> Result<(), JsValue> {
        let path: PlayPath = path.parse().map_err(js_err)?;
        match &mut self.session {
            Session::Gpu(s) => s.set_path(path),
            Session::Cpu(s) => s.set_path(path),
        }
        Ok(())
    }

    /// The play path the session computes with (`setPlayPath`).
    #[wasm_bindgen(getter, js_name = playPath)]
    pub fn play_path(&self) -> String {
        match &self.session {
            Session::Gpu(s) => s.path(),
            Session::Cpu(s) => s.path(),
        }
        .name()
        .to_string()
    }

    /// Score of the external record (the score the model is told to draw).
    #[wasm_bindgen(getter)]
    pub fn score(&self) -> u32 {
        let record = match &self.session {
            Session::Gpu(s) => &s.record,
            Session::Cpu(s) => &s.record,
        };
        record.as_ref().map_or(0, |r| r.score)
    }

    /// Event bits LogicNet fired in the last step (bit `i` = the model's event `i`).
    #[wasm_bindgen(getter)]
    pub fn events(&self) -> u8 {
        self.events
    }

    /// Frames generated since the last reset.
    #[wasm_bindgen(getter)]
    pub fn frames(&self) -> u32 {
        let n = match &self.session {
            Session::Gpu(s) => s.frames,
            Session::Cpu(s) => s.frames,
        };
        n.min(u32::MAX as u64) as u32
    }

    #[wasm_bindgen(getter)]
    pub fn game(&self) -> String {
        self.ckpt.game.name().to_string()
    }

    #[wasm_bindgen(getter)]
    pub fn width(&self) -> usize {
        self.size().0
    }

    #[wasm_bindgen(getter)]
    pub fn height(&self) -> usize {
        self.size().1
    }

    /// Dynamics optimisation steps the checkpoint was trained for (0: untrained weights).
    #[wasm_bindgen(getter, js_name = trainedSteps)]
    pub fn trained_steps(&self) -> usize {
        self.ckpt.training.dynamics_steps
    }

    #[wasm_bindgen(js_name = actionNames)]
    pub fn action_names(&self) -> Vec<String> {
        names(self.ckpt.game)
    }
}

impl NeuralGame {
    fn size(&self) -> (usize, usize) {
        let kind: GameKind = self.ckpt.game;
        kind.frame_size()
    }
}
