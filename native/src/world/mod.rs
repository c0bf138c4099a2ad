//! Native side of the neural game engines: training runs on collected data and rollouts.
//!
//! - [`data`]: a collected dataset in memory, the latent cache, clip batches.
//! - [`train`]: `gamegen world train` (two stages, checkpoints, log, loss PNG, resume).
//! - [`rollout`]: `gamegen world rollout` (model alone after a real first frame).
//! - [`evalnets`]: `gamegen world vam train|eval` (the evaluation network on real frames).
//! - [`bench`]: `gamegen world bench` (FPS per backend and play path, time per stage).
//! - [`eval`]: `gamegen world eval` (recorded episodes replayed: PSNR, SSIM, NumCon, FPS).

pub mod bench;
pub mod data;
pub mod decoder;
pub mod eval;
pub mod evalnets;
pub mod rollout;
pub mod train;
