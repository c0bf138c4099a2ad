//! Data on disk and in memory: synthetic frames, episodes, collection, balancing, batches.

pub mod synthetic;
pub mod episode;
pub mod shard;
pub mod agents;
pub mod collect;
pub mod stats;
pub mod clips;
pub mod longtail;
pub mod balance;
