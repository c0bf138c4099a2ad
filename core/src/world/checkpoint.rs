//! The on-disk (and over-the-wire) shape of a trained world model: one directory with
//! `config.json` ([`WorldCheckpoint`]), `vae.safetensors` and `dynamics.safetensors`.
//!
//! The VAE and the dynamics model are separate files because they are trained in separate
//! stages (PlayGen): the VAE is frozen before the dynamics stage starts, so a dynamics resume
//! never rewrites it. Everything here works on bytes (core also runs in wasm).

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, CheckpointError};
use crate::games::GameKind;
use crate::world::model::vae::Vae;
use crate::world::model::{WorldConfig, WorldModel};

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
    /// The file beside this one with the optimiser state of this checkpoint (AdamW moments of
    /// every stage that ran, the long-tail sampler), so `--resume` continues exactly. Absent
    /// in checkpoints from before it was saved: their moments restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer_state: Option<String>,
    /// Length of `train-log.jsonl` at this checkpoint: rows after it were written by a run
    /// killed before its next checkpoint, and a resumed run (which redoes those steps) cuts
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_bytes: Option<u64>,
    /// Data-parallel replicas the VAE and dynamics batches were split over. The split changes
    /// how gradients are summed (float rounding), so a resumed run keeps it unless told
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<usize>,
    /// The dynamics loss's change weighting (`TrainConfig::change_weight`) this run trains
    /// with; absent: 0, the plain mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_weight: Option<f64>,
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
        // The file is checked before the model is allocated for it.
        checkpoint::check_weights(&bytes)?;
        let vae = self
            .model
            .vae
            .init::<B>(device)
            .map_err(|e| CheckpointError::Config(e.to_string()))?;
        checkpoint::apply_checked(vae, bytes)
    }

    /// The dynamics model with weights from `bytes`.
    pub fn load_dynamics<B: Backend>(
        &self,
        bytes: Vec<u8>,
        device: &B::Device,
    ) -> Result<WorldModel<B>, CheckpointError> {
        checkpoint::check_weights(&bytes)?;
        let model = self
            .model
            .init::<B>(device)
            .map_err(|e| CheckpointError::Config(e.to_string()))?;
        checkpoint::apply_checked(model, bytes)
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

    /// The byte range of tensor `name`'s data in safetensors `bytes`.
    fn data_range(bytes: &[u8], name: &str) -> std::ops::Range<usize> {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let off = &header[name]["data_offsets"];
        let (a, b) = (off[0].as_u64().unwrap(), off[1].as_u64().unwrap());
        8 + n + a as usize..8 + n + b as usize
    }

    fn first_tensor(bytes: &[u8]) -> String {
        let mut names: Vec<String> = safetensors::SafeTensors::deserialize(bytes)
            .unwrap()
            .names()
            .into_iter()
            .map(str::to_string)
            .collect();
        names.sort();
        names.into_iter().next().unwrap()
    }

    /// One line, naming what is wrong.
    fn one_line(e: &CheckpointError) -> String {
        let text = e.to_string();
        assert_eq!(text.lines().count(), 1, "{text}");
        text
    }

    #[test]
    fn truncated_vae_and_dynamics_are_one_line_errors() {
        let c = traveler();
        let dev = Default::default();
        let vae =
            checkpoint::to_safetensors(&c.model.vae.init_seeded::<B>(3, &dev).unwrap()).unwrap();
        let dynamics =
            checkpoint::to_safetensors(&c.model.init_seeded::<B>(3, &dev).unwrap()).unwrap();
        for cut in [0, 5, 8, 100, vae.len() / 2, vae.len() - 1] {
            let e = c.load_vae::<B>(vae[..cut].to_vec(), &dev).unwrap_err();
            assert!(
                matches!(e, CheckpointError::Format(_)),
                "vae cut {cut}: {e}"
            );
            one_line(&e);
        }
        for cut in [0, 8, dynamics.len() / 3, dynamics.len() - 1] {
            let e = c
                .load_dynamics::<B>(dynamics[..cut].to_vec(), &dev)
                .unwrap_err();
            assert!(
                matches!(e, CheckpointError::Format(_)),
                "dynamics cut {cut}: {e}"
            );
            one_line(&e);
        }
        // The untouched files load: the checks above can fail.
        c.load_vae::<B>(vae, &dev).unwrap();
        c.load_dynamics::<B>(dynamics, &dev).unwrap();
    }

    #[test]
    fn a_wrong_shape_names_the_tensor_and_both_shapes() {
        let c = traveler();
        let dev = Default::default();
        let vae =
            checkpoint::to_safetensors(&c.model.vae.init_seeded::<B>(3, &dev).unwrap()).unwrap();
        let mut other = c.clone();
        other.model.vae.channels = 24;
        let e = other.load_vae::<B>(vae, &dev).unwrap_err();
        let text = one_line(&e);
        match &e {
            CheckpointError::Shape {
                path,
                expected,
                found,
            } => {
                assert!(text.contains(path.as_str()), "{text}");
                assert_ne!(expected, found, "{text}");
                assert!(
                    text.contains(&format!("{found:?}")) && text.contains(&format!("{expected:?}")),
                    "{text}"
                );
            }
            other => panic!("expected a shape error, got {other}"),
        }
    }

    #[test]
    fn nan_or_infinite_weights_are_refused_naming_the_tensor() {
        let c = traveler();
        let dev = Default::default();
        let vae =
            checkpoint::to_safetensors(&c.model.vae.init_seeded::<B>(3, &dev).unwrap()).unwrap();
        let dynamics =
            checkpoint::to_safetensors(&c.model.init_seeded::<B>(3, &dev).unwrap()).unwrap();
        for (bad, at) in [(f32::NAN, 0), (f32::INFINITY, 1), (f32::NEG_INFINITY, 2)] {
            let name = first_tensor(&vae);
            let range = data_range(&vae, &name);
            let mut damaged = vae.clone();
            let pos = range.start + 4 * at;
            damaged[pos..pos + 4].copy_from_slice(&bad.to_le_bytes());
            let e = c.load_vae::<B>(damaged, &dev).unwrap_err();
            let text = one_line(&e);
            assert!(
                matches!(&e, CheckpointError::NonFinite { path, index, .. }
                    if *path == name && *index == at),
                "{text}"
            );
            assert!(
                text.contains(&name) && text.contains("non-finite"),
                "{text}"
            );
        }
        let name = first_tensor(&dynamics);
        let range = data_range(&dynamics, &name);
        let mut damaged = dynamics.clone();
        let pos = range.end - 4;
        damaged[pos..pos + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        let e = c.load_dynamics::<B>(damaged, &dev).unwrap_err();
        assert!(one_line(&e).contains(&name), "{e}");
        // The same bytes without the NaN load.
        c.load_dynamics::<B>(dynamics, &dev).unwrap();
    }

    #[test]
    fn absurd_dimensions_are_refused_before_allocating() {
        let json = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v: serde_json::Value = serde_json::from_str(&traveler().to_json()).unwrap();
            edit(&mut v);
            WorldCheckpoint::from_json(&v.to_string())
        };
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "dit.hidden",
                Box::new(|v| v["model"]["dit"]["hidden"] = 1_000_000_000u64.into()),
            ),
            (
                "dit.depth",
                Box::new(|v| v["model"]["dit"]["depth"] = 1_000_000u64.into()),
            ),
            (
                "vae.channels",
                Box::new(|v| v["model"]["vae"]["channels"] = 1_000_000u64.into()),
            ),
            (
                "invalid config.json",
                Box::new(|v| v["model"]["dit"]["hidden"] = (-1i64).into()),
            ),
            (
                "invalid config.json",
                Box::new(|v| v["model"]["dit"]["hidden"] = 1e30.into()),
            ),
            (
                "dit.heads",
                Box::new(|v| v["model"]["dit"]["heads"] = 0u64.into()),
            ),
            (
                "vae.channel_mult",
                Box::new(|v| v["model"]["vae"]["channel_mult"] = vec![1u64; 100_000].into()),
            ),
            // Every field within its own range, but 34 billion parameters together.
            (
                "DiT would have about",
                Box::new(|v| {
                    let d = &mut v["model"]["dit"];
                    d["hidden"] = 4096.into();
                    d["depth"] = 64.into();
                    d["heads"] = 64.into();
                    d["mlp_ratio"] = 8.into();
                    d["cond_dim"] = 4096.into();
                }),
            ),
            // The same for the VAE: widest level 2048 channels, 8 res blocks a level.
            (
                "VAE would have about",
                Box::new(|v| {
                    let a = &mut v["model"]["vae"];
                    a["channels"] = 1024.into();
                    a["decoder_channels"] = 1024.into();
                    a["channel_mult"] = vec![1u64, 2, 2].into();
                    a["num_res_blocks"] = 8.into();
                    a["decoder_res_blocks"] = 8.into();
                }),
            ),
        ];
        for (want, edit) in &cases {
            let e = json(edit.as_ref()).unwrap_err();
            let text = one_line(&e);
            assert!(text.contains(want), "wanted `{want}` in: {text}");
        }
        // The shipped presets stay within the limits.
        let (w, h) = GameKind::Traveler.frame_size();
        let n = GameKind::Traveler.action_names().len();
        for model in [
            WorldConfig::tiny(h, w, n, 1),
            WorldConfig::paper(h, w, n, 1),
        ] {
            model.validate().unwrap();
            let total = model.vae.parameter_estimate() + model.dit.parameter_estimate();
            assert!(total < crate::world::MAX_PARAMETERS, "{total}");
        }
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
