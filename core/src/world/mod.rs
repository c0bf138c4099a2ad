//! Neural game engines: VAE, recurrent DiT with diffusion forcing, LogicNet, spatial map, DDIM.
//!
//! The model is PlayGen's (seed 004) with MaaG's two modules (seed 003); the facts it follows are
//! in `shared/reference/playgen-maag.md`. One file per part:
//! - [`vae`]: KL autoencoder, frames <-> small latent grid.
//! - [`light_decoder`]: the cheap play decoder (runs every frame), trained after the VAE.
//! - [`schedule`]: the 1000-step sigmoid schedule, v-prediction maths, min-SNR weights.
//! - [`dit`]: the recurrent DiT transition cell (z_{t-1}, noisy latent) -> z_t, and the v head.
//! - [`ddim`]: DDIM (eta 0) with S steps plus the final pass whose z becomes the state.
//! - [`logicnet`] and [`record`]: events from (z_{t-1}, action); the external score record.
//! - [`spatial`]: the external map, local crops, the map CNN and frame linking.
//! - [`model`]: everything trainable in one module, with `tiny` and `paper` presets.
//! - [`train`]: the diffusion-forcing training step.
//! - [`logic_fit`]: stage three, LogicNet refitted on the states it reads at play time.
//! - [`evalnet`], [`frechet`], [`spacon`]: the playability evaluation (Valid Action Model,
//!   valid numerical model and feature network in one CNN; Fréchet distance; SpaCon).
//! - [`engine`]: an inference session (native and wasm: no threads, no file system).
//! - [`host_ops`]: GELU, SiLU and attention computed on the host for CPU backends.
//! - [`host_conv`]: direct 3x3 convolutions and linear layers on the host (play on a CPU).
//! - [`host_dit`]: the DiT cell's fused pass on the host (play on a CPU).

pub mod blocks;
pub mod checkpoint;
pub mod ddim;
pub mod dit;
pub mod engine;
pub mod evalnet;
pub mod frechet;
pub mod host_conv;
pub mod host_dit;
pub mod host_ops;
pub mod light_decoder;
pub mod logic_fit;
pub mod logicnet;
pub mod model;
pub mod record;
pub mod schedule;
pub mod spacon;
pub mod spatial;
pub mod train;
pub mod vae;

pub use checkpoint::{TrainingState, WorldCheckpoint};
pub use ddim::{DdimPlan, ddim_plan};
pub use dit::{DitCell, DitConfig, DitInput, VHead};
pub use engine::{KernelParity, SessionError, WorldSession};
pub use host_ops::Kernels;
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

/// The most parameters a world-model config may describe (VAE, DiT and LogicNet together):
/// 2^28, 1 GiB of f32 weights (PlayGen's paper sizes come to under 200 M by the estimates the
/// configs make, which round up). Every field has its own
/// range, but fields at the top of their ranges together (DiT hidden 4096 x depth 64 x
/// mlp_ratio 8) would describe tens of billions of parameters, which `init` would try to
/// allocate before a weights file is even read.
pub const MAX_PARAMETERS: u64 = 1 << 28;

/// `Err(ConfigError)` if `estimate` (parameters of the part called `what`) is over
/// [`MAX_PARAMETERS`].
pub(crate) fn check_parameters(what: &str, estimate: u64) -> Result<(), ConfigError> {
    if estimate > MAX_PARAMETERS {
        return Err(ConfigError(format!(
            "the {what} would have about {estimate} parameters ({:.1} GB of f32), over the \
             limit of {MAX_PARAMETERS}; check config.json",
            estimate as f64 * 4.0 / 1e9
        )));
    }
    Ok(())
}

/// `Err(ConfigError)` unless `1 <= value <= max`.
pub(crate) fn check_range(name: &str, value: usize, max: usize) -> Result<(), ConfigError> {
    if value == 0 || value > max {
        return Err(ConfigError(format!(
            "{name} must be in 1..={max}, got {value}"
        )));
    }
    Ok(())
}
