//! Neural game engines: VAE, recurrent DiT with diffusion forcing, LogicNet, spatial map, DDIM.
//!
//! The model is PlayGen's (seed 004) with MaaG's two modules (seed 003); the facts it follows are
//! in `shared/reference/playgen-maag.md`. One file per part:
//! - [`vae`]: KL autoencoder, frames <-> small latent grid (the decoder runs every frame).
//! - [`schedule`]: the 1000-step sigmoid schedule, v-prediction maths, min-SNR weights.
//! - [`dit`]: the recurrent DiT transition cell (z_{t-1}, noisy latent) -> z_t, and the v head.
//! - [`ddim`]: DDIM (eta 0) with S steps plus the final pass whose z becomes the state.
//! - [`logicnet`] and [`record`]: events from (z_{t-1}, action); the external score record.
//! - [`spatial`]: the external map, local crops, the map CNN and frame linking.
//! - [`model`]: everything trainable in one module, with `tiny` and `paper` presets.
//! - [`train`]: the diffusion-forcing training step.
//! - [`logic_fit`]: stage three, LogicNet refitted on the states it reads at play time.
//! - [`engine`]: an inference session (native and wasm: no threads, no file system).

pub mod blocks;
pub mod checkpoint;
pub mod ddim;
pub mod dit;
pub mod engine;
pub mod logic_fit;
pub mod logicnet;
pub mod model;
pub mod record;
pub mod schedule;
pub mod spatial;
pub mod train;
pub mod vae;

pub use checkpoint::{TrainingState, WorldCheckpoint};
pub use ddim::{DdimPlan, ddim_plan};
pub use dit::{DitCell, DitConfig, DitInput, VHead};
pub use engine::{SessionError, WorldSession};
pub use logicnet::{LogicNet, LogicNetConfig};
pub use model::{WorldConfig, WorldModel};
pub use record::{ScoreRecord, score_digits};
pub use schedule::{NUM_TIMESTEPS, Schedule};
pub use spatial::{LinkResult, MapEncoder, MapEncoderConfig, SpatialMap};
pub use train::{ClipBatch, TrainConfig, TrainStepStats, WorldTrainer};
pub use vae::{Vae, VaeConfig, VaeLoss};

/// A configuration that would build a nonsensical or absurdly large model. Raised by the
/// `validate` methods before anything is allocated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid world-model config: {0}")]
pub struct ConfigError(pub String);

/// `Err(ConfigError)` unless `1 <= value <= max`.
pub(crate) fn check_range(name: &str, value: usize, max: usize) -> Result<(), ConfigError> {
    if value == 0 || value > max {
        return Err(ConfigError(format!(
            "{name} must be in 1..={max}, got {value}"
        )));
    }
    Ok(())
}
