//! PlayGen's self-supervised long-tail learning (Alg. 3): keep the `queue_size` clips with the
//! highest loss seen so far and, at each training step, draw the batch from that queue with
//! probability `p_t`, else from the (balanced) dataset.
//!
//! The seed says `p_t` is *negatively* correlated with the moving-average loss `L̄` over the last
//! `window` steps: while everything is hard (`L̄` high) the queue holds nothing special, so train
//! on the whole data; as `L̄` falls, the rare transitions that still have high loss are what is
//! left to learn, so sample them more. We use `p_t = p_max * clamp(1 - L̄ / L̄_0, 0, 1)`, with
//! `L̄_0` the first full-window average.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// A clip: episode and first frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClipId {
    pub episode: u32,
    pub start: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LongTailConfig {
    /// `N_q`: clips kept in the priority queue.
    pub queue_size: usize,
    /// `M`: steps in the moving-average loss.
    pub window: usize,
    /// Upper bound of `p_t`.
    pub p_max: f64,
}

impl Default for LongTailConfig {
    fn default() -> Self {
        Self {
            queue_size: 1024,
            window: 100,
            p_max: 0.5,
        }
    }
}

pub struct LongTailSampler {
    cfg: LongTailConfig,
    /// (loss, clip), kept sorted by descending loss; small N_q makes a sorted Vec the simplest
    /// priority queue with updates.
    queue: Vec<(f64, ClipId)>,
    recent: std::collections::VecDeque<f64>,
    sum: f64,
    reference: Option<f64>,
}

/// Where the next batch comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Draw {
    /// Train on these clips from the long-tail queue.
    Queue(Vec<ClipId>),
    /// Sample the batch from the dataset as usual.
    Dataset,
}

impl LongTailSampler {
    pub fn new(cfg: LongTailConfig) -> Self {
        Self {
            cfg,
            queue: Vec::new(),
            recent: Default::default(),
            sum: 0.0,
            reference: None,
        }
    }

    /// Report the loss of a trained clip: updates the moving average and the queue (a clip
    /// already queued gets its new loss).
    pub fn record(&mut self, clip: ClipId, loss: f64) {
        if !loss.is_finite() {
            return;
        }
        self.recent.push_back(loss);
        self.sum += loss;
        if self.recent.len() > self.cfg.window.max(1) {
            self.sum -= self.recent.pop_front().unwrap_or(0.0);
        }
        if self.reference.is_none() && self.recent.len() >= self.cfg.window.max(1) {
            self.reference = Some(self.moving_average());
        }
        self.queue.retain(|(_, c)| *c != clip);
        let pos = self.queue.partition_point(|(l, _)| *l >= loss);
        self.queue.insert(pos, (loss, clip));
        self.queue.truncate(self.cfg.queue_size);
    }

    pub fn moving_average(&self) -> f64 {
        if self.recent.is_empty() {
            0.0
        } else {
            self.sum / self.recent.len() as f64
        }
    }

    /// `p_t`: 0 until a full window has been seen, then rising as the average loss falls.
    pub fn probability(&self) -> f64 {
        match self.reference {
            Some(r) if r > 0.0 => {
                (self.cfg.p_max * (1.0 - self.moving_average() / r)).clamp(0.0, self.cfg.p_max)
            }
            _ => 0.0,
        }
    }

    /// Decide the source of the next batch of `batch` clips (queue clips drawn uniformly).
    pub fn draw(&self, batch: usize, rng: &mut Rng) -> Draw {
        if self.queue.is_empty() || !rng.chance(self.probability()) {
            return Draw::Dataset;
        }
        Draw::Queue(
            (0..batch)
                .map(|_| self.queue[rng.below(self.queue.len() as u64) as usize].1)
                .collect(),
        )
    }

    /// The queued clips, highest loss first.
    pub fn queue(&self) -> impl Iterator<Item = (f64, ClipId)> + '_ {
        self.queue.iter().copied()
    }

    /// Everything the sampler has learnt (queue, recent losses, running sum, reference), as
    /// bytes that [`Self::restore`] turns back into the same sampler: floats are kept as their
    /// bit patterns, so a resumed training run draws exactly the batches an uninterrupted one
    /// would.
    pub fn state(&self) -> Vec<u8> {
        let mut out = SAMPLER_MAGIC.to_vec();
        out.extend_from_slice(&(self.queue.len() as u64).to_le_bytes());
        for (loss, clip) in &self.queue {
            out.extend_from_slice(&loss.to_bits().to_le_bytes());
            out.extend_from_slice(&clip.episode.to_le_bytes());
            out.extend_from_slice(&clip.start.to_le_bytes());
        }
        out.extend_from_slice(&(self.recent.len() as u64).to_le_bytes());
        for loss in &self.recent {
            out.extend_from_slice(&loss.to_bits().to_le_bytes());
        }
        out.extend_from_slice(&self.sum.to_bits().to_le_bytes());
        match self.reference {
            Some(r) => {
                out.push(1);
                out.extend_from_slice(&r.to_bits().to_le_bytes());
            }
            None => out.push(0),
        }
        out
    }

    /// Put back the state [`Self::state`] saved (the configuration stays this sampler's).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), SamplerStateError> {
        let mut r = Reader(bytes.strip_prefix(SAMPLER_MAGIC).ok_or(SamplerStateError)?);
        let n = r.len(16)?;
        let mut queue = Vec::with_capacity(n);
        for _ in 0..n {
            let loss = f64::from_bits(r.u64()?);
            let episode = r.u32()?;
            let start = r.u32()?;
            queue.push((loss, ClipId { episode, start }));
        }
        let n = r.len(8)?;
        let mut recent = std::collections::VecDeque::with_capacity(n);
        for _ in 0..n {
            recent.push_back(f64::from_bits(r.u64()?));
        }
        let sum = f64::from_bits(r.u64()?);
        let reference = match r.take(1)?[0] {
            0 => None,
            1 => Some(f64::from_bits(r.u64()?)),
            _ => return Err(SamplerStateError),
        };
        if !r.0.is_empty() {
            return Err(SamplerStateError);
        }
        self.queue = queue;
        self.recent = recent;
        self.sum = sum;
        self.reference = reference;
        Ok(())
    }
}

const SAMPLER_MAGIC: &[u8] = b"gamegen-longtail-1\n";

/// A saved sampler state that is truncated or not one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the long-tail sampler state is truncated or not one")]
pub struct SamplerStateError;

/// Little-endian reads off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], SamplerStateError> {
        let (head, tail) = self.0.split_at_checked(n).ok_or(SamplerStateError)?;
        self.0 = tail;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, SamplerStateError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn u32(&mut self) -> Result<u32, SamplerStateError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    /// A count of items of `item` bytes each, checked against what is left.
    fn len(&mut self, item: usize) -> Result<usize, SamplerStateError> {
        let n = usize::try_from(self.u64()?).map_err(|_| SamplerStateError)?;
        if n.checked_mul(item).is_none_or(|b| b > self.0.len()) {
            return Err(SamplerStateError);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(i: u32) -> ClipId {
        ClipId {
            episode: i,
            start: 0,
        }
    }

    #[test]
    fn queue_keeps_the_highest_losses() {
        let mut s = LongTailSampler::new(LongTailConfig {
            queue_size: 3,
            window: 4,
            p_max: 0.5,
        });
        for (i, l) in [0.5, 0.1, 0.9, 0.3, 0.7, 0.2].into_iter().enumerate() {
            s.record(clip(i as u32), l);
        }
        let q: Vec<_> = s.queue().collect();
        assert_eq!(q, vec![(0.9, clip(2)), (0.7, clip(4)), (0.5, clip(0))]);
        // A queued clip that became easy moves to the back (and out when harder ones come).
        s.record(clip(2), 0.05);
        let ids: Vec<_> = s.queue().map(|(_, c)| c.episode).collect();
        assert_eq!(ids, vec![4, 0, 2]);
        s.record(clip(7), 0.6);
        let ids: Vec<_> = s.queue().map(|(_, c)| c.episode).collect();
        assert_eq!(ids, vec![4, 7, 0]);
    }

    #[test]
    fn saved_state_restores_the_same_draws() {
        let cfg = LongTailConfig {
            queue_size: 4,
            window: 3,
            p_max: 0.9,
        };
        let mut s = LongTailSampler::new(cfg.clone());
        for (i, l) in [0.9, 0.7, 0.8, 0.1, 0.3, 0.05, 0.2].into_iter().enumerate() {
            s.record(clip(i as u32), l / 3.0);
        }
        let bytes = s.state();
        let mut back = LongTailSampler::new(cfg.clone());
        back.restore(&bytes).unwrap();
        assert_eq!(back.state(), bytes);
        let (mut r1, mut r2) = (Rng::new(4), Rng::new(4));
        for _ in 0..50 {
            assert_eq!(s.draw(3, &mut r1), back.draw(3, &mut r2));
        }
        for cut in 1..bytes.len() {
            let mut t = LongTailSampler::new(cfg.clone());
            assert!(t.restore(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(back.restore(&longer).is_err());
    }

    #[test]
    fn probability_rises_as_the_average_loss_falls() {
        let mut s = LongTailSampler::new(LongTailConfig {
            queue_size: 8,
            window: 10,
            p_max: 0.6,
        });
        assert_eq!(s.probability(), 0.0);
        for i in 0..10 {
            s.record(clip(i), 1.0);
        }
        assert_eq!(s.probability(), 0.0, "no progress yet");
        let mut last = 0.0;
        for (k, loss) in [0.8, 0.5, 0.2].into_iter().enumerate() {
            for i in 0..10 {
                s.record(clip(100 * k as u32 + i), loss);
            }
            let p = s.probability();
            assert!(p > last, "p must rise as L falls: {p} <= {last}");
            last = p;
        }
        assert!((last - 0.6 * 0.8).abs() < 1e-9);
        // Sampling follows p.
        let mut rng = Rng::new(1);
        let from_queue = (0..4000)
            .filter(|_| matches!(s.draw(2, &mut rng), Draw::Queue(_)))
            .count() as f64
            / 4000.0;
        assert!((from_queue - last).abs() < 0.04, "{from_queue} vs {last}");
    }
}
