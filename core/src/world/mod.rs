//! Neural game engines: VAE, recurrent DiT with diffusion forcing, LogicNet, spatial map, DDIM.
//!
//! The model is PlayGen's (seed 004) with MaaG's two modules (seed 003). Its rooms:
//! - [`model`]: the networks as Burn modules, one file per part, and the whole model with its
//!   `tiny` and `paper` presets.
//! - [`schedule`], [`ddim`]: the 1000-step sigmoid schedule, v-prediction maths, min-SNR
//!   weights; the DDIM plan and update.
//! - [`record`]: the external score record and the digit tokens.
//! - [`play`]: a model as a game: the session (state, reset, step), the one DDIM sampler loop
//!   over a cell, the cells of the three play paths (the Burn reference, the Burn fused pass, the
//!   CPU kernels of `gamegen-kernels`), frames and the profiler.
//! - [`train`]: the VAE step, the diffusion-forcing step, LogicNet's refit.
//! - [`eval`]: the playability evaluation networks, Fréchet distance, SpaCon.
//! - [`checkpoint`]: the model directory (config, weights, training state).

pub mod checkpoint;
pub mod ddim;
pub mod eval;
pub mod model;
pub mod play;
pub mod record;
pub mod schedule;
pub mod train;

pub use checkpoint::{TrainingState, WorldCheckpoint};
pub use ddim::{DdimPlan, MAX_DDIM_STEPS, StatePass, ddim_plan};
pub use model::{
    DitCell, DitConfig, DitInput, LinkResult, LogicNet, LogicNetConfig, MapEncoder,
    MapEncoderConfig, SpatialMap, VHead, Vae, VaeConfig, VaeLoss, WorldConfig, WorldModel,
};
pub use play::{KernelParity, PlayPath, SessionError, WorldSession};
pub use record::{ScoreRecord, score_digits};
pub use schedule::{NUM_TIMESTEPS, Schedule};
pub use train::{ClipBatch, TrainConfig, TrainStepStats, VaeTrainer, WorldTrainer};

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
