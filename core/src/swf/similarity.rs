//! Jaro-Winkler similarity between files, the ByteCraft paper's memorisation measure ("max
//! similarity" of a generated file to the training set, "truth similarity" to the file the
//! prompt was written for), exact and fast on files of hundreds of KB.
//!
//! Jaro's match window on long strings is half their length, so the textbook double loop is
//! quadratic. Two facts make it linear: the window's lower edge only moves right, and Jaro
//! always takes the *first* unmatched equal byte in the window. So for each byte value the
//! matched positions of the second string are a prefix of its sorted occurrence list (minus the
//! positions that fell behind the window), and one cursor per byte value finds every match.
//!
//! Searching a reference set uses an upper bound that needs no matching at all: the matches
//! cannot exceed the byte histograms' overlap, and transpositions only lower the score. The
//! references are scored exactly in order of decreasing bound until the bound falls below the
//! best exact score, which therefore equals the exhaustive maximum.

/// Winkler's prefix scale and the longest prefix it rewards.
pub const PREFIX_SCALE: f64 = 0.1;
pub const MAX_PREFIX: usize = 4;

/// A file prepared for comparisons: its bytes and byte histogram.
#[derive(Clone, Debug)]
pub struct Profile {
    pub bytes: Vec<u8>,
    histogram: [u32; 256],
}

impl Profile {
    pub fn new(bytes: Vec<u8>) -> Self {
        let mut histogram = [0u32; 256];
        for &b in &bytes {
            histogram[b as usize] += 1;
        }
        Self { bytes, histogram }
    }

    /// An upper bound of [`jaro_winkler`]`(self, other)`.
    pub fn bound(&self, other: &Profile) -> f64 {
        let (n, m) = (self.bytes.len(), other.bytes.len());
        if n == 0 || m == 0 {
            return if n == m { 1.0 } else { 0.0 };
        }
        let overlap: u64 = self
            .histogram
            .iter()
            .zip(&other.histogram)
            .map(|(&a, &b)| u64::from(a.min(b)))
            .sum();
        let c = overlap as f64;
        let jaro = ((c / n as f64 + c / m as f64 + 1.0) / 3.0).min(1.0);
        winkler(jaro, common_prefix(&self.bytes, &other.bytes))
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .take(MAX_PREFIX)
        .take_while(|(x, y)| x == y)
        .count()
}

fn winkler(jaro: f64, prefix: usize) -> f64 {
    jaro + prefix as f64 * PREFIX_SCALE * (1.0 - jaro)
}

/// Jaro similarity in O(|a| + |b|) time.
pub fn jaro(a: &[u8], b: &[u8]) -> f64 {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return if n == m { 1.0 } else { 0.0 };
    }
    let window = (n.max(m) / 2).saturating_sub(1);
    // Occurrences of each byte value in `b`, in order, laid out in one array.
    let mut start = [0usize; 257];
    for &x in b {
        start[x as usize + 1] += 1;
    }
    for v in 0..256 {
        start[v + 1] += start[v];
    }
    let mut fill = start;
    let mut positions = vec![0u32; m];
    for (j, &x) in b.iter().enumerate() {
        positions[fill[x as usize]] = j as u32;
        fill[x as usize] += 1;
    }
    let mut cursor = start;
    let mut matched_b = vec![false; m];
    let mut a_matches: Vec<u8> = Vec::new();
    for (i, &x) in a.iter().enumerate() {
        let (v, lo, hi) = (x as usize, i.saturating_sub(window), i + window);
        let end = start[v + 1];
        let mut k = cursor[v];
        while k < end && (positions[k] as usize) < lo {
            k += 1;
        }
        if k < end && positions[k] as usize <= hi {
            matched_b[positions[k] as usize] = true;
            a_matches.push(x);
            k += 1;
        }
        cursor[v] = k;
    }
    let matches = a_matches.len();
    if matches == 0 {
        return 0.0;
    }
    let half_transpositions = b
        .iter()
        .zip(&matched_b)
        .filter(|(_, m)| **m)
        .zip(&a_matches)
        .filter(|((x, _), y)| *x != *y)
        .count();
    let c = matches as f64;
    let t = (half_transpositions / 2) as f64;
    (c / n as f64 + c / m as f64 + (c - t) / c) / 3.0
}

/// Jaro-Winkler similarity (prefix scale 0.1, prefix up to 4 bytes), in `[0, 1]`.
pub fn jaro_winkler(a: &[u8], b: &[u8]) -> f64 {
    winkler(jaro(a, b), common_prefix(a, b))
}

/// The best match of `query` in `references`: `(index, similarity, exact comparisons made)`.
/// Ties go to the lowest index, as in an exhaustive scan. `None` when there are no references.
pub fn most_similar(query: &Profile, references: &[Profile]) -> Option<(usize, f64, usize)> {
    let mut order: Vec<(f64, usize)> = references
        .iter()
        .enumerate()
        .map(|(i, r)| (query.bound(r), i))
        .collect();
    order.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    let mut best: Option<(usize, f64)> = None;
    let mut exact = 0;
    for (bound, i) in order {
        if let Some((bi, bs)) = best
            && (bound < bs || (bound == bs && i > bi))
        {
            break;
        }
        exact += 1;
        let s = jaro_winkler(&query.bytes, &references[i].bytes);
        best = match best {
            Some((bi, bs)) if bs > s || (bs == s && bi < i) => Some((bi, bs)),
            _ => Some((i, s)),
        };
    }
    best.map(|(i, s)| (i, s, exact))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The textbook quadratic Jaro.
    fn jaro_naive(a: &[u8], b: &[u8]) -> f64 {
        let (n, m) = (a.len(), b.len());
        if n == 0 || m == 0 {
            return if n == m { 1.0 } else { 0.0 };
        }
        let w = (n.max(m) / 2).saturating_sub(1);
        let mut mb = vec![false; m];
        let mut ma = vec![false; n];
        let mut c = 0;
        for i in 0..n {
            let lo = i.saturating_sub(w);
            let hi = (i + w + 1).min(m);
            for j in lo..hi {
                if !mb[j] && a[i] == b[j] {
                    mb[j] = true;
                    ma[i] = true;
                    c += 1;
                    break;
                }
            }
        }
        if c == 0 {
            return 0.0;
        }
        let sa: Vec<u8> = (0..n).filter(|&i| ma[i]).map(|i| a[i]).collect();
        let sb: Vec<u8> = (0..m).filter(|&j| mb[j]).map(|j| b[j]).collect();
        let t = sa.iter().zip(&sb).filter(|(x, y)| x != y).count() / 2;
        let c = c as f64;
        (c / n as f64 + c / m as f64 + (c - t as f64) / c) / 3.0
    }

    #[test]
    fn known_values() {
        // The classic examples (Winkler 1990 / Wikipedia).
        assert!((jaro(b"MARTHA", b"MARHTA") - 0.944_444).abs() < 1e-6);
        assert!((jaro_winkler(b"MARTHA", b"MARHTA") - 0.961_111).abs() < 1e-6);
        assert!((jaro(b"DIXON", b"DICKSONX") - 0.766_667).abs() < 1e-6);
        assert!((jaro_winkler(b"DIXON", b"DICKSONX") - 0.813_333).abs() < 1e-6);
        assert_eq!(jaro_winkler(b"abc", b"abc"), 1.0);
        assert_eq!(jaro_winkler(b"abc", b"xyz"), 0.0);
        assert_eq!(jaro_winkler(b"", b""), 1.0);
        assert_eq!(jaro_winkler(b"", b"a"), 0.0);
    }

    #[test]
    fn linear_jaro_equals_the_textbook_one() {
        let mut rng = Rng::new(3);
        for case in 0..400 {
            let alphabet = 2 + (case % 5) as u64;
            let n = rng.below(60) as usize;
            let m = rng.below(60) as usize;
            let a: Vec<u8> = (0..n).map(|_| rng.below(alphabet) as u8).collect();
            let b: Vec<u8> = (0..m).map(|_| rng.below(alphabet) as u8).collect();
            let (fast, slow) = (jaro(&a, &b), jaro_naive(&a, &b));
            assert!((fast - slow).abs() < 1e-12, "{a:?} {b:?}: {fast} vs {slow}");
        }
    }

    #[test]
    fn bounds_hold_and_search_equals_exhaustive() {
        let mut rng = Rng::new(8);
        let base: Vec<u8> = (0..300).map(|_| rng.below(16) as u8).collect();
        let refs: Vec<Profile> = (0..60)
            .map(|k| {
                let mut v = base.clone();
                for _ in 0..(k * 5) {
                    let i = rng.below(v.len() as u64) as usize;
                    v[i] = rng.below(256) as u8;
                }
                v.truncate(100 + rng.below(200) as usize);
                Profile::new(v)
            })
            .collect();
        for q in 0..10 {
            let mut query = base.clone();
            for _ in 0..(q * 20) {
                let i = rng.below(query.len() as u64) as usize;
                query[i] = rng.below(32) as u8;
            }
            let query = Profile::new(query);
            let mut best = (0, -1.0);
            for (i, r) in refs.iter().enumerate() {
                let s = jaro_winkler(&query.bytes, &r.bytes);
                assert!(query.bound(r) + 1e-12 >= s);
                if s > best.1 {
                    best = (i, s);
                }
            }
            let (i, s, exact) = most_similar(&query, &refs).unwrap();
            assert_eq!((i, s), best);
            assert!(exact <= refs.len());
        }
        assert!(most_similar(&Profile::new(vec![1]), &[]).is_none());
    }
}
