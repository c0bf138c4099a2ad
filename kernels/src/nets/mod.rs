//! The world model's networks composed of the kernels: what a play session on a CPU runs per
//! frame. Each mirrors a Burn module of `gamegen-core` (which builds these from its modules'
//! weights and checks, in its parity tests, that both give the same values).

mod decoder;
mod dit;
mod map_cnn;
mod res_block;

pub use decoder::LightDecoder;
pub use dit::{BlockModulation, Dit, DitBlock, DitModulation, StateGate};
pub use map_cnn::MapEncoder;
pub use res_block::{ResBlock, VHead};
