//! The gated full-resolution state update of the recurrent cell.
//!
//! Without it the new state is rewritten whole from the DiT's tokens: every token must carry
//! `z_channels x patch^2` values through a `hidden`-wide bottleneck, so nothing passes through
//! a pass unchanged (a score bar, a wall, the ball's exact position) and the noisy latent never
//! reaches the state at its own resolution. The gate adds two full-resolution paths, GRU-style:
//!
//! - a 3x3 convolution over `[z_prev, x_noisy]` joins the DiT's output before the `tanh`, so
//!   local detail of the previous state and of the frame being denoised reaches the candidate
//!   state `h` directly;
//! - an update gate `u = sigmoid(conv1x1([z_prev, h]))` mixes `z = z_prev + u (h - z_prev)`, so
//!   what does not change can be kept as it was.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::world::model::blocks::{conv1, conv3};

/// How a pass makes the new state from its output. Saved in `config.json` (absent in older
/// files: `replace`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateUpdate {
    /// `z = out2(tanh(out1(DiT output)))`: PlayGen's cell.
    #[default]
    Replace,
    /// The gated update of [`StateGate`]; the v head also reads the noisy latent.
    Gated,
}

impl std::str::FromStr for StateUpdate {
    type Err = crate::world::ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "replace" => Ok(Self::Replace),
            "gated" => Ok(Self::Gated),
            _ => Err(crate::world::ConfigError(format!(
                "state update {s:?}: expected `replace` or `gated`"
            ))),
        }
    }
}

/// The gate's two convolutions.
#[derive(Module, Debug)]
pub struct StateGate<B: Backend> {
    /// 3x3 over `[z_prev, x_noisy]` to `z` channels.
    pub(crate) skip: Conv2d<B>,
    /// 1x1 over `[z_prev, h]` to `z` channels.
    pub(crate) gate: Conv2d<B>,
}

/// Weights and biases of the gate's two convolutions, computed without allocating.
pub fn parameter_estimate(z_channels: usize, latent_channels: usize) -> u64 {
    let (z, c) = (z_channels as u64, latent_channels as u64);
    ((z + c) * 9 * z + z) + (2 * z * z + z)
}

impl<B: Backend> StateGate<B> {
    pub fn new(z_channels: usize, latent_channels: usize, device: &B::Device) -> Self {
        Self {
            skip: conv3(z_channels + latent_channels, z_channels, 1, device),
            gate: conv1(2 * z_channels, z_channels, device),
        }
    }

    /// The new state from the previous one, the pass's input `[z_prev, x_noisy]` and the
    /// output layer's pre-activation `pre` (`out1` of the DiT's grid); `out2` is the cell's
    /// last 1x1 convolution.
    pub fn forward(
        &self,
        z_prev: Tensor<B, 4>,
        input: Tensor<B, 4>,
        pre: Tensor<B, 4>,
        out2: &Conv2d<B>,
    ) -> Tensor<B, 4> {
        let h = out2.forward(tanh(pre + self.skip.forward(input)));
        let u = sigmoid(
            self.gate
                .forward(Tensor::cat(vec![z_prev.clone(), h.clone()], 1)),
        );
        z_prev.clone() + u * (h - z_prev)
    }
}
