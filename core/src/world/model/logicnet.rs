//! LogicNet (MaaG's numerical module): does an event fire in the frame being generated?
//!
//! It reads the previous hidden state `z_{t-1}` (two strided convs, global pooling) and the
//! action (a learnable embedding) and predicts one logit per event bit; each bit is a binary
//! classification trained with cross-entropy at a small weight (it converges fast). The
//! arithmetic is left to the external record (`record.rs`): the network decides *whether*, never
//! *how much*.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::{log_sigmoid, sigmoid, silu};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::world::model::blocks::conv3;
use crate::world::{ConfigError, check_range};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogicNetConfig {
    /// Channels of the hidden state it reads.
    pub z_channels: usize,
    /// Channels of the two stride-2 convolutions.
    pub conv_channels: [usize; 2],
    pub action_dim: usize,
    pub mlp_hidden: usize,
    /// Actions of the game plus the reserved "no previous action" id.
    pub num_actions: usize,
    /// Event bits predicted (bit `i` of `games::Events` is output `i`).
    pub num_events: usize,
    /// Weight of its cross-entropy in the total loss (small: MaaG).
    pub loss_weight: f64,
}

impl LogicNetConfig {
    pub fn tiny(z_channels: usize, num_actions: usize, num_events: usize) -> Self {
        Self {
            z_channels,
            conv_channels: [32, 64],
            action_dim: 32,
            mlp_hidden: 128,
            num_actions,
            num_events,
            loss_weight: 0.1,
        }
    }

    /// About MaaG's 0.6M parameters on a 32-channel state.
    pub fn paper(z_channels: usize, num_actions: usize, num_events: usize) -> Self {
        Self {
            z_channels,
            conv_channels: [128, 256],
            action_dim: 64,
            mlp_hidden: 512,
            num_actions,
            num_events,
            loss_weight: 0.1,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("logicnet.z_channels", self.z_channels, 512)?;
        check_range("logicnet.conv_channels[0]", self.conv_channels[0], 2048)?;
        check_range("logicnet.conv_channels[1]", self.conv_channels[1], 2048)?;
        check_range("logicnet.action_dim", self.action_dim, 2048)?;
        check_range("logicnet.mlp_hidden", self.mlp_hidden, 8192)?;
        check_range("logicnet.num_actions", self.num_actions, 1024)?;
        check_range("logicnet.num_events", self.num_events, 8)?;
        if self.loss_weight.is_nan() || self.loss_weight < 0.0 {
            return Err(ConfigError("logicnet.loss_weight must be >= 0".into()));
        }
        Ok(())
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<LogicNet<B>, ConfigError> {
        self.validate()?;
        let [c1, c2] = self.conv_channels;
        Ok(LogicNet {
            conv1: conv3(self.z_channels, c1, 2, device),
            conv2: conv3(c1, c2, 2, device),
            action: EmbeddingConfig::new(self.num_actions + 1, self.action_dim).init(device),
            fc1: LinearConfig::new(c2 + self.action_dim, self.mlp_hidden).init(device),
            fc2: LinearConfig::new(self.mlp_hidden, self.mlp_hidden).init(device),
            out: LinearConfig::new(self.mlp_hidden, self.num_events).init(device),
            num_actions: self.num_actions,
        })
    }
}

#[derive(Module, Debug)]
pub struct LogicNet<B: Backend> {
    conv1: Conv2d<B>,
    conv2: Conv2d<B>,
    action: Embedding<B>,
    fc1: Linear<B>,
    fc2: Linear<B>,
    out: Linear<B>,
    num_actions: usize,
}

impl<B: Backend> LogicNet<B> {
    /// Event logits `[B, num_events]` from `z_{t-1}` `[B, z, h, w]` and the actions.
    pub fn forward(&self, z_prev: Tensor<B, 4>, actions: &[u32]) -> Tensor<B, 2> {
        let device = z_prev.device();
        let b = actions.len();
        let h = silu(self.conv1.forward(z_prev));
        let h = silu(self.conv2.forward(h));
        let [_, c, hh, ww] = h.dims();
        let pooled: Tensor<B, 2> = h.reshape([b, c, hh * ww]).mean_dim(2).reshape([b, c]);
        let ids: Vec<i64> = actions
            .iter()
            .map(|&a| a.min(self.num_actions as u32) as i64)
            .collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, 1]), &device);
        let a = self.action.forward(ids);
        let ad = a.dims()[2];
        let a: Tensor<B, 2> = a.reshape([b, ad]);
        let x = silu(self.fc1.forward(Tensor::cat(vec![pooled, a], 1)));
        let x = silu(self.fc2.forward(x));
        self.out.forward(x)
    }

    /// Per-event probabilities.
    pub fn probabilities(&self, z_prev: Tensor<B, 4>, actions: &[u32]) -> Tensor<B, 2> {
        sigmoid(self.forward(z_prev, actions))
    }
}

/// Mean binary cross-entropy of `logits` `[B, E]` against event bit sets (bit `i` = output `i`).
pub fn event_loss<B: Backend>(logits: Tensor<B, 2>, events: &[u8]) -> Tensor<B, 1> {
    let [b, e] = logits.dims();
    let target: Vec<f32> = events
        .iter()
        .take(b)
        .flat_map(|&bits| (0..e).map(move |i| ((bits >> i) & 1) as f32))
        .collect();
    let y = Tensor::<B, 2>::from_data(TensorData::new(target, [b, e]), &logits.device());
    let pos = log_sigmoid(logits.clone());
    let neg = log_sigmoid(logits.neg());
    (y.clone() * pos + (y.neg().add_scalar(1.0)) * neg)
        .mean()
        .neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::optim::{AdamConfig, GradientsParams, Optimizer};

    type B = Autodiff<NdArray>;

    /// LogicNet learns a toy rule: the event fires when the action is 2 and the state's mean is
    /// positive.
    #[test]
    fn learns_a_toy_event_rule() {
        let dev = Default::default();
        let cfg = LogicNetConfig::tiny(4, 3, 1);
        let mut net = cfg.init::<B>(&dev).unwrap();
        let mut optim = AdamConfig::new().init();
        let mut rng = crate::rng::Rng::new(3);
        let mut last = f32::MAX;
        let mut first = None;
        for _ in 0..60 {
            let mut zs = Vec::new();
            let mut actions = Vec::new();
            let mut events = Vec::new();
            for _ in 0..16 {
                let sign = if rng.chance(0.5) { 1.0 } else { -1.0 };
                let a = rng.below(3) as u32;
                zs.extend(std::iter::repeat_n(sign, 4 * 8 * 8));
                events.push(u8::from(a == 2 && sign > 0.0));
                actions.push(a);
            }
            let z = Tensor::<B, 4>::from_data(TensorData::new(zs, [16, 4, 8, 8]), &dev);
            let loss = event_loss(net.forward(z, &actions), &events);
            let v: f32 = loss.clone().into_scalar();
            first.get_or_insert(v);
            last = v;
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(3e-3, net, grads);
        }
        assert!(last < first.unwrap() * 0.5, "{first:?} -> {last}");
    }
}
