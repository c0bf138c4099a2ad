//! Data on disk and in memory: synthetic frames, episodes, collection, balancing, batches.

pub mod agents;
pub mod balance;
pub mod clips;
pub mod collect;
pub mod episode;
pub mod longtail;
pub mod shard;
pub mod stats;
pub mod synthetic;
