//! The frame autoencoder: the project's first model through the whole pipe.
//!
//! A small convolutional autoencoder over synthetic frames (`data::synthetic`). It is trained
//! natively (`gamegen ae train`), shipped in `models/frame-ae`, and run again in the browser on
//! WebGPU or the CPU fallback; a test checks that both give the same output. It is deliberately
//! plain (strided convs down, nearest upsampling + convs up) so that every op it uses is one the
//! world model's decoder needs too.

mod model;
mod train;

pub use model::{FrameAutoencoder, FrameAutoencoderConfig};
pub use train::{AeTrainConfig, AeTrainer};
