//! ByteCraft on native targets: checkpoint directories on disk (memory-mapped) and the jobs
//! behind `gamegen bytecraft ...`.

pub mod chat_template;
pub mod checkpoint;
pub mod corpus;
pub mod generate;
pub mod tokenizer;
pub mod tokenizer_train;
pub mod train;

pub use checkpoint::{Checkpoint, CheckpointError};
