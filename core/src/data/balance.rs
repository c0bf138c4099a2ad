//! PlayGen's balanced sampling (Alg. 2): cluster the episodes on their feature vectors
//! (k-means), solve `sum_i b_i c_i = y` for non-negative per-cluster counts `b` (NNLS) with `y`
//! a uniform target (uniform position histogram and action mix), then sample `b_i` episodes from
//! cluster `i`.

use serde::{Deserialize, Serialize};

use super::stats::EpisodeStats;
use crate::rng::Rng;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BalanceResult {
    /// Cluster of each input episode.
    pub assignment: Vec<usize>,
    pub cluster_sizes: Vec<usize>,
    /// Episodes taken from each cluster.
    pub counts: Vec<usize>,
    /// Indices (into the input) of the selected episodes, sorted.
    pub selected: Vec<usize>,
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// k-means with k-means++ seeding; deterministic for a seed.
pub fn kmeans(
    points: &[Vec<f64>],
    k: usize,
    seed: u64,
    iters: usize,
) -> (Vec<Vec<f64>>, Vec<usize>) {
    let n = points.len();
    let k = k.clamp(1, n.max(1));
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    let mut rng = Rng::new(seed);
    let mut centers = vec![points[rng.below(n as u64) as usize].clone()];
    let mut d: Vec<f64> = points.iter().map(|p| dist2(p, &centers[0])).collect();
    while centers.len() < k {
        let total: f64 = d.iter().sum();
        let next = if total <= 0.0 {
            rng.below(n as u64) as usize
        } else {
            let mut r = rng.next_f64() * total;
            let mut pick = n - 1;
            for (i, di) in d.iter().enumerate() {
                if r < *di {
                    pick = i;
                    break;
                }
                r -= di;
            }
            pick
        };
        centers.push(points[next].clone());
        for (i, p) in points.iter().enumerate() {
            d[i] = d[i].min(dist2(p, &centers[centers.len() - 1]));
        }
    }
    let mut assign = vec![0usize; n];
    for _ in 0..iters.max(1) {
        let mut changed = false;
        for (i, p) in points.iter().enumerate() {
            let best = (0..centers.len())
                .min_by(|&a, &b| dist2(p, &centers[a]).total_cmp(&dist2(p, &centers[b])))
                .unwrap_or(0);
            changed |= best != assign[i];
            assign[i] = best;
        }
        let dim = points[0].len();
        let mut sums = vec![vec![0.0; dim]; centers.len()];
        let mut counts = vec![0usize; centers.len()];
        for (p, &a) in points.iter().zip(&assign) {
            counts[a] += 1;
            for (s, v) in sums[a].iter_mut().zip(p) {
                *s += v;
            }
        }
        for c in 0..centers.len() {
            if counts[c] > 0 {
                centers[c] = sums[c].iter().map(|s| s / counts[c] as f64).collect();
            }
        }
        if !changed {
            break;
        }
    }
    (centers, assign)
}

/// Non-negative least squares `min ||A b - y||, b >= 0` by cyclic coordinate descent (convex,
/// so it converges; the systems here are tiny). `columns[j]` is column `j` of `A`.
pub fn nnls(columns: &[Vec<f64>], y: &[f64], sweeps: usize) -> Vec<f64> {
    let k = columns.len();
    let mut b = vec![0.0; k];
    let mut r: Vec<f64> = y.iter().map(|v| -v).collect(); // r = A b - y
    let norms: Vec<f64> = columns
        .iter()
        .map(|c| c.iter().map(|v| v * v).sum())
        .collect();
    for _ in 0..sweeps {
        for j in 0..k {
            if norms[j] <= 0.0 {
                continue;
            }
            let g: f64 = columns[j].iter().zip(&r).map(|(a, r)| a * r).sum();
            let nb = (b[j] - g / norms[j]).max(0.0);
            let delta = nb - b[j];
            if delta != 0.0 {
                for (ri, a) in r.iter_mut().zip(&columns[j]) {
                    *ri += delta * a;
                }
                b[j] = nb;
            }
        }
    }
    b
}

/// The balanced target: uniform position histogram and action mix, event rates as the data's
/// mean (we balance where the player is and what it does, not how often events fire).
pub fn uniform_target(stats: &[EpisodeStats]) -> Vec<f64> {
    let Some(first) = stats.first() else {
        return Vec::new();
    };
    let (p, a, e) = (
        first.positions.len(),
        first.actions.len(),
        first.events.len(),
    );
    let feats: Vec<Vec<f64>> = stats.iter().map(|s| s.features()).collect();
    let mut y = vec![1.0 / p as f64; p];
    y.extend(std::iter::repeat_n(1.0 / a as f64, a));
    for k in 0..e {
        y.push(feats.iter().map(|f| f[p + a + k]).sum::<f64>() / feats.len() as f64);
    }
    y
}

/// Alg. 2. The NNLS solution gives cluster proportions; they are scaled up as far as the
/// smallest used cluster allows, so the result is as large as it can be while balanced.
pub fn balance(stats: &[EpisodeStats], k: usize, seed: u64) -> BalanceResult {
    let feats: Vec<Vec<f64>> = stats.iter().map(|s| s.features()).collect();
    let (centers, assignment) = kmeans(&feats, k, seed, 100);
    let mut sizes = vec![0usize; centers.len()];
    for &a in &assignment {
        sizes[a] += 1;
    }
    let y = uniform_target(stats);
    let b = nnls(&centers, &y, 2000);
    let scale = b
        .iter()
        .zip(&sizes)
        .filter(|(bi, _)| **bi > 1e-9)
        .map(|(bi, &s)| s as f64 / bi)
        .fold(f64::INFINITY, f64::min);
    let counts: Vec<usize> = if scale.is_finite() {
        b.iter()
            .zip(&sizes)
            .map(|(bi, &s)| ((bi * scale + 1e-6).floor() as usize).min(s))
            .collect()
    } else {
        sizes.clone()
    };
    let mut rng = Rng::new(seed ^ 0x0BA1_A4CE);
    let mut selected = Vec::new();
    for (c, &want) in counts.iter().enumerate() {
        let mut members: Vec<usize> = (0..stats.len()).filter(|&i| assignment[i] == c).collect();
        for i in (1..members.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            members.swap(i, j);
        }
        selected.extend_from_slice(&members[..want]);
    }
    selected.sort_unstable();
    BalanceResult {
        assignment,
        cluster_sizes: sizes,
        counts,
        selected,
    }
}

/// Mean position histogram and action mix (fractions) of a set of episodes: the "before" and
/// "after" histograms `gamegen balance` prints.
pub fn mean_histograms(stats: &[EpisodeStats], pick: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let Some(first) = stats.first() else {
        return (Vec::new(), Vec::new());
    };
    let mut pos = vec![0.0; first.positions.len()];
    let mut act = vec![0.0; first.actions.len()];
    let (pt, at): (u64, u64) = pick.iter().fold((0, 0), |(p, a), &i| {
        (
            p + stats[i].positions.iter().map(|&v| v as u64).sum::<u64>(),
            a + stats[i].actions.iter().map(|&v| v as u64).sum::<u64>(),
        )
    });
    for &i in pick {
        for (d, v) in pos.iter_mut().zip(&stats[i].positions) {
            *d += *v as f64 / pt.max(1) as f64;
        }
        for (d, v) in act.iter_mut().zip(&stats[i].actions) {
            *d += *v as f64 / at.max(1) as f64;
        }
    }
    (pos, act)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(i: u64, positions: Vec<u32>, actions: Vec<u32>) -> EpisodeStats {
        EpisodeStats {
            index: i,
            file: String::new(),
            frames: positions.iter().sum(),
            bytes: 0,
            final_score: 0,
            events: vec![0; 5],
            actions,
            positions,
        }
    }

    fn l1_to_uniform(h: &[f64]) -> f64 {
        h.iter().map(|v| (v - 1.0 / h.len() as f64).abs()).sum()
    }

    #[test]
    fn nnls_solves_a_nonnegative_system() {
        let cols = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 1.0]];
        let b = nnls(&cols, &[2.0, 3.0], 500);
        let fit = [b[0] + b[2], b[1] + b[2]];
        assert!((fit[0] - 2.0).abs() < 1e-6 && (fit[1] - 3.0).abs() < 1e-6);
        assert!(b.iter().all(|v| *v >= 0.0));
        // A target needing a negative weight is clipped at zero.
        let b = nnls(&[vec![1.0, 0.0], vec![1.0, 1.0]], &[0.0, 1.0], 500);
        assert!(b[0].abs() < 1e-9 && b[1] > 0.0);
    }

    #[test]
    fn balance_moves_a_skewed_dataset_toward_uniform() {
        // 4 position bins, 2 actions. 80 episodes live in bin 0, 20 in bins 1-3; actions skewed too.
        let mut stats = Vec::new();
        for i in 0..100u64 {
            let (pos, act) = match i % 10 {
                0..=7 => (vec![40, 0, 0, 0], vec![36, 4]),
                8 => (vec![0, 40, 0, 0], vec![20, 20]),
                _ => (vec![0, 0, 20, 20], vec![4, 36]),
            };
            stats.push(ep(i, pos, act));
        }
        let all: Vec<usize> = (0..stats.len()).collect();
        let (p0, a0) = mean_histograms(&stats, &all);
        let r = balance(&stats, 3, 7);
        assert_eq!(r.cluster_sizes.iter().sum::<usize>(), 100);
        assert!(r.selected.len() >= 20, "kept {}", r.selected.len());
        let (p1, a1) = mean_histograms(&stats, &r.selected);
        assert!(
            l1_to_uniform(&p1) < 0.6 * l1_to_uniform(&p0),
            "{p0:?} -> {p1:?}"
        );
        assert!(l1_to_uniform(&a1) < l1_to_uniform(&a0), "{a0:?} -> {a1:?}");
        assert_eq!(balance(&stats, 3, 7), r, "deterministic");
    }
}
