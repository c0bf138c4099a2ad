//! A collected dataset (`gamegen collect` output) in memory, in the shape the world-model
//! trainer wants: RGB frames for the VAE stage, then per-episode latents for the dynamics
//! stage, and the game's event bits remapped to LogicNet's compact outputs.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use gamegen_core::data::collect::{MANIFEST_NAME, shard_name};
use gamegen_core::data::episode::NO_ACTION;
use gamegen_core::data::longtail::ClipId;
use gamegen_core::data::shard;
use gamegen_core::games::{Events, GameKind};
use gamegen_core::rng::Rng;
use gamegen_core::world::model::SpatialConfig;
use gamegen_core::world::model::spatial::{SpatialMap, crops_to_tensor, replay_local_maps};
use gamegen_core::world::train::ClipBatch;
use gamegen_core::world::train::logic_fit::clean_states;
use gamegen_core::world::{Vae, WorldConfig, WorldModel};

use crate::collect::read_manifest;

/// LogicNet output `i` is game event bit `game_events(game)[i]`: the scoring event first, then
/// the ending event (the external record's masks are `1` and `2`).
pub fn game_events(game: GameKind) -> &'static [u8] {
    match game {
        GameKind::Traveler => &[Events::BUILT],
        GameKind::Pong => &[Events::PADDLE_HIT, Events::POINT_LOST],
        GameKind::Pacman => &[Events::DOT_EATEN, Events::DEATH],
    }
}

/// Game event bits -> LogicNet's compact bits.
pub fn compact_events(game: GameKind, bits: u8) -> u8 {
    game_events(game)
        .iter()
        .enumerate()
        .fold(0, |acc, (i, &b)| acc | (((bits & b != 0) as u8) << i))
}

/// One episode, decoded.
pub struct EpisodeData {
    /// RGB8 interleaved, frame after frame.
    pub frames: Vec<u8>,
    pub actions: Vec<u8>,
    /// Compact event bits ([`compact_events`]).
    pub events: Vec<u8>,
    pub scores: Vec<u32>,
    /// The player's world position in each frame: where the frame sits in the external map
    /// (the camera keeps the player at a fixed place in the view).
    pub positions: Vec<(i64, i64)>,
    /// `[len, c, h, w]` latents, once [`Dataset::encode_latents`] ran.
    pub latents: Vec<f32>,
}

impl EpisodeData {
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

pub struct Dataset {
    pub game: GameKind,
    pub width: usize,
    pub height: usize,
    pub episodes: Vec<EpisodeData>,
    /// Episodes `[0, train_episodes)` train; the rest are held out for evaluation.
    pub train_episodes: usize,
    pub latent_shape: [usize; 3],
}

impl Dataset {
    /// Load every shard listed in `dir`'s manifest (at most `max_episodes`), holding out the
    /// last tenth (at least one episode when there are two or more) for evaluation.
    pub fn load(dir: &Path, game: GameKind, max_episodes: Option<usize>) -> anyhow::Result<Self> {
        if !dir.join(MANIFEST_NAME).is_file() {
            anyhow::bail!(
                "{} has no {MANIFEST_NAME}: collect data first (gamegen collect {} --out {})",
                dir.display(),
                game.name(),
                dir.display()
            );
        }
        let manifest = read_manifest(dir)?;
        if manifest.config.game != game {
            anyhow::bail!(
                "{} holds {} episodes, not {}",
                dir.display(),
                manifest.config.game.name(),
                game.name()
            );
        }
        let count = manifest
            .episodes
            .len()
            .min(max_episodes.unwrap_or(usize::MAX));
        let mut episodes = Vec::with_capacity(count);
        for e in &manifest.episodes[..count] {
            let path = dir.join(shard_name(e.index));
            let bytes =
                std::fs::read(&path).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
            let ep = shard::decode(&bytes)
                .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
            episodes.push(EpisodeData {
                events: ep.events.iter().map(|&b| compact_events(game, b)).collect(),
                positions: ep.player.iter().map(|p| (p.x as i64, p.y as i64)).collect(),
                frames: ep.frames,
                actions: ep.actions,
                scores: ep.scores,
                latents: Vec::new(),
            });
        }
        if episodes.is_empty() {
            anyhow::bail!("{} lists no episodes", dir.display());
        }
        let held_out = if episodes.len() >= 2 {
            (episodes.len() / 10).max(1)
        } else {
            0
        };
        let (width, height) = game.frame_size();
        Ok(Self {
            game,
            width,
            height,
            train_episodes: episodes.len() - held_out,
            episodes,
            latent_shape: [0; 3],
        })
    }

    fn frame_len(&self) -> usize {
        self.width * self.height * 3
    }

    /// Frames total in the training episodes.
    pub fn train_frames(&self) -> usize {
        self.episodes[..self.train_episodes]
            .iter()
            .map(EpisodeData::len)
            .sum()
    }

    /// `[N, 3, H, W]` in `[0, 1]` from `(episode, frame)` pairs.
    pub fn frames_tensor<B: Backend>(
        &self,
        picks: &[(usize, usize)],
        device: &B::Device,
    ) -> Tensor<B, 4> {
        let (w, h, fl) = (self.width, self.height, self.frame_len());
        let mut data = Vec::with_capacity(picks.len() * fl);
        for &(e, t) in picks {
            let rgb = &self.episodes[e].frames[t * fl..(t + 1) * fl];
            for c in 0..3 {
                data.extend((0..w * h).map(|p| rgb[p * 3 + c] as f32 / 255.0));
            }
        }
        Tensor::from_data(TensorData::new(data, [picks.len(), 3, h, w]), device)
    }

    /// `n` random frames of the training episodes.
    pub fn sample_frames(&self, n: usize, rng: &mut Rng) -> Vec<(usize, usize)> {
        (0..n)
            .map(|_| {
                let e = rng.below(self.train_episodes as u64) as usize;
                (e, rng.below(self.episodes[e].len() as u64) as usize)
            })
            .collect()
    }

    /// Up to `n` frames spread evenly over the held-out episodes (or the training ones when
    /// nothing is held out): a fixed evaluation set.
    pub fn eval_frames(&self, n: usize) -> Vec<(usize, usize)> {
        let eps: Vec<usize> = if self.train_episodes < self.episodes.len() {
            (self.train_episodes..self.episodes.len()).collect()
        } else {
            (0..self.episodes.len()).collect()
        };
        let total: usize = eps.iter().map(|&e| self.episodes[e].len()).sum();
        let stride = (total / n.max(1)).max(1);
        let mut out = Vec::new();
        let mut k = 0;
        for &e in &eps {
            for t in 0..self.episodes[e].len() {
                if k % stride == 0 && out.len() < n {
                    out.push((e, t));
                }
                k += 1;
            }
        }
        out
    }

    /// Encode every frame with the frozen VAE (chunks of `chunk` frames) and drop the RGB
    /// frames' role in training: from here on clips come from latents, so the expensive encoder
    /// runs once per frame instead of once per visit.
    pub fn encode_latents<B: Backend>(
        &mut self,
        vae: &Vae<B>,
        chunk: usize,
        device: &B::Device,
        progress: &dyn Fn(usize),
    ) {
        let mut done = 0;
        for e in 0..self.episodes.len() {
            let len = self.episodes[e].len();
            let mut latents = Vec::new();
            for start in (0..len).step_by(chunk.max(1)) {
                let picks: Vec<(usize, usize)> =
                    (start..(start + chunk).min(len)).map(|t| (e, t)).collect();
                let z = vae.encode_latent(self.frames_tensor::<B>(&picks, device));
                let [_, c, h, w] = z.dims();
                self.latent_shape = [c, h, w];
                latents.extend(
                    z.into_data()
                        .convert::<f32>()
                        .into_vec::<f32>()
                        .expect("float latents"),
                );
                done += picks.len();
                progress(done);
            }
            self.episodes[e].latents = latents;
        }
    }

    /// `n` random training clips of `len` frames.
    pub fn sample_clips(&self, n: usize, len: usize, rng: &mut Rng) -> Vec<ClipId> {
        let eligible: Vec<usize> = (0..self.train_episodes)
            .filter(|&e| self.episodes[e].len() >= len)
            .collect();
        (0..n)
            .map(|_| {
                let e = eligible[rng.below(eligible.len() as u64) as usize];
                let starts = (self.episodes[e].len() - len + 1) as u64;
                ClipId {
                    episode: e as u32,
                    start: rng.below(starts) as u32,
                }
            })
            .collect()
    }

    /// Whether clips of `len` frames exist in the training (and held-out) episodes.
    pub fn has_clips(&self, len: usize) -> (bool, bool) {
        let ok = |r: std::ops::Range<usize>| r.into_iter().any(|e| self.episodes[e].len() >= len);
        (
            ok(0..self.train_episodes),
            ok(self.train_episodes..self.episodes.len()),
        )
    }

    /// Fixed held-out clips for evaluation (training clips when nothing is held out).
    pub fn eval_clips(&self, n: usize, len: usize) -> Vec<ClipId> {
        let range = if self.has_clips(len).1 {
            self.train_episodes..self.episodes.len()
        } else {
            0..self.train_episodes
        };
        let mut out = Vec::new();
        'outer: for e in range.clone() {
            let l = self.episodes[e].len();
            if l < len {
                continue;
            }
            let mut s = 0;
            while s + len <= l {
                out.push(ClipId {
                    episode: e as u32,
                    start: s as u32,
                });
                if out.len() == n {
                    break 'outer;
                }
                s += len;
            }
        }
        out
    }

    /// The local maps `[clips, len, 3, h, w]` in `[0, 1]` that a play session would feed the
    /// spatial module for each `(episode, start)` clip ([`replay_local_maps`]).
    pub fn local_maps<B: Backend>(
        &self,
        clips: &[(usize, usize)],
        len: usize,
        spatial: &SpatialConfig,
        device: &B::Device,
    ) -> Tensor<B, 5> {
        let (cw, ch) = (spatial.encoder.crop_width, spatial.encoder.crop_height);
        let crops: Vec<Vec<u8>> = clips
            .iter()
            .flat_map(|&(e, start)| {
                let ep = &self.episodes[e];
                replay_local_maps(
                    SpatialMap::new(self.width, self.height, spatial.world_rows),
                    &ep.frames,
                    &ep.positions,
                    start,
                    len,
                    (cw, ch),
                )
            })
            .collect();
        crops_to_tensor::<B>(&crops, ch, cw, device).reshape([clips.len(), len, 3, ch, cw])
    }

    /// A dynamics batch from latents: actions mapped so that [`NO_ACTION`] becomes the model's
    /// reserved id, clip ids packed as `episode << 32 | start`; with a spatial module, the
    /// local maps a session would show.
    pub fn clip_batch<B: Backend>(
        &self,
        clips: &[ClipId],
        len: usize,
        config: &WorldConfig,
        device: &B::Device,
    ) -> ClipBatch<B> {
        let no_action = config.dit.no_action();
        let [c, h, w] = self.latent_shape;
        let per = c * h * w;
        let mut latents = Vec::with_capacity(clips.len() * len * per);
        let (mut actions, mut events, mut scores) = (Vec::new(), Vec::new(), Vec::new());
        for clip in clips {
            let ep = &self.episodes[clip.episode as usize];
            let s = clip.start as usize;
            latents.extend_from_slice(&ep.latents[s * per..(s + len) * per]);
            for t in s..s + len {
                actions.push(model_action(ep.actions[t], no_action));
                events.push(ep.events[t]);
                scores.push(ep.scores[t]);
            }
        }
        let tensor = Tensor::from_data(
            TensorData::new(latents, [clips.len(), len, c, h, w]),
            device,
        );
        let mut batch = ClipBatch::from_latents(tensor, actions);
        if let Some(spatial) = &config.spatial {
            let picks: Vec<(usize, usize)> = clips
                .iter()
                .map(|c| (c.episode as usize, c.start as usize))
                .collect();
            batch.local_maps = Some(self.local_maps(&picks, len, spatial, device));
        }
        batch.events = Some(events);
        batch.scores = Some(scores);
        batch.ids = Some(
            clips
                .iter()
                .map(|c| ((c.episode as u64) << 32) | c.start as u64)
                .collect(),
        );
        batch
    }
}

/// `(z_{t-1}, a_t, events_t)` pairs of many episodes: the rows LogicNet is fitted on.
pub struct StateBank<B: Backend> {
    /// `[n, z, h, w]`: row `r` is the state LogicNet reads for pair `r`.
    pub states: Tensor<B, 4>,
    pub actions: Vec<u32>,
    pub events: Vec<u8>,
}

impl<B: Backend> StateBank<B> {
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

impl Dataset {
    /// Replay `episodes` (indices) through the level-0 pass of `model` in batches of equally
    /// long episodes and collect every `(z_{t-1}, a_t, events_t)`, `t >= 1`. Needs the latent
    /// cache ([`Dataset::encode_latents`]). `progress` gets the number of frames replayed.
    pub fn state_bank<B: Backend>(
        &self,
        model: &WorldModel<B>,
        config: &WorldConfig,
        episodes: &[usize],
        device: &B::Device,
        progress: &dyn Fn(usize),
    ) -> anyhow::Result<StateBank<B>> {
        let [c, h, w] = self.latent_shape;
        let per = c * h * w;
        let no_action = config.dit.no_action();
        let mut by_len: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for &i in episodes {
            if self.episodes[i].len() >= 2 {
                by_len.entry(self.episodes[i].len()).or_default().push(i);
            }
        }
        let (mut states, mut actions, mut events) = (Vec::new(), Vec::new(), Vec::new());
        let mut done = 0;
        for (&t, group) in &by_len {
            // 16 episodes at a time, fewer when their local maps would pass ~256 MB.
            let map_bytes = config.spatial.as_ref().map_or(0, |s| {
                4 * 3 * s.encoder.crop_height * s.encoder.crop_width * t
            });
            let batch = (256usize << 20)
                .checked_div(map_bytes)
                .unwrap_or(16)
                .clamp(1, 16);
            for chunk in group.chunks(batch) {
                let mut lat = Vec::with_capacity(chunk.len() * t * per);
                let (mut acts, mut scores) = (Vec::new(), Vec::new());
                for &i in chunk {
                    let ep = &self.episodes[i];
                    lat.extend_from_slice(&ep.latents[..t * per]);
                    acts.extend(ep.actions.iter().map(|&a| model_action(a, no_action)));
                    scores.extend_from_slice(&ep.scores);
                }
                let lat = Tensor::<B, 5>::from_data(
                    TensorData::new(lat, [chunk.len(), t, c, h, w]),
                    device,
                );
                let maps = config.spatial.as_ref().map(|s| {
                    let picks: Vec<(usize, usize)> = chunk.iter().map(|&i| (i, 0)).collect();
                    self.local_maps::<B>(&picks, t, s, device)
                });
                let z = clean_states(model, config, lat, &acts, Some(&scores), maps);
                let [b, _, zc, zh, zw] = z.dims();
                // States after frames 0..t-1 feed the predictions for frames 1..t.
                states.push(z.narrow(1, 0, t - 1).reshape([b * (t - 1), zc, zh, zw]));
                for (j, &i) in chunk.iter().enumerate() {
                    actions.extend_from_slice(&acts[j * t + 1..(j + 1) * t]);
                    events.extend_from_slice(&self.episodes[i].events[1..t]);
                }
                done += chunk.len() * t;
                progress(done);
            }
        }
        anyhow::ensure!(
            !states.is_empty(),
            "no episode of two or more frames to fit LogicNet on"
        );
        Ok(StateBank {
            states: Tensor::cat(states, 0),
            actions,
            events,
        })
    }
}

/// A recorded action as the model's action id: the shards' `NO_ACTION` (the first frame) is the
/// model's reserved "no previous action" id.
fn model_action(recorded: u8, no_action: u32) -> u32 {
    if recorded == NO_ACTION {
        no_action
    } else {
        recorded as u32
    }
}

/// Unpack an id made by [`Dataset::clip_batch`].
pub fn clip_from_id(id: u64) -> ClipId {
    ClipId {
        episode: (id >> 32) as u32,
        start: id as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_compacted_per_game() {
        assert_eq!(compact_events(GameKind::Traveler, Events::BUILT), 1);
        assert_eq!(compact_events(GameKind::Traveler, Events::DOT_EATEN), 0);
        assert_eq!(
            compact_events(GameKind::Pong, Events::PADDLE_HIT | Events::POINT_LOST),
            3
        );
        assert_eq!(compact_events(GameKind::Pacman, Events::DEATH), 2);
    }

    #[test]
    fn clip_ids_round_trip() {
        let c = ClipId {
            episode: 70_000,
            start: 123_456,
        };
        let id = ((c.episode as u64) << 32) | c.start as u64;
        assert_eq!(clip_from_id(id), c);
    }
}
