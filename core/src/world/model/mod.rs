//! The world model's networks (Burn modules, generic over the backend), one file per part:
//! - [`vae`]: KL autoencoder, frames <-> small latent grid.
//! - [`light_decoder`]: the cheap play decoder (runs every frame), trained after the VAE.
//! - [`pixel_weights`]: rare-colour weights of both decoders' reconstruction loss.
//! - [`dit`]: the recurrent DiT transition cell (z_{t-1}, noisy latent) -> z_t, and the v head.
//! - [`state_gate`]: the cell's optional gated full-resolution state update.
//! - [`blocks`]: layers the parts share (3x3/1x1 convolutions, group norm, residual block).
//! - [`logicnet`]: events from (z_{t-1}, action).
//! - [`spatial`]: the external map, local crops, the map CNN and frame linking.
//! - [`world`]: everything trainable in one module, with `tiny` and `paper` presets.

pub mod blocks;
pub mod dit;
pub mod light_decoder;
pub mod logicnet;
pub mod pixel_weights;
pub mod spatial;
pub mod state_gate;
pub mod vae;
pub mod world;

pub use dit::{DitCell, DitConfig, DitInput, VHead};
pub use logicnet::{LogicNet, LogicNetConfig};
pub use spatial::{LinkResult, MapEncoder, MapEncoderConfig, SpatialMap};
pub use state_gate::StateUpdate;
pub use vae::{Vae, VaeConfig, VaeLoss};
pub use world::{RecordConfig, SpatialConfig, WorldConfig, WorldModel};
