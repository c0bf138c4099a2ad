//! Muon for the 2-D weight matrices of the decoder layers: SGD momentum whose update is
//! replaced by the nearest (semi-)orthogonal matrix, computed with five Newton–Schulz quintic
//! iterations (coefficients 3.4445, -4.7750, 2.0315, Keller Jordan's).
//!
//! Scale: the update is multiplied by `0.2 * sqrt(max(rows, cols))` (Moonshot's RMS-matching
//! rule, "Muon is Scalable for LLM Training"), which gives the orthogonal update about the RMS
//! of an AdamW update, so Muon and the AdamW that trains the other parameters share one
//! learning rate, schedule and weight decay. (It is symmetric in rows and columns, so Burn's
//! `[d_in, d_out]` layout of linear weights, transposed from PyTorch's, does not matter; the
//! aspect-ratio rule `sqrt(max(1, rows/cols))` would have to be read in PyTorch's orientation.)
//! Weight decay is decoupled, as in AdamW.

use burn::optim::SimpleOptimizer;
use burn::record::Record;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// Newton–Schulz quintic coefficients `(a, b, c)`: `X <- a X + (b A + c A²) X`, `A = X Xᵀ`.
pub const NS_COEFFICIENTS: (f32, f32, f32) = (3.4445, -4.7750, 2.0315);
/// Iterations per update.
pub const NS_STEPS: usize = 5;

/// Approximately orthogonalise `g` (`U S Vᵀ -> U S' Vᵀ` with every singular value `S'` close to
/// 1; the quintic trades exactness, about 0.7..1.2, for speed). Works on the wide orientation
/// so `X Xᵀ` is the smaller Gram matrix.
pub fn newton_schulz<B: Backend>(g: Tensor<B, 2>, steps: usize) -> Tensor<B, 2> {
    let [rows, cols] = g.dims();
    let tall = rows > cols;
    let mut x = if tall { g.transpose() } else { g };
    // Normalise so every singular value is at most 1 (the Frobenius norm bounds the largest).
    let norm = x.clone().powi_scalar(2).sum().sqrt().clamp_min(1e-7);
    x = x / norm.unsqueeze();
    let (a, b, c) = NS_COEFFICIENTS;
    for _ in 0..steps {
        let gram = x.clone().matmul(x.clone().transpose());
        let poly = gram.clone().mul_scalar(b) + gram.clone().matmul(gram).mul_scalar(c);
        x = x.clone().mul_scalar(a) + poly.matmul(x);
    }
    if tall { x.transpose() } else { x }
}

/// Muon's settings.
#[derive(Clone, Debug)]
pub struct Muon {
    pub momentum: f32,
    /// Nesterov momentum (the update looks ahead: `g + momentum * buffer`).
    pub nesterov: bool,
    pub weight_decay: f32,
    pub ns_steps: usize,
}

impl Default for Muon {
    fn default() -> Self {
        Self {
            momentum: 0.95,
            nesterov: true,
            weight_decay: 0.01,
            ns_steps: NS_STEPS,
        }
    }
}

/// The momentum buffer of one parameter.
#[derive(Record, Clone)]
pub struct MuonState<B: Backend, const D: usize> {
    pub momentum: Tensor<B, D>,
}

impl Muon {
    /// The RMS-matching scale of an orthogonal update of a `rows x cols` matrix.
    pub fn scale(rows: usize, cols: usize) -> f64 {
        0.2 * (rows.max(cols) as f64).sqrt()
    }
}

impl<B: Backend> SimpleOptimizer<B> for Muon {
    type State<const D: usize> = MuonState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let buffer = match state {
            Some(s) => s.momentum.mul_scalar(self.momentum) + grad.clone(),
            None => grad.clone(),
        };
        let direction = if self.nesterov {
            grad + buffer.clone().mul_scalar(self.momentum)
        } else {
            buffer.clone()
        };
        // Matrices are orthogonalised as they are; anything else (never routed here by the
        // trainer, but the trait is generic) as its leading dims flattened into rows.
        let shape = direction.shape();
        let cols = shape[D - 1];
        let rows = shape.num_elements() / cols.max(1);
        let update = newton_schulz(direction.reshape([rows, cols]), self.ns_steps).reshape(shape);
        let decayed = tensor.mul_scalar(1.0 - lr * self.weight_decay as f64);
        let step = update.mul_scalar(lr * Self::scale(rows, cols));
        (decayed - step, Some(MuonState { momentum: buffer }))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    use super::*;

    type B = NdArray;

    /// Eigenvalues of a small symmetric matrix by cyclic Jacobi rotations (test helper).
    fn symmetric_eigenvalues(mut a: Vec<Vec<f64>>) -> Vec<f64> {
        let n = a.len();
        for _ in 0..100 {
            for p in 0..n {
                for q in p + 1..n {
                    if a[p][q].abs() < 1e-15 {
                        continue;
                    }
                    let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                    let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                    let t = if theta == 0.0 { 1.0 } else { t };
                    let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                    for row in a.iter_mut() {
                        let (akp, akq) = (row[p], row[q]);
                        row[p] = c * akp - s * akq;
                        row[q] = s * akp + c * akq;
                    }
                    let (row_p, row_q) = (a[p].clone(), a[q].clone());
                    for (k, (apk, aqk)) in row_p.into_iter().zip(row_q).enumerate() {
                        a[p][k] = c * apk - s * aqk;
                        a[q][k] = s * apk + c * aqk;
                    }
                }
            }
        }
        (0..n).map(|i| a[i][i]).collect()
    }

    /// `n` normal draws with standard deviation `sd` from a fixed seed (xorshift + Box-Muller),
    /// so the test matrix never depends on the order tests share Burn's global generator in.
    fn gaussian(n: usize, sd: f32, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u, v) = (uniform(), uniform());
                let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
                (z * sd as f64) as f32
            })
            .collect()
    }

    /// Singular values of `m` (`rows x cols`, rows >= cols) from the eigenvalues of `mᵀm`.
    fn singular_values(m: &[f32], rows: usize, cols: usize) -> Vec<f64> {
        let gram: Vec<Vec<f64>> = (0..cols)
            .map(|i| {
                (0..cols)
                    .map(|j| {
                        (0..rows)
                            .map(|r| m[r * cols + i] as f64 * m[r * cols + j] as f64)
                            .sum()
                    })
                    .collect()
            })
            .collect();
        symmetric_eigenvalues(gram)
            .into_iter()
            .map(|e| e.max(0.0).sqrt())
            .collect()
    }

    #[test]
    fn newton_schulz_sends_singular_values_near_one() {
        let device = Default::default();
        for (rows, cols) in [(24, 8), (8, 24), (16, 16)] {
            let before = gaussian(rows * cols, 3.0, (rows * 100 + cols) as u64);
            let g =
                Tensor::<B, 2>::from_data(TensorData::new(before.clone(), [rows, cols]), &device);
            let out = newton_schulz(g, NS_STEPS)
                .into_data()
                .to_vec::<f32>()
                .unwrap();
            // Singular values of the tall orientation (transpose the wide case).
            let (r, c) = (rows.max(cols), rows.min(cols));
            let tall = |m: &[f32]| -> Vec<f32> {
                if rows >= cols {
                    m.to_vec()
                } else {
                    (0..r)
                        .flat_map(|i| (0..c).map(move |j| (i, j)))
                        .map(|(i, j)| m[j * cols + i])
                        .collect()
                }
            };
            let s_in = singular_values(&tall(&before), r, c);
            let s_out = singular_values(&tall(&out), r, c);
            let spread = |s: &[f64]| {
                s.iter().cloned().fold(0.0, f64::max) / s.iter().cloned().fold(f64::MAX, f64::min)
            };
            assert!(
                spread(&s_in) > 2.0,
                "a random matrix is far from orthogonal: {s_in:?}"
            );
            // Five quintic steps lift any singular value above ~1/300 of the Frobenius norm (the
            // slope at zero is 3.4445, and 3.4445^5 ≈ 480); directions that are nearly null in
            // the gradient stay small, as in Muon itself, so they are not part of the claim.
            let frobenius = s_in.iter().map(|s| s * s).sum::<f64>().sqrt();
            let mut in_order: Vec<(f64, f64)> = {
                let mut a = s_in.clone();
                let mut b = s_out.clone();
                a.sort_by(f64::total_cmp);
                b.sort_by(f64::total_cmp);
                a.into_iter().zip(b).collect()
            };
            in_order.retain(|(s, _)| *s >= frobenius / 50.0);
            assert!(
                in_order.len() + 2 >= c,
                "{rows}x{cols}: too few usable directions"
            );
            for (_, s) in &in_order {
                assert!((0.6..1.25).contains(s), "{rows}x{cols}: {s_out:?}");
            }
        }
    }

    #[test]
    fn first_step_is_the_scaled_orthogonalised_gradient() {
        let device = Default::default();
        let w = Tensor::<B, 2>::zeros([6, 4], &device);
        let g = Tensor::<B, 2>::from_data(
            TensorData::new(
                (0..24).map(|i| ((i * 7 % 11) as f32) - 5.0).collect(),
                [6, 4],
            ),
            &device,
        );
        let muon = Muon {
            weight_decay: 0.0,
            nesterov: false,
            ..Default::default()
        };
        let (w1, state) = SimpleOptimizer::<B>::step(&muon, 0.1, w, g.clone(), None);
        let want = newton_schulz(g.clone(), NS_STEPS).mul_scalar(-0.1 * Muon::scale(6, 4));
        let diff = (w1 - want).abs().max().into_scalar();
        assert!(diff < 1e-6, "{diff}");
        // The momentum buffer is the gradient after one step, then decays into the next.
        let m = state.unwrap().momentum;
        assert!((m - g).abs().max().into_scalar() < 1e-7);
    }
}
