//! Native side of the neural game engines: training runs on collected data and rollouts.
//!
//! - [`data`]: a collected dataset in memory, the latent cache, clip batches.
//! - [`train`]: `gamegen world train` (two stages, checkpoints, log, loss PNG, resume).
//! - [`rollout`]: `gamegen world rollout` (model alone after a real first frame).

pub mod data;
pub mod rollout;
pub mod train;
