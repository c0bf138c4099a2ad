//! The on-disk (and over-the-wire) shape of a trained world model: one directory with
//! `config.json` ([`WorldCheckpoint`]), `vae.safetensors` and `dynamics.safetensors`.
//!
//! The VAE and the dynamics model are separate files because they are trained in separate
//! stages (PlayGen): the VAE is frozen before the dynamics stage starts, so a dynamics resume
//! never rewrites it. Everything here works on bytes (core also runs in wasm).

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::model::{WorldConfig, WorldModel};
use super::vae::Vae;
use crate::checkpoint::{self, CheckpointError};
use crate::games::GameKind;

pub const CONFIG_FILE: &str = "config.json";
pub const VAE_FILE: &str = "vae.safetensors";
pub const DYNAMICS_FILE: &str = "dynamics.safetensors";

/// Training progress kept beside the weights, so `--resume` knows where it stands and a model
/// card can be checked against the files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingState {
    /// VAE optimisation steps done (stage one).
    pub vae_steps: usize,
    /// Dynamics optimisation steps done (stage two).
    pub dynamics_steps: usize,
    /// LogicNet steps done on play-time states (stage three; `logic_fit`). Reset to 0 whenever
    /// stage two trains further, since that retrains LogicNet jointly.
    #[serde(default)]
    pub logic_steps: usize,
    /// Wall-clock seconds spent over all runs.
    pub wall_seconds: f64,
    /// Frames per clip in the dynamics stage.
    pub clip_len: usize,
    /// Seed of the run (weights init, noise, clip sampling).
    pub seed: u64,
}

/// `config.json` of a world-model directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldCheckpoint {
    /// Always "gamegen-world" (so a wrong `config.json` is recognised as such).
    pub format: String,
    pub game: GameKind,
    /// `"tiny"`, `"paper"` or `"custom"`.
    pub preset: String,
    pub model: WorldConfig,
    #[serde(default)]
    pub training: TrainingState,
}

pub const FORMAT: &str = "gamegen-world";

impl WorldCheckpoint {
    pub fn new(game: GameKind, preset: &str, model: WorldConfig) -> Self {
        Self {
            format: FORMAT.into(),
            game,
            preset: preset.into(),
            model,
            training: TrainingState::default(),
        }
    }

    /// Parse and check `config.json`: the format tag, the model config and that it fits the
    /// game's frame size and action count.
    pub fn from_json(text: &str) -> Result<Self, CheckpointError> {
        let c: Self = checkpoint::config_from_json(text)?;
        if c.format != FORMAT {
            return Err(CheckpointError::Config(format!(
                "format is '{}', expected '{FORMAT}' (is this a world-model directory?)",
                c.format
            )));
        }
        c.model
            .validate()
            .map_err(|e| CheckpointError::Config(e.to_string()))?;
        let (w, h) = c.game.frame_size();
        if (c.model.vae.width, c.model.vae.height) != (w, h) {
            return Err(CheckpointError::Config(format!(
                "the model is for {}x{} frames but {} renders {w}x{h}",
                c.model.vae.width,
                c.model.vae.height,
                c.game.name()
            )));
        }
        let actions = c.game.action_names().len();
        if c.model.dit.num_actions != actions {
            return Err(CheckpointError::Config(format!(
                "the model has {} actions but {} has {actions}",
                c.model.dit.num_actions,
                c.game.name()
            )));
        }
        Ok(c)
    }

    pub fn to_json(&self) -> String {
        checkpoint::config_to_json(self)
    }

    /// The VAE with weights from `bytes`.
    pub fn load_vae<B: Backend>(
        &self,
        bytes: Vec<u8>,
        device: &B::Device,
    ) -> Result<Vae<B>, CheckpointError> {
        let vae = self
            .model
            .vae
            .init::<B>(device)
            .map_err(|e| CheckpointError::Config(e.to_string()))?;
        checkpoint::from_safetensors(vae, bytes)
    }

    /// The dynamics model with weights from `bytes`.
    pub fn load_dynamics<B: Backend>(
        &self,
        bytes: Vec<u8>,
        device: &B::Device,
    ) -> Result<WorldModel<B>, CheckpointError> {
        let model = self
            .model
            .init::<B>(device)
            .map_err(|e| CheckpointError::Config(e.to_string()))?;
        checkpoint::from_safetensors(model, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray;

    fn traveler() -> WorldCheckpoint {
        let (w, h) = GameKind::Traveler.frame_size();
        let n = GameKind::Traveler.action_names().len();
        WorldCheckpoint::new(GameKind::Traveler, "tiny", WorldConfig::tiny(h, w, n, 1))
    }

    #[test]
    fn config_round_trips_and_weights_reload() {
        let c = traveler();
        let back = WorldCheckpoint::from_json(&c.to_json()).unwrap();
        assert_eq!(back, c);
        let dev = Default::default();
        let vae = c.model.vae.init_seeded::<B>(3, &dev).unwrap();
        let bytes = checkpoint::to_safetensors(&vae).unwrap();
        let again = c.load_vae::<B>(bytes.clone(), &dev).unwrap();
        // The header's metadata order is not stable, so compare tensor by tensor.
        let resaved = checkpoint::to_safetensors(&again).unwrap();
        let (a, b) = (
            safetensors::SafeTensors::deserialize(&bytes).unwrap(),
            safetensors::SafeTensors::deserialize(&resaved).unwrap(),
        );
        let mut names = a.names();
        names.sort();
        assert!(!names.is_empty());
        for n in names {
            let (x, y) = (a.tensor(n).unwrap(), b.tensor(n).unwrap());
            assert_eq!(x.shape(), y.shape(), "{n}");
            assert_eq!(x.data(), y.data(), "{n}");
        }
    }

    #[test]
    fn wrong_configs_are_named() {
        let mut c = traveler();
        c.format = "frame-ae".into();
        let e = WorldCheckpoint::from_json(&c.to_json()).unwrap_err();
        assert!(e.to_string().contains("world-model directory"), "{e}");

        let mut c = traveler();
        c.game = GameKind::Pong;
        let e = WorldCheckpoint::from_json(&c.to_json()).unwrap_err();
        assert!(e.to_string().contains("pong renders 128x128"), "{e}");

        let e = WorldCheckpoint::from_json("{").unwrap_err();
        assert!(e.to_string().starts_with("invalid config.json"), "{e}");
    }

    #[test]
    fn truncated_weights_are_an_error() {
        let c = traveler();
        let dev = Default::default();
        let vae = c.model.vae.init_seeded::<B>(3, &dev).unwrap();
        let bytes = checkpoint::to_safetensors(&vae).unwrap();
        assert!(
            c.load_vae::<B>(bytes[..bytes.len() / 2].to_vec(), &dev)
                .is_err()
        );
    }
}
