//! Streaming training clips: random windows of `L` consecutive frames from episode shards,
//! batched into Burn tensors for the world models.
//!
//! Shards come from an [`EpisodeSource`] (files natively, memory or fetch in the browser), so
//! this stays free of I/O. Only a few decoded episodes are cached at a time, so datasets far
//! larger than memory stream through.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use super::episode::Episode;
use super::longtail::ClipId;
use super::shard::{self, ShardError};
use crate::rng::Rng;

/// Where shard bytes come from.
pub trait EpisodeSource {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The shard bytes of episode `i`.
    fn read(&mut self, i: usize) -> Result<Vec<u8>, String>;
}

/// Shards held in memory.
pub struct MemorySource(pub Vec<Vec<u8>>);

impl EpisodeSource for MemorySource {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn read(&mut self, i: usize) -> Result<Vec<u8>, String> {
        self.0
            .get(i)
            .cloned()
            .ok_or_else(|| format!("no episode {i}"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("no episode has {0} frames or more")]
    TooShort(usize),
    #[error("episode {index}: {why}")]
    Read { index: usize, why: String },
    #[error("episode {index}: {source}")]
    Shard { index: usize, source: ShardError },
    #[error("clip {0:?} is outside its episode")]
    BadClip(ClipId),
    #[error("episodes of different games or frame sizes in one batch")]
    Mixed,
}

/// One batch of clips.
pub struct ClipBatch<B: Backend> {
    /// `[N, L, 3, H, W]`, values in `[0, 1]`.
    pub frames: Tensor<B, 5>,
    /// `[N, L]` action ids; the first frame of an episode has 255 ("no previous action").
    pub actions: Tensor<B, 2, Int>,
    /// `[N, L]` event bits.
    pub events: Tensor<B, 2, Int>,
    /// `[N, L]` scores.
    pub scores: Tensor<B, 2, Int>,
    /// Which clips these are (for the long-tail queue).
    pub clips: Vec<ClipId>,
}

pub struct ClipReader<S: EpisodeSource> {
    source: S,
    lengths: Vec<usize>,
    clip_len: usize,
    cache: Vec<(usize, Episode)>,
    cache_size: usize,
    rng: Rng,
    eligible: Vec<usize>,
}

impl<S: EpisodeSource> ClipReader<S> {
    /// `lengths[i]` is the frame count of episode `i` (from the manifest), so sampling needs no
    /// decoding; `cache_size` decoded episodes are kept.
    pub fn new(
        source: S,
        lengths: Vec<usize>,
        clip_len: usize,
        cache_size: usize,
        seed: u64,
    ) -> Result<Self, ClipError> {
        let eligible: Vec<usize> = (0..lengths.len().min(source.len()))
            .filter(|&i| lengths[i] >= clip_len.max(1))
            .collect();
        if eligible.is_empty() {
            return Err(ClipError::TooShort(clip_len));
        }
        Ok(Self {
            source,
            lengths,
            clip_len: clip_len.max(1),
            cache: Vec::new(),
            cache_size: cache_size.max(1),
            rng: Rng::new(seed),
            eligible,
        })
    }

    /// `n` random clips: an episode uniformly among those long enough, a start uniformly in it.
    pub fn sample(&mut self, n: usize) -> Vec<ClipId> {
        (0..n)
            .map(|_| {
                let e = self.eligible[self.rng.below(self.eligible.len() as u64) as usize];
                let starts = (self.lengths[e] - self.clip_len + 1) as u64;
                ClipId {
                    episode: e as u32,
                    start: self.rng.below(starts) as u32,
                }
            })
            .collect()
    }

    fn episode(&mut self, i: usize) -> Result<&Episode, ClipError> {
        if let Some(pos) = self.cache.iter().position(|(k, _)| *k == i) {
            let hit = self.cache.remove(pos);
            self.cache.push(hit);
        } else {
            let bytes = self
                .source
                .read(i)
                .map_err(|why| ClipError::Read { index: i, why })?;
            let ep =
                shard::decode(&bytes).map_err(|source| ClipError::Shard { index: i, source })?;
            if self.cache.len() >= self.cache_size {
                self.cache.remove(0);
            }
            self.cache.push((i, ep));
        }
        Ok(&self.cache.last().expect("just pushed").1)
    }

    /// Load `clips` into tensors on `device`.
    pub fn load<B: Backend>(
        &mut self,
        clips: &[ClipId],
        device: &B::Device,
    ) -> Result<ClipBatch<B>, ClipError> {
        let l = self.clip_len;
        let mut frames = Vec::new();
        let (mut actions, mut events, mut scores) = (Vec::new(), Vec::new(), Vec::new());
        let mut size: Option<(usize, usize)> = None;
        for &c in clips {
            let ep = self.episode(c.episode as usize)?;
            let s = c.start as usize;
            if s + l > ep.len() {
                return Err(ClipError::BadClip(c));
            }
            let (w, h) = (ep.width, ep.height);
            if *size.get_or_insert((w, h)) != (w, h) {
                return Err(ClipError::Mixed);
            }
            let plane = w * h;
            for t in s..s + l {
                let rgb = ep.frame(t);
                // Interleaved RGB8 -> planar [3][H][W] floats.
                for ch in 0..3 {
                    frames.extend((0..plane).map(|p| rgb[p * 3 + ch] as f32 / 255.0));
                }
                actions.push(ep.actions[t] as i64);
                events.push(ep.events[t] as i64);
                scores.push(ep.scores[t] as i64);
            }
        }
        let (w, h) = size.unwrap_or((0, 0));
        let n = clips.len();
        Ok(ClipBatch {
            frames: Tensor::from_data(TensorData::new(frames, [n, l, 3, h, w]), device),
            actions: Tensor::from_data(TensorData::new(actions, [n, l]), device),
            events: Tensor::from_data(TensorData::new(events, [n, l]), device),
            scores: Tensor::from_data(TensorData::new(scores, [n, l]), device),
            clips: clips.to_vec(),
        })
    }

    /// [`Self::sample`] then [`Self::load`].
    pub fn next_batch<B: Backend>(
        &mut self,
        n: usize,
        device: &B::Device,
    ) -> Result<ClipBatch<B>, ClipError> {
        let clips = self.sample(n);
        self.load(&clips, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::collect::{CollectConfig, play_episode};
    use crate::games::GameKind;
    use burn::backend::NdArray;

    #[test]
    fn batches_hold_the_recorded_frames_and_actions() {
        let mut cfg = CollectConfig::new(GameKind::Traveler, 3, 4);
        cfg.frames = 12;
        let eps: Vec<_> = (0..3)
            .map(|i| play_episode(&cfg, None, i).unwrap())
            .collect();
        let shards = eps.iter().map(|e| shard::encode(e, 1)).collect();
        let mut r = ClipReader::new(MemorySource(shards), vec![12, 12, 12], 5, 2, 0).unwrap();
        let dev = Default::default();
        let b = r.next_batch::<NdArray>(4, &dev).unwrap();
        assert_eq!(b.frames.dims(), [4, 5, 3, 96, 96]);
        assert_eq!(b.actions.dims(), [4, 5]);
        let c = b.clips[1];
        let ep = &eps[c.episode as usize];
        let acts: Vec<i64> = b
            .actions
            .clone()
            .into_data()
            .convert::<i64>()
            .to_vec()
            .unwrap();
        for t in 0..5 {
            assert_eq!(acts[5 + t], ep.actions[c.start as usize + t] as i64);
        }
        // Pixel (x=10, y=30), green channel, of the clip's third frame.
        let f: Vec<f32> = b.frames.into_data().convert::<f32>().to_vec().unwrap();
        let plane = 96 * 96;
        let got = f[(5 + 2) * 3 * plane + plane + 30 * 96 + 10];
        let want = ep.frame(c.start as usize + 2)[(30 * 96 + 10) * 3 + 1] as f32 / 255.0;
        assert!((got - want).abs() < 1e-6);
    }

    #[test]
    fn errors_for_short_or_corrupt_data() {
        assert!(matches!(
            ClipReader::new(MemorySource(vec![vec![0]]), vec![3], 5, 1, 0),
            Err(ClipError::TooShort(5))
        ));
        let mut r =
            ClipReader::new(MemorySource(vec![b"junk".to_vec()]), vec![9], 5, 1, 0).unwrap();
        let dev = Default::default();
        assert!(matches!(
            r.next_batch::<NdArray>(1, &dev),
            Err(ClipError::Shard { .. })
        ));
    }
}
