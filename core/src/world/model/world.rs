//! Everything trainable of the dynamics model in one module, and the presets.
//!
//! The VAE is trained first and frozen (PlayGen's two stages), so it is kept apart; the
//! `WorldModel` holds the DiT cell, the v head, the learnable initial state and MaaG's LogicNet
//! and map CNN. `WorldConfig` is what `config.json` holds beside a checkpoint.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::games::GameKind;
use crate::world::ddim::StatePass;
use crate::world::model::dit::{DitCell, DitCond, DitConfig, DitInput, Modulation, VHead};
use crate::world::model::logicnet::{LogicNet, LogicNetConfig};
use crate::world::model::spatial::{MapEncoder, MapEncoderConfig, MatchMask};
use crate::world::model::vae::VaeConfig;
use crate::world::{ConfigError, check_range};

/// How frames are linked into the external map (MaaG's map extension parameters).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpatialConfig {
    pub encoder: MapEncoderConfig,
    /// Frame rows `[top, bottom)` that show the world (not the score bar).
    pub world_rows: (usize, usize),
    /// Movement range searched when linking, pixels (x, y); MaaG: 10 (y = 0 for a strip).
    pub link_range: (i64, i64),
    pub mask: MatchMask,
}

impl SpatialConfig {
    /// MaaG's spatial module for the games that need one: Traveler's 1-D strip and Pac-Man's
    /// 2-D maze (Pong shows its whole world in every frame: `None`). `paper` uses MaaG's token
    /// counts (40 and 48); the tiny preset keeps 16 map tokens, because every token is paid
    /// for in each of a frame's DDIM passes and the grid itself has only 36 or 64.
    pub fn for_game(game: GameKind, paper: bool) -> Option<Self> {
        let encoder = |h, w, tiny_grid, paper_grid| {
            if paper {
                MapEncoderConfig::paper(h, w, paper_grid)
            } else {
                MapEncoderConfig::tiny(h, w, tiny_grid)
            }
        };
        match game {
            // 76 world rows under the 20-row score bar; the crop reaches 48 px beyond each side
            // of the 96 px view (24 frames of walking), where remembered buildings wait.
            GameKind::Traveler => Some(Self {
                encoder: encoder(76, 192, [2, 8], [5, 8]),
                world_rows: (20, 96),
                link_range: (10, 0),
                mask: MatchMask::All,
            }),
            GameKind::Pacman => Some(Self {
                encoder: encoder(160, 192, [4, 4], [6, 8]),
                world_rows: (20, 128),
                // Pac-Man moves 2 px a frame; the range leaves room for a drifting frame.
                link_range: (6, 6),
                mask: MatchMask::Color {
                    color: crate::games::pacman::WALL,
                    tolerance: 24,
                },
            }),
            GameKind::Pong => None,
        }
    }
}

/// Which event bits the external record counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    pub scoring_events: u8,
    pub ending_events: u8,
    /// Probability above which LogicNet's event counts as fired.
    pub threshold: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldConfig {
    pub vae: VaeConfig,
    pub dit: DitConfig,
    pub logic: Option<LogicNetConfig>,
    pub record: Option<RecordConfig>,
    pub spatial: Option<SpatialConfig>,
    /// What the play sampler's state pass sees (absent in older `config.json` files: the
    /// reference's relabelled clean latent).
    #[serde(default)]
    pub state_pass: StatePass,
}

impl WorldConfig {
    /// CPU-sized model for `height x width` frames and `num_actions` actions, with LogicNet
    /// over `num_events` event bits (no map; add one with [`WorldConfig::with_spatial`]).
    pub fn tiny(height: usize, width: usize, num_actions: usize, num_events: usize) -> Self {
        let vae = VaeConfig::tiny(height, width);
        let dit = DitConfig::tiny(vae.latent_shape(), num_actions);
        let logic = LogicNetConfig::tiny(dit.z_channels, num_actions, num_events);
        Self {
            vae,
            dit,
            logic: Some(logic),
            record: Some(RecordConfig {
                scoring_events: 1,
                ending_events: 0,
                threshold: 0.5,
            }),
            spatial: None,
            state_pass: StatePass::default(),
        }
    }

    /// PlayGen's sizes (DiT-S/2 on a 4x32x32 latent for 128x128 frames; VAE 128 x [1, 2, 4]).
    pub fn paper(height: usize, width: usize, num_actions: usize, num_events: usize) -> Self {
        let vae = VaeConfig::paper(height, width);
        let dit = DitConfig::paper(vae.latent_shape(), num_actions);
        let logic = LogicNetConfig::paper(dit.z_channels, num_actions, num_events);
        Self {
            vae,
            dit,
            logic: Some(logic),
            record: Some(RecordConfig {
                scoring_events: 1,
                ending_events: 0,
                threshold: 0.5,
            }),
            spatial: None,
            state_pass: StatePass::default(),
        }
    }

    /// Add the spatial module; the DiT gets the encoder's tokens.
    pub fn with_spatial(mut self, spatial: SpatialConfig) -> Self {
        self.dit.map_tokens = spatial.encoder.tokens();
        self.dit.map_token_dim = spatial.encoder.token_dim();
        self.spatial = Some(spatial);
        self
    }

    /// The ablation of MaaG Table 1: the same VAE and DiT without LogicNet, the external
    /// score record and the spatial module (no digit or map tokens); PlayGen's model alone.
    pub fn without_modules(mut self) -> Self {
        self.logic = None;
        self.record = None;
        self.spatial = None;
        self.dit.digit_tokens = 0;
        self.dit.map_tokens = 0;
        self
    }

    /// True when neither LogicNet nor the spatial module is configured.
    pub fn has_no_modules(&self) -> bool {
        self.logic.is_none() && self.spatial.is_none()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.vae.validate()?;
        self.dit.validate()?;
        self.state_pass.validate()?;
        let [c, h, w] = self.vae.latent_shape();
        if [c, h, w]
            != [
                self.dit.latent_channels,
                self.dit.latent_height,
                self.dit.latent_width,
            ]
        {
            return Err(ConfigError(format!(
                "the DiT expects a {}x{}x{} latent but the VAE makes {c}x{h}x{w}",
                self.dit.latent_channels, self.dit.latent_height, self.dit.latent_width
            )));
        }
        if let Some(l) = &self.logic {
            l.validate()?;
            if l.z_channels != self.dit.z_channels || l.num_actions != self.dit.num_actions {
                return Err(ConfigError(
                    "logicnet z_channels/num_actions differ from the DiT's".into(),
                ));
            }
        }
        crate::world::check_parameters(
            "model",
            self.vae.parameter_estimate() + self.dit.parameter_estimate(),
        )?;
        match &self.spatial {
            Some(s) => {
                s.encoder.validate()?;
                if s.encoder.tokens() != self.dit.map_tokens
                    || s.encoder.token_dim() != self.dit.map_token_dim
                {
                    return Err(ConfigError(
                        "map encoder tokens differ from dit.map_tokens/map_token_dim".into(),
                    ));
                }
                let (top, bottom) = s.world_rows;
                if top >= bottom || bottom > self.vae.height {
                    return Err(ConfigError(format!(
                        "spatial.world_rows {top}..{bottom} outside the frame"
                    )));
                }
                check_range(
                    "spatial.link_range.x + 1",
                    s.link_range.0.max(0) as usize + 1,
                    257,
                )?;
                check_range(
                    "spatial.link_range.y + 1",
                    s.link_range.1.max(0) as usize + 1,
                    257,
                )?;
            }
            None => {
                if self.dit.map_tokens != 0 {
                    return Err(ConfigError(
                        "dit.map_tokens > 0 but no spatial module configured".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Build the model with weights that are a pure function of `seed` (see `blocks::reseed`).
    pub fn init_seeded<B: Backend>(
        &self,
        seed: u64,
        device: &B::Device,
    ) -> Result<WorldModel<B>, ConfigError> {
        // The snapping in `reseed` looks at the backend's first draws: seed them too, so the
        // result does not depend on what the process drew before (e.g. a resumed run).
        B::seed(device, seed);
        Ok(crate::world::model::blocks::reseed(
            self.init(device)?,
            seed,
        ))
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<WorldModel<B>, ConfigError> {
        self.validate()?;
        let d = &self.dit;
        let (h, w) = (d.latent_height, d.latent_width);
        // Kaiming-normal over the grid (fan-in = h*w, as PlayGen initialises its z).
        let init_z = Initializer::Normal {
            mean: 0.0,
            std: (2.0 / (h * w) as f64).sqrt(),
        }
        .init([d.z_channels, h, w], device);
        Ok(WorldModel {
            dit: d.init(device)?,
            head: VHead::new(d, device),
            init_z,
            logic: match &self.logic {
                Some(l) => Some(l.init(device)?),
                None => None,
            },
            map_encoder: match &self.spatial {
                Some(s) => Some(s.encoder.init(device)?),
                None => None,
            },
        })
    }
}

#[derive(Module, Debug)]
pub struct WorldModel<B: Backend> {
    pub dit: DitCell<B>,
    pub head: VHead<B>,
    /// The learnable initial hidden state `[z, h, w]`.
    pub init_z: Param<Tensor<B, 3>>,
    pub logic: Option<LogicNet<B>>,
    pub map_encoder: Option<MapEncoder<B>>,
}

impl<B: Backend> WorldModel<B> {
    /// The initial state for `batch` sessions.
    pub fn initial_state(&self, batch: usize) -> Tensor<B, 4> {
        let z = self.init_z.val();
        let [c, h, w] = z.dims();
        z.unsqueeze_dim::<4>(0).expand([batch, c, h, w])
    }

    /// Per-frame condition; `map_crops` `[B, 3, h, w]` are local maps in `[0, 1]`.
    pub fn condition(
        &self,
        actions: &[u32],
        digits: Option<&[[u8; 3]]>,
        map_crops: Option<Tensor<B, 4>>,
    ) -> DitCond<B> {
        let map = self.encode_map(map_crops);
        self.dit.condition(actions, digits, map)
    }

    /// The map CNN's tokens for `map_crops` (`None` without a map encoder or crops).
    pub fn encode_map(&self, map_crops: Option<Tensor<B, 4>>) -> Option<Tensor<B, 3>> {
        match (&self.map_encoder, map_crops) {
            (Some(enc), Some(crops)) => Some(enc.forward(crops)),
            _ => None,
        }
    }

    /// One DiT pass: `(z_t, v)` from `z_{t-1}` and a noisy latent at the given levels.
    pub fn pass(
        &self,
        z_prev: Tensor<B, 4>,
        x_noisy: Tensor<B, 4>,
        noise_levels: &[f32],
        cond: &DitCond<B>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let z = self.dit.forward(
            DitInput {
                z_prev,
                x_noisy: x_noisy.clone(),
                noise_levels,
            },
            cond,
        );
        let v = self.head.forward(z.clone(), x_noisy);
        (z, v)
    }

    /// [`Self::pass`] for one sample with the position embedding and the modulation computed
    /// beforehand ([`DitCell::positions`], [`DitCell::modulation`]); the same result to the bit.
    pub fn pass_modulated(
        &self,
        z_prev: Tensor<B, 4>,
        x_noisy: Tensor<B, 4>,
        positions: &Tensor<B, 3>,
        modulation: &Modulation<B>,
        cond: &DitCond<B>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let z = self
            .dit
            .forward_modulated(z_prev, x_noisy.clone(), positions, modulation, cond);
        let v = self.head.forward(z.clone(), x_noisy);
        (z, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::model::spatial::MapEncoderConfig;
    use burn::backend::NdArray;

    #[test]
    fn presets_validate_and_build() {
        let dev = Default::default();
        let tiny = WorldConfig::tiny(96, 96, 3, 1).with_spatial(SpatialConfig {
            encoder: MapEncoderConfig::tiny(76, 128, [5, 8]),
            world_rows: (20, 96),
            link_range: (10, 0),
            mask: MatchMask::All,
        });
        let m = tiny.init::<NdArray>(&dev).unwrap();
        assert_eq!(m.initial_state(2).dims(), [2, 16, 24, 24]);
        assert_eq!(tiny.dit.map_tokens, 40);
        let paper = WorldConfig::paper(128, 128, 5, 2);
        paper.validate().unwrap();
        let json = serde_json::to_string(&tiny).unwrap();
        let back: WorldConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, tiny);
        let mut bad = WorldConfig::tiny(96, 96, 3, 1);
        bad.dit.latent_height = 12;
        assert!(bad.validate().is_err());
    }
}
