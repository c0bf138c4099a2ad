//! ByteCraft on native targets: checkpoint directories on disk (memory-mapped) and the jobs
//! behind `gamegen bytecraft ...`.

pub mod checkpoint;
pub mod generate;
pub mod tokenizer;

pub use checkpoint::{Checkpoint, CheckpointError};
