//! The Fréchet distance between two Gaussians fitted to feature sets (FID / FVD):
//! `|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`.
//!
//! The trace of the matrix square root is computed without a general (non-symmetric) square
//! root: `tr((S1 S2)^(1/2)) = tr((A S2 A)^(1/2))` with `A = S1^(1/2)`, and `A S2 A` is symmetric
//! positive semi-definite, so both roots come from symmetric eigen-decompositions (cyclic
//! Jacobi rotations; features are small, 32-64 dimensions).

/// Mean and covariance (divided by `n - 1`) of `rows`, each `d` values.
pub fn mean_cov(rows: &[Vec<f32>]) -> (Vec<f64>, Vec<f64>) {
    let d = rows.first().map_or(0, |r| r.len());
    let n = rows.len();
    let mut mean = vec![0f64; d];
    for r in rows {
        for (m, &x) in mean.iter_mut().zip(r) {
            *m += x as f64;
        }
    }
    for m in &mut mean {
        *m /= n.max(1) as f64;
    }
    let mut cov = vec![0f64; d * d];
    for r in rows {
        for i in 0..d {
            let a = r[i] as f64 - mean[i];
            for j in i..d {
                cov[i * d + j] += a * (r[j] as f64 - mean[j]);
            }
        }
    }
    let denom = n.saturating_sub(1).max(1) as f64;
    for i in 0..d {
        for j in i..d {
            let v = cov[i * d + j] / denom;
            cov[i * d + j] = v;
            cov[j * d + i] = v;
        }
    }
    (mean, cov)
}

/// Eigenvalues and eigenvectors (columns of the returned row-major matrix) of the symmetric
/// `d x d` matrix `a`, by cyclic Jacobi rotations.
pub fn symmetric_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    let mut v = vec![0f64; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    let scale: f64 = m.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * d + j] * m[i * d + j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-14 * scale {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = m[p * d + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let theta = (m[q * d + q] - m[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // m <- J^T m J, columns then rows p and q.
                for k in 0..d {
                    let mkp = m[k * d + p];
                    let mkq = m[k * d + q];
                    m[k * d + p] = c * mkp - s * mkq;
                    m[k * d + q] = s * mkp + c * mkq;
                }
                for k in 0..d {
                    let mpk = m[p * d + k];
                    let mqk = m[q * d + k];
                    m[p * d + k] = c * mpk - s * mqk;
                    m[q * d + k] = s * mpk + c * mqk;
                }
                for k in 0..d {
                    let vkp = v[k * d + p];
                    let vkq = v[k * d + q];
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| m[i * d + i]).collect(), v)
}

/// Square root of a symmetric positive semi-definite matrix (negative eigenvalues from rounding
/// are clamped to 0).
pub fn sqrt_psd(a: &[f64], d: usize) -> Vec<f64> {
    let (vals, vecs) = symmetric_eigen(a, d);
    let mut out = vec![0f64; d * d];
    for (k, &l) in vals.iter().enumerate() {
        let s = l.max(0.0).sqrt();
        if s == 0.0 {
            continue;
        }
        for i in 0..d {
            let vi = vecs[i * d + k] * s;
            for j in 0..d {
                out[i * d + j] += vi * vecs[j * d + k];
            }
        }
    }
    out
}

fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0f64; d * d];
    for i in 0..d {
        for k in 0..d {
            let aik = a[i * d + k];
            for j in 0..d {
                out[i * d + j] += aik * b[k * d + j];
            }
        }
    }
    out
}

/// Fréchet distance between Gaussians `(mu1, s1)` and `(mu2, s2)` of dimension `mu1.len()`.
pub fn frechet(mu1: &[f64], s1: &[f64], mu2: &[f64], s2: &[f64]) -> f64 {
    let d = mu1.len();
    let mean_term: f64 = mu1.iter().zip(mu2).map(|(a, b)| (a - b) * (a - b)).sum();
    let a = sqrt_psd(s1, d);
    let mut m = matmul(&matmul(&a, s2, d), &a, d);
    // Symmetrise against rounding before the eigen-decomposition.
    for i in 0..d {
        for j in i + 1..d {
            let v = 0.5 * (m[i * d + j] + m[j * d + i]);
            m[i * d + j] = v;
            m[j * d + i] = v;
        }
    }
    let (vals, _) = symmetric_eigen(&m, d);
    let tr_sqrt: f64 = vals.iter().map(|l| l.max(0.0).sqrt()).sum();
    let tr: f64 = (0..d).map(|i| s1[i * d + i] + s2[i * d + i]).sum();
    (mean_term + tr - 2.0 * tr_sqrt).max(0.0)
}

/// Fréchet distance between two feature sets (`None` with fewer than 2 rows in either).
pub fn frechet_distance(a: &[Vec<f32>], b: &[Vec<f32>]) -> Option<f64> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (m1, s1) = mean_cov(a);
    let (m2, s2) = mean_cov(b);
    if m1.len() != m2.len() || m1.is_empty() {
        return None;
    }
    Some(frechet(&m1, &s1, &m2, &s2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn gaussian_rows(rng: &mut Rng, n: usize, d: usize, shift: f32) -> Vec<Vec<f32>> {
        (0..n)
            .map(|_| {
                let base = rng.normal() as f32;
                (0..d)
                    .map(|i| rng.normal() as f32 * (1.0 + i as f32 * 0.1) + 0.5 * base + shift)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn eigen_reconstructs_the_matrix() {
        let a = vec![4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 1.0];
        let s = sqrt_psd(&a, 3);
        let back = matmul(&s, &s, 3);
        for (x, y) in a.iter().zip(&back) {
            assert!((x - y).abs() < 1e-9, "{a:?} vs {back:?}");
        }
    }

    #[test]
    fn distance_of_a_set_to_itself_is_zero_and_grows_with_a_shift() {
        let mut rng = Rng::new(1);
        let a = gaussian_rows(&mut rng, 400, 16, 0.0);
        let same = frechet_distance(&a, &a).unwrap();
        assert!(same.abs() < 1e-6, "{same}");
        let b = gaussian_rows(&mut rng, 400, 16, 0.0);
        let c = gaussian_rows(&mut rng, 400, 16, 0.5);
        let d = gaussian_rows(&mut rng, 400, 16, 1.0);
        let (fb, fc, fd) = (
            frechet_distance(&a, &b).unwrap(),
            frechet_distance(&a, &c).unwrap(),
            frechet_distance(&a, &d).unwrap(),
        );
        assert!(fb < fc && fc < fd, "{fb} {fc} {fd}");
        // A pure mean shift of 1 in 16 dims adds about 16.
        assert!((fd - fb - 16.0).abs() < 3.0, "{fd} {fb}");
    }

    #[test]
    fn known_gaussians() {
        // 1-D: (m1-m2)^2 + s1 + s2 - 2 sqrt(s1 s2) = 1 + 4 + 1 - 2*2 = 2.
        let f = frechet(&[0.0], &[4.0], &[1.0], &[1.0]);
        assert!((f - 2.0).abs() < 1e-12, "{f}");
    }
}
