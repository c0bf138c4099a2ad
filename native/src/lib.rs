//! gamegen on native targets: concrete backends, file I/O, long-running jobs, the demo server.

pub mod backend;
pub mod fsutil;
pub mod frame_ae;
pub mod progress;
pub mod swf_batch;
