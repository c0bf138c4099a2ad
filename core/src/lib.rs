//! gamegen-core: everything that is model, game or format, generic over the Burn backend.
//!
//! Nothing in here names a backend type, touches the file system in a way that breaks wasm,
//! or parses command lines: the final binaries (`gamegen`, `gamegen-wasm`) pick the backend and
//! do the I/O. See `docs/architecture.md` for the map of the crate.

pub mod autoencoder;
pub mod bytecraft;
pub mod checkpoint;
pub mod data;
pub mod games;
pub mod metrics;
pub mod optim;
pub mod rng;
pub mod swf;
pub mod world;
