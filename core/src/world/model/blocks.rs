//! Small convolutional building blocks shared by the VAE, the v head, LogicNet and the map CNN.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig};
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Tensor, TensorPrimitive};

/// 3x3 convolution with "same" padding and the given stride.
pub fn conv3<B: Backend>(cin: usize, cout: usize, stride: usize, device: &B::Device) -> Conv2d<B> {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// 1x1 convolution.
pub fn conv1<B: Backend>(cin: usize, cout: usize, device: &B::Device) -> Conv2d<B> {
    Conv2dConfig::new([cin, cout], [1, 1]).init(device)
}

/// Group count for a GroupNorm over `channels`: the largest divisor of `channels` up to 32, so
/// tiny channel counts (4, 8, 12) still normalise.
pub fn groups_for(channels: usize) -> usize {
    (1..=channels.min(32))
        .rev()
        .find(|g| channels.is_multiple_of(*g))
        .unwrap_or(1)
}

pub fn group_norm<B: Backend>(channels: usize, device: &B::Device) -> GroupNorm<B> {
    GroupNormConfig::new(groups_for(channels), channels).init(device)
}

/// Pre-activation residual block: `GN, SiLU, conv3, GN, SiLU, conv3`, plus a 1x1 projection on
/// the skip path when the channel count changes.
#[derive(Module, Debug)]
pub struct ResBlock<B: Backend> {
    pub(crate) norm1: GroupNorm<B>,
    pub(crate) conv1: Conv2d<B>,
    pub(crate) norm2: GroupNorm<B>,
    pub(crate) conv2: Conv2d<B>,
    pub(crate) skip: Option<Conv2d<B>>,
}

impl<B: Backend> ResBlock<B> {
    pub fn new(cin: usize, cout: usize, device: &B::Device) -> Self {
        Self {
            norm1: group_norm(cin, device),
            conv1: conv3(cin, cout, 1, device),
            norm2: group_norm(cout, device),
            conv2: conv3(cout, cout, 1, device),
            skip: (cin != cout).then(|| conv1(cin, cout, device)),
        }
    }

    /// [`Self::forward`] with the group norms through [`group_norm_fused`] (inference).
    pub fn forward_fused(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let h = self
            .conv1
            .forward(silu(group_norm_fused(&self.norm1, x.clone())));
        let h = self.conv2.forward(silu(group_norm_fused(&self.norm2, h)));
        let skip = match &self.skip {
            Some(c) => c.forward(x),
            None => x,
        };
        h + skip
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let h = self.conv1.forward(silu(self.norm1.forward(x.clone())));
        let h = self.conv2.forward(silu(self.norm2.forward(h)));
        let skip = match &self.skip {
            Some(c) => c.forward(x),
            None => x,
        };
        h + skip
    }
}

/// [`GroupNorm`] through the backend's fused layer norm (each group of a sample is one row),
/// then the per-channel affine: about 4 operations instead of 12. The same maths as
/// `GroupNorm::forward`; the sums may round differently.
pub fn group_norm_fused<B: Backend>(gn: &GroupNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, c, h, w] = x.dims();
    let g = gn.num_groups;
    let row = c / g * h * w;
    let ones = Tensor::<B, 1>::ones([row], &x.device());
    let y: Tensor<B, 3> = Tensor::from_primitive(TensorPrimitive::Float(B::layer_norm(
        x.reshape([b, g, row]).into_primitive().tensor(),
        ones.into_primitive().tensor(),
        None,
        gn.epsilon,
    )));
    let y = y.reshape([b, c, h, w]);
    match (&gn.gamma, &gn.beta) {
        (Some(gamma), Some(beta)) => {
            y * gamma.val().reshape([1, c, 1, 1]) + beta.val().reshape([1, c, 1, 1])
        }
        _ => y,
    }
}

/// Nearest-neighbour upsampling by 2 (cheap, and the same op on every backend).
pub fn upsample2<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [_, _, h, w] = x.dims();
    interpolate(
        x,
        [h * 2, w * 2],
        InterpolateOptions::new(InterpolateMode::Nearest),
    )
}

/// Re-draws every float parameter of a module from our own PRNG, so that "same seed, same
/// weights" holds on every backend whatever else runs in the process (Burn's backends share one
/// global generator and initialise parameters lazily, so concurrent tests or sessions would
/// otherwise interleave their draws).
///
/// Each tensor keeps its initialiser's scale: constant tensors (zero-init adaLN gates, norm gains
/// and offsets) are kept; other 1-D tensors (biases) become zero, as in DiT; weights are redrawn
/// from a zero-mean normal whose standard deviation is the initialiser's, identified by snapping
/// the observed spread to the nearest of the scales the initialisers used here can produce for
/// that shape (Kaiming-uniform for linears and convs, Xavier, N(0, 0.02), N(0, 1), and the
/// Kaiming-normal of the initial state). Snapping makes the result independent of the draw.
pub fn reseed<B: Backend, M: Module<B>>(module: M, seed: u64) -> M {
    let mut mapper = Reseed {
        rng: crate::rng::Rng::new(seed),
    };
    module.map(&mut mapper)
}

struct Reseed {
    rng: crate::rng::Rng,
}

/// Standard deviations the initialisers used in this crate give a tensor of `dims`.
fn candidate_stds(dims: &[usize]) -> Vec<f64> {
    let mut c = vec![0.02, 1.0];
    match dims {
        [a, b] => {
            let (a, b) = (*a as f64, *b as f64);
            c.push(1.0 / (3.0 * a).sqrt()); // Linear [in, out], Kaiming-uniform (Burn default)
            c.push((2.0 / (a + b)).sqrt()); // Xavier-uniform
        }
        [_, h, w] => c.push((2.0 / (*h * *w) as f64).sqrt()), // initial state
        [_, cin, kh, kw] => c.push(1.0 / (3.0 * (*cin * *kh * *kw) as f64).sqrt()), // conv
        _ => {}
    }
    c
}

impl<B: Backend> burn::module::ModuleMapper<B> for Reseed {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<B, D>>,
    ) -> burn::module::Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let dims = tensor.dims();
        let device = tensor.device();
        let values: Vec<f32> = tensor
            .clone()
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("float parameter");
        let n = values.len().max(1) as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let fresh: Vec<f32> = if var < 1e-20 {
            values
        } else if D == 1 {
            vec![0.0; values.len()]
        } else {
            // Second moment around zero: the initialisers are zero-mean.
            let observed = (values.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n).sqrt();
            let std = candidate_stds(&dims)
                .into_iter()
                .min_by(|a, b| {
                    let da = (a.ln() - observed.ln()).abs();
                    let db = (b.ln() - observed.ln()).abs();
                    da.total_cmp(&db)
                })
                .expect("non-empty candidates");
            (0..values.len())
                .map(|_| (std * self.rng.normal()) as f32)
                .collect()
        };
        let tensor = Tensor::<B, D>::from_data(burn::tensor::TensorData::new(fresh, dims), &device)
            .set_require_grad(require_grad);
        burn::module::Param::from_mapped_value(id, tensor, mapper)
    }
}
