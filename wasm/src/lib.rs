//! gamegen in the browser.
//!
//! The page asks `navigator.gpu` for an adapter first; with one, models run on burn-wgpu over
//! WebGPU, otherwise on the pure-Rust CPU backend compiled to wasm. The choice is made once at
//! load time and reported back to the page, which shows it to the user.

mod backend;
mod frame_ae;
mod game;
mod studio;
mod world;

pub use backend::init_backend;
pub use frame_ae::FrameAe;
pub use game::RealGame;
pub use studio::Studio;
pub use world::NeuralGame;

use wasm_bindgen::prelude::*;

/// Version and build facts, shown on the pages.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Turn any displayable error into a JS exception (never an abort of the module).
pub(crate) fn js_err(e: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}
