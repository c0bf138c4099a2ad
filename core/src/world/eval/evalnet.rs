//! The evaluation network: one small CNN over a pair of neighbouring frames with two heads and
//! a feature layer, trained on real frames of one game (`gamegen world vam train`).
//!
//! - **Valid Action Model** (PlayGen): inverse dynamics, frames `t-1` and `t` -> the action that
//!   turned one into the other. Its accuracy on generated frames is ActAcc; the probability gap
//!   between its top action and the true action is ProbDiff.
//! - **Valid numerical model** (MaaG's judge for NumCon): did the score change from frame `t-1`
//!   to frame `t`? It reads the drawn score, so models without an external record are judged
//!   the same way as models with one.
//! - **Features** (the layer both heads read, `feature_dim` wide): gamegen's own stand-in for
//!   Inception features in FID (per frame pair) and FVD (statistics over a clip,
//!   [`clip_feature`]). Numbers made with them are not comparable with the papers'.
//!
//! One network rather than three: both heads need the same thing (what changed between two
//! frames, at a resolution where the score digits and small sprites survive), so a shared trunk
//! costs one training run and one forward per frame, and the features FID/FVD read are
//! features of exactly what the judges look at.
//!
//! Input: both frames downsampled by `downsample` (box average) and their difference, 9
//! channels in `[-1, 1]`.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{log_sigmoid, log_softmax, relu};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::world::model::blocks::conv3;
use crate::world::{ConfigError, check_range};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalNetConfig {
    /// Frame size of the game (before downsampling).
    pub width: usize,
    pub height: usize,
    /// Box-average factor applied to both sides before the network.
    pub downsample: usize,
    /// Channels of the stride-2 convolutions.
    pub channels: Vec<usize>,
    /// Width of the feature layer (FID / FVD features).
    pub feature_dim: usize,
    pub num_actions: usize,
}

impl EvalNetConfig {
    /// The size used for the shipped eval nets (~40K parameters).
    pub fn small(width: usize, height: usize, num_actions: usize) -> Self {
        Self {
            width,
            height,
            downsample: 2,
            channels: vec![16, 32, 32, 32],
            feature_dim: 32,
            num_actions,
        }
    }

    pub fn input_size(&self) -> (usize, usize) {
        (self.width / self.downsample, self.height / self.downsample)
    }

    /// Spatial size after the stride-2 convolutions.
    fn trunk_size(&self) -> (usize, usize) {
        let (mut w, mut h) = self.input_size();
        for _ in &self.channels {
            w = w.div_ceil(2);
            h = h.div_ceil(2);
        }
        (w, h)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("evalnet.width", self.width, 1024)?;
        check_range("evalnet.height", self.height, 1024)?;
        check_range("evalnet.downsample", self.downsample, 16)?;
        check_range("evalnet.feature_dim", self.feature_dim, 256)?;
        check_range("evalnet.num_actions", self.num_actions, 256)?;
        check_range("evalnet.channels (count)", self.channels.len(), 6)?;
        for &c in &self.channels {
            check_range("evalnet.channels", c, 256)?;
        }
        let (w, h) = self.input_size();
        if w < 4 || h < 4 {
            return Err(ConfigError(
                "evalnet: frames too small for the downsample".into(),
            ));
        }
        Ok(())
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<EvalNet<B>, ConfigError> {
        self.validate()?;
        let mut convs = Vec::new();
        let mut cin = 9;
        for &c in &self.channels {
            convs.push(conv3(cin, c, 2, device));
            cin = c;
        }
        let (tw, th) = self.trunk_size();
        Ok(EvalNet {
            convs,
            fc: LinearConfig::new(cin * tw * th, self.feature_dim).init(device),
            action: LinearConfig::new(self.feature_dim, self.num_actions).init(device),
            score: LinearConfig::new(self.feature_dim, 1).init(device),
        })
    }
}

#[derive(Module, Debug)]
pub struct EvalNet<B: Backend> {
    convs: Vec<Conv2d<B>>,
    fc: Linear<B>,
    action: Linear<B>,
    score: Linear<B>,
}

/// What the network says about a batch of frame pairs.
pub struct EvalOutput<B: Backend> {
    /// `[n, num_actions]` action logits (the VAM).
    pub action_logits: Tensor<B, 2>,
    /// `[n]` logit of "the score changed" (the valid numerical model).
    pub score_logit: Tensor<B, 1>,
    /// `[n, feature_dim]` features (FID / FVD).
    pub features: Tensor<B, 2>,
}

impl<B: Backend> EvalNet<B> {
    /// `input`: `[n, 9, h, w]` from [`pair_input`].
    pub fn forward(&self, input: Tensor<B, 4>) -> EvalOutput<B> {
        let mut x = input;
        for c in &self.convs {
            x = relu(c.forward(x));
        }
        let [n, c, h, w] = x.dims();
        let f = relu(self.fc.forward(x.reshape([n, c * h * w])));
        let score_logit: Tensor<B, 1> = self.score.forward(f.clone()).reshape([n]);
        EvalOutput {
            action_logits: self.action.forward(f.clone()),
            score_logit,
            features: f,
        }
    }
}

/// Box-average `factor` downsample of an RGB8 frame, planar `[3, h/f, w/f]` in `[0, 1]`.
pub fn downsample(frame: &[u8], width: usize, height: usize, factor: usize) -> Vec<f32> {
    let (ow, oh) = (width / factor, height / factor);
    let mut out = vec![0f32; 3 * ow * oh];
    let norm = 1.0 / (255.0 * (factor * factor) as f32);
    for oy in 0..oh {
        for ox in 0..ow {
            let mut acc = [0u32; 3];
            for dy in 0..factor {
                let row = (oy * factor + dy) * width;
                for dx in 0..factor {
                    let i = 3 * (row + ox * factor + dx);
                    for k in 0..3 {
                        acc[k] += frame[i + k] as u32;
                    }
                }
            }
            for k in 0..3 {
                out[(k * oh + oy) * ow + ox] = acc[k] as f32 * norm;
            }
        }
    }
    out
}

/// The 9-channel input of one pair from two downsampled frames ([`downsample`]): previous and
/// current frame mapped to `[-1, 1]`, and their difference.
pub fn pair_input(prev: &[f32], cur: &[f32]) -> Vec<f32> {
    let mut v = Vec::with_capacity(3 * prev.len());
    v.extend(prev.iter().map(|x| 2.0 * x - 1.0));
    v.extend(cur.iter().map(|x| 2.0 * x - 1.0));
    v.extend(cur.iter().zip(prev).map(|(c, p)| c - p));
    v
}

/// A batch tensor `[n, 9, h, w]` from pair inputs.
pub fn batch_tensor<B: Backend>(
    cfg: &EvalNetConfig,
    pairs: &[Vec<f32>],
    device: &B::Device,
) -> Tensor<B, 4> {
    let (w, h) = cfg.input_size();
    let data: Vec<f32> = pairs.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(data, [pairs.len(), 9, h, w]), device)
}

/// Training loss: cross-entropy of the action plus `score_weight` times a binary cross-entropy
/// of "the score changed" whose positive class is weighted by `pos_weight` (score changes are
/// rare). `actions[i]` out of range (e.g. "no previous action") are masked out of the action
/// term.
pub fn loss<B: Backend>(
    out: &EvalOutput<B>,
    actions: &[u8],
    changed: &[bool],
    pos_weight: f32,
    score_weight: f32,
) -> Tensor<B, 1> {
    let [n, k] = out.action_logits.dims();
    let device = out.action_logits.device();
    let logp = log_softmax(out.action_logits.clone(), 1);
    let ids: Vec<i64> = actions
        .iter()
        .map(|&a| (a as usize).min(k - 1) as i64)
        .collect();
    let mask: Vec<f32> = actions
        .iter()
        .map(|&a| if (a as usize) < k { 1.0 } else { 0.0 })
        .collect();
    let count = mask.iter().sum::<f32>().max(1.0);
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, 1]), &device);
    let picked: Tensor<B, 1> = logp.gather(1, ids).reshape([n]);
    let mask = Tensor::<B, 1>::from_data(TensorData::new(mask, [n]), &device);
    let ce = (picked * mask).sum().neg().div_scalar(count);
    let y: Vec<f32> = changed.iter().map(|&c| c as u8 as f32).collect();
    let w: Vec<f32> = changed
        .iter()
        .map(|&c| if c { pos_weight } else { 1.0 })
        .collect();
    let y = Tensor::<B, 1>::from_data(TensorData::new(y, [n]), &device);
    let w = Tensor::<B, 1>::from_data(TensorData::new(w, [n]), &device);
    let pos = log_sigmoid(out.score_logit.clone());
    let neg = log_sigmoid(out.score_logit.clone().neg());
    let bce = ((y.clone() * pos + y.neg().add_scalar(1.0) * neg) * w.clone())
        .sum()
        .neg()
        / w.sum();
    ce + bce.mul_scalar(score_weight)
}

/// Per-pair judgements read back from the network.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// Softmax over actions.
    pub action_probs: Vec<f32>,
    /// Probability that the score changed.
    pub score_changed: f32,
    pub features: Vec<f32>,
}

impl Judgement {
    pub fn predicted_action(&self) -> usize {
        let mut best = 0;
        for (i, &p) in self.action_probs.iter().enumerate() {
            if p > self.action_probs[best] {
                best = i;
            }
        }
        best
    }

    /// PlayGen's ProbDiff for one pair: probability of the predicted action minus that of the
    /// true one (0 when the prediction is right).
    pub fn prob_diff(&self, truth: usize) -> f32 {
        let p = self.action_probs[self.predicted_action()];
        p - self.action_probs.get(truth).copied().unwrap_or(0.0)
    }
}

/// Run the network on pair inputs and read everything back.
pub fn judge<B: Backend>(
    net: &EvalNet<B>,
    cfg: &EvalNetConfig,
    pairs: &[Vec<f32>],
    device: &B::Device,
) -> Vec<Judgement> {
    if pairs.is_empty() {
        return Vec::new();
    }
    let out = net.forward(batch_tensor(cfg, pairs, device));
    let n = pairs.len();
    let k = cfg.num_actions;
    let fd = cfg.feature_dim;
    let probs = burn::tensor::activation::softmax(out.action_logits, 1)
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_default();
    let score = burn::tensor::activation::sigmoid(out.score_logit)
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_default();
    let feats = out
        .features
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_default();
    (0..n)
        .map(|i| Judgement {
            action_probs: probs[i * k..(i + 1) * k].to_vec(),
            score_changed: score[i],
            features: feats[i * fd..(i + 1) * fd].to_vec(),
        })
        .collect()
}

/// FVD's clip feature from the per-pair features of consecutive frames of one clip: the mean
/// feature and the mean absolute change of the feature from pair to pair (how the clip
/// moves), `2 * feature_dim` values.
pub fn clip_feature(pair_features: &[Vec<f32>]) -> Vec<f32> {
    let d = pair_features.first().map_or(0, |f| f.len());
    let n = pair_features.len().max(1) as f32;
    let mut mean = vec![0f32; d];
    for f in pair_features {
        for (m, x) in mean.iter_mut().zip(f) {
            *m += x / n;
        }
    }
    let mut motion = vec![0f32; d];
    let steps = pair_features.len().saturating_sub(1).max(1) as f32;
    for w in pair_features.windows(2) {
        for (m, (a, b)) in motion.iter_mut().zip(w[0].iter().zip(&w[1])) {
            *m += (b - a).abs() / steps;
        }
    }
    mean.extend(motion);
    mean
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::optim::{AdamConfig, GradientsParams, Optimizer};

    type B = Autodiff<NdArray>;

    #[test]
    fn downsample_averages_boxes() {
        // 4x2 frame, factor 2: left box all 255 red, right box half.
        let mut f = vec![0u8; 4 * 2 * 3];
        for y in 0..2 {
            for x in 0..2 {
                f[3 * (y * 4 + x)] = 255;
            }
        }
        f[3 * 2] = 255;
        f[3 * 3] = 255;
        let d = downsample(&f, 4, 2, 2);
        assert_eq!(d.len(), 3 * 2);
        assert!((d[0] - 1.0).abs() < 1e-6);
        assert!((d[1] - 0.5).abs() < 1e-6);
        assert_eq!(&d[2..], &[0.0; 4]);
    }

    /// The net learns a toy inverse-dynamics rule in a few dozen steps: a bright block moves
    /// left (action 1), right (2) or stays (0).
    #[test]
    fn learns_toy_inverse_dynamics() {
        let dev = Default::default();
        let cfg = EvalNetConfig {
            width: 16,
            height: 16,
            downsample: 1,
            channels: vec![8, 8],
            feature_dim: 16,
            num_actions: 3,
        };
        let mut net = cfg.init::<B>(&dev).unwrap();
        let mut optim = AdamConfig::new().init();
        let mut rng = crate::rng::Rng::new(5);
        let frame = |x: usize| {
            let mut f = vec![0u8; 16 * 16 * 3];
            for y in 6..10 {
                for dx in 0..3 {
                    let i = 3 * (y * 16 + x + dx);
                    f[i..i + 3].fill(255);
                }
            }
            downsample(&f, 16, 16, 1)
        };
        let batch = |rng: &mut crate::rng::Rng| {
            let mut pairs = Vec::new();
            let mut acts = Vec::new();
            for _ in 0..24 {
                let x = 2 + rng.below(10) as usize;
                let a = rng.below(3) as u8;
                let nx = match a {
                    1 => x - 2,
                    2 => x + 2,
                    _ => x,
                };
                pairs.push(pair_input(&frame(x), &frame(nx)));
                acts.push(a);
            }
            (pairs, acts)
        };
        for _ in 0..80 {
            let (pairs, acts) = batch(&mut rng);
            let changed: Vec<bool> = acts.iter().map(|&a| a == 2).collect();
            let out = net.forward(batch_tensor(&cfg, &pairs, &dev));
            let l = loss(&out, &acts, &changed, 1.0, 1.0);
            let grads = GradientsParams::from_grads(l.backward(), &net);
            net = optim.step(3e-3, net, grads);
        }
        let (pairs, acts) = batch(&mut rng);
        let j = judge(&net, &cfg, &pairs, &dev);
        let right = j
            .iter()
            .zip(&acts)
            .filter(|(j, a)| j.predicted_action() == **a as usize)
            .count();
        assert!(right >= 20, "{right}/24 right");
        assert!(j.iter().all(|j| j.features.len() == 16));
    }

    #[test]
    fn clip_feature_is_mean_and_motion() {
        let f = clip_feature(&[vec![0.0, 2.0], vec![2.0, 2.0], vec![4.0, 2.0]]);
        assert_eq!(f, vec![2.0, 2.0, 2.0, 0.0]);
    }
}
