//! gamegen on native targets: concrete backends, file I/O, long-running jobs, the demo server.

/// Re-exported so that `with_backend!` works in crates that do not depend on Burn directly.
pub use burn;

pub mod backend;
pub mod bytecraft;
pub mod collect;
pub mod frame_ae;
pub mod fsutil;
pub mod gifenc;
pub mod plot;
pub mod progress;
pub mod replicas;
pub mod ruffle_classify;
pub mod ruffle_report;
pub mod serve;
pub mod swf_batch;
pub mod swf_synth;
pub mod train_bench;
pub mod world;
