//! A world model as a game: the session, one frame per `step(action)`, on one of three play
//! paths that compute the same frames up to float rounding.
//!
//! - [`session`]: [`WorldSession`], the state (recurrent state, score record, spatial map) and
//!   reset/step, sync and async.
//! - `sampler`: the only DDIM loop, over a `Cell` (one pass: `x` -> new state and v).
//! - `cell_burn`: the cell on the backend, as training computes it or fused.
//! - `cell_host`: the cell and the frame's other networks on the CPU kernels of
//!   `gamegen-kernels`, built from the Burn modules.
//! - `modulations`: the adaLN modulations per (noise level, action), kept per session.
//! - [`frame`]: RGB8 frames <-> tensors. [`profile`]: time per stage of a frame.
//! - [`parity`]: the CPU kernels against the backend in the build that runs (the browser
//!   tests call it), and the table of parity tests of every path.

mod cell_burn;
mod cell_host;
pub mod frame;
mod modulations;
pub mod parity;
pub mod profile;
mod sampler;
pub mod session;

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

pub use frame::{planar_to_rgb8, rgb8_to_tensor, tensor_to_rgb8, tensor_to_rgb8_async};
pub use parity::KernelParity;
pub use profile::{Breakdown, Profiler, Stage};
pub use session::{SessionError, StepInfo, WorldSession};

/// How a session computes a frame. Every path runs the same network and the same DDIM loop;
/// they differ in the operations that carry it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlayPath {
    /// Exactly the operations training runs: what every other path is checked against.
    Reference,
    /// The backend's fused operations (layer norm, attention, the adaLN gates folded into the
    /// output layers, the DDIM update as one multiply-add): for GPUs, where every operation is
    /// a kernel launch.
    Fused,
    /// The CPU kernels of `gamegen-kernels` on host buffers: for backends whose tensors live in
    /// host memory, where a frame's hundreds of small operations cost more in dispatch than in
    /// arithmetic (about 2x faster there; docs/benchmarks.md).
    Host,
}

impl PlayPath {
    pub const ALL: [PlayPath; 3] = [PlayPath::Reference, PlayPath::Fused, PlayPath::Host];

    /// The path a session on backend `B` runs unless told otherwise: [`PlayPath::Host`] on the
    /// pure-Rust CPU backends (flex, ndarray: natively and the browser's CPU fallback), whose
    /// tensors are host memory, [`PlayPath::Fused`] elsewhere (GPUs, and autodiff wrappers).
    pub fn for_backend<B: Backend>(device: &B::Device) -> Self {
        match B::name(device).as_str() {
            "flex" | "ndarray" => PlayPath::Host,
            _ => PlayPath::Fused,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PlayPath::Reference => "reference",
            PlayPath::Fused => "fused",
            PlayPath::Host => "host",
        }
    }
}

impl fmt::Display for PlayPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PlayPath {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PlayPath::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown play path `{s}` (reference, fused or host)"))
    }
}
