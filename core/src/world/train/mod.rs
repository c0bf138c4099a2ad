//! Training: the VAE's step, the diffusion-forcing step of the recurrent cell (with LogicNet on
//! the same unroll), and LogicNet's refit on the states it reads at play time.
//!
//! - [`diffusion`]: clips, the training config, the diffusion-forcing step ([`WorldTrainer`]).
//! - [`vae`]: the VAE's own step ([`VaeTrainer`]).
//! - [`logic_fit`]: stage three, LogicNet refitted on the states it reads at play time.

pub mod diffusion;
pub mod logic_fit;
pub mod vae;

pub use diffusion::{ClipBatch, TrainConfig, TrainError, TrainStepStats, WorldTrainer};
pub use vae::VaeTrainer;
