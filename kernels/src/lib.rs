//! gamegen's CPU kernels: the world model's play networks on host buffers, for the CPU
//! backends natively and the browser's CPU fallback.
//!
//! A CPU backend's tensors already live in host memory, and at play sizes a frame is hundreds
//! of small tensor operations whose fixed costs outweigh their arithmetic. These kernels run the
//! same networks as plain loops over `f32` buffers, vectorised, about twice as fast as the
//! backend's operations (docs/benchmarks.md). They know nothing of Burn: `gamegen-core`
//! builds them from its modules' weights (`world::play::cell_host`).
//!
//! All the crate's `unsafe` code and all its `cfg(target_arch)` code is here: AVX2 + FMA on
//! x86-64 (picked at run time), simd128 in the browser build and relaxed SIMD
//! (`f32x4.relaxed_madd`) in the browser build made with `+relaxed-simd`.
//!
//! - [`elementwise`]: `exp`, `erf`, GELU, SiLU, `tanh` over slices; a lane sum.
//! - [`linear`], [`conv`]: the packed multiply-add kernel as linear layers, 3x3 and 1x1
//!   convolutions over channels-last [`image`]s with a zero border.
//! - [`norm`]: group norm, layer norm.
//! - [`attention`]: multi-head self-attention from a fused QKV projection.
//! - [`nets`]: the DiT cell's pass, the v head, the play decoder and the map CNN.

pub mod attention;
pub mod conv;
pub mod elementwise;
pub mod image;
pub mod linear;
pub mod nets;
pub mod norm;
mod packed;

pub use conv::{Conv1, Conv3};
pub use image::Image;
pub use linear::Linear;
pub use norm::GroupNorm;
