//! Stage three: LogicNet fitted on the hidden states it reads when the game is played.
//!
//! During diffusion forcing (stage two) LogicNet learns from `z_{t-1}` produced by passes over
//! *noisy* latents, each frame at its own noise level. When the game is played, `z_{t-1}` is
//! always the state of the final DDIM pass over a *clean* latent (noise level 0). The two
//! distributions differ, and a classifier trained on one fires at the wrong times on the other
//! (measured on the shipped Traveler model: the score rose about four times as often as the real
//! game's). This stage freezes the dynamics model, replays recorded episodes through the
//! level-0 pass exactly as [`WorldSession`](super::WorldSession) does (first frame with "no
//! previous action", then each recorded action and the recorded score digits), and trains
//! LogicNet alone on the resulting `(z_{t-1}, a_t) -> events_t` pairs.

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};

use crate::metrics::FMeasure;
use crate::optim::{OptimizerStateError, load_state, save_state};
use crate::world::model::logicnet::{LogicNet, event_loss};
use crate::world::model::{WorldConfig, WorldModel};
use crate::world::record::score_digits;

/// Hidden states after every frame of `b` equally long episodes replayed at noise level 0.
///
/// `latents` `[b, t, c, h, w]` are the clean (encoded) frames; `actions[i * t + k]` is the
/// action that produced frame `k` of episode `i` (frame 0 is always conditioned on "no previous
/// action", as at reset); `scores` (same layout) the score shown in each frame, fed as digit
/// tokens when the model has a record; `local_maps` `[b, t, 3, h, w]` the map crops a session
/// shows before each frame (with a spatial module). Returns `[b, t, z, h, w]`: entry `k` is the state after
/// frame `k`, i.e. what LogicNet reads to predict the events of frame `k + 1`.
pub fn clean_states<B: Backend>(
    model: &WorldModel<B>,
    config: &WorldConfig,
    latents: Tensor<B, 5>,
    actions: &[u32],
    scores: Option<&[u32]>,
    local_maps: Option<Tensor<B, 5>>,
) -> Tensor<B, 5> {
    let [b, t, c, h, w] = latents.dims();
    let no_action = config.dit.no_action();
    let mut z = model.initial_state(b);
    let mut states = Vec::with_capacity(t);
    for k in 0..t {
        let x0: Tensor<B, 4> = latents.clone().narrow(1, k, 1).reshape([b, c, h, w]);
        let acts: Vec<u32> = (0..b)
            .map(|i| {
                if k == 0 {
                    no_action
                } else {
                    actions[i * t + k]
                }
            })
            .collect();
        let digits: Option<Vec<[u8; 3]>> = match (&config.record, scores) {
            (Some(_), Some(s)) => Some((0..b).map(|i| score_digits(s[i * t + k])).collect()),
            _ => None,
        };
        let crops = local_maps.as_ref().map(|m| {
            let [_, _, mc, mh, mw] = m.dims();
            m.clone().narrow(1, k, 1).reshape([b, mc, mh, mw])
        });
        let cond = model.condition(&acts, digits.as_deref(), crops);
        let (z_new, _) = model.pass(z, x0, &vec![0.0; b], &cond);
        let [_, zc, zh, zw] = z_new.dims();
        states.push(z_new.clone().reshape([b, 1, zc, zh, zw]));
        z = z_new;
    }
    Tensor::cat(states, 1)
}

/// Event predictions at `threshold` against the recorded events, every event bit counted:
/// `probs` is `[n * num_events]` row-major, `events` one bit set per row.
pub fn event_fmeasure(probs: &[f32], events: &[u8], num_events: usize, threshold: f32) -> FMeasure {
    let mut f = FMeasure::default();
    for (row, &bits) in probs.chunks(num_events).zip(events) {
        for (i, &p) in row.iter().enumerate() {
            f.add(p >= threshold, (bits >> i) & 1 == 1);
        }
    }
    f
}

/// AdamW on LogicNet alone.
pub struct LogicTrainer<B: AutodiffBackend> {
    pub net: LogicNet<B>,
    pub learning_rate: f64,
    pub step: usize,
    weight_decay: f32,
    optim: OptimizerAdaptor<AdamW, LogicNet<B>, B>,
}

impl<B: AutodiffBackend> LogicTrainer<B> {
    pub fn new(net: LogicNet<B>, learning_rate: f64, weight_decay: f32) -> Self {
        let optim = AdamWConfig::new().with_weight_decay(weight_decay).init();
        Self {
            net,
            learning_rate,
            step: 0,
            weight_decay,
            optim,
        }
    }

    /// One step on states `z_prev` `[n, z, h, w]`, the actions taken from them and the event
    /// bits those actions fired. Returns the mean binary cross-entropy before the update.
    pub fn step(
        &mut self,
        z_prev: Tensor<B::InnerBackend, 4>,
        actions: &[u32],
        events: &[u8],
    ) -> f32 {
        let logits = self.net.forward(Tensor::from_inner(z_prev), actions);
        let loss = event_loss(logits, events);
        let value: f32 = loss.clone().into_scalar().elem();
        let grads = GradientsParams::from_grads(loss.backward(), &self.net);
        self.net = self.optim.step(self.learning_rate, self.net.clone(), grads);
        self.step += 1;
        value
    }

    /// The AdamW state (moments, step counts), for a resume that continues exactly.
    pub fn optimizer_state(&self) -> Result<Vec<u8>, OptimizerStateError> {
        save_state(&self.optim, &self.net)
    }

    /// Restore what [`Self::optimizer_state`] saved for a LogicNet of this shape.
    pub fn load_optimizer_state(
        &mut self,
        bytes: &[u8],
        device: &B::Device,
    ) -> Result<(), OptimizerStateError> {
        let fresh = self.optimizer_config().init();
        let optim = std::mem::replace(&mut self.optim, fresh);
        self.optim = load_state(optim, &self.net, bytes, device)?;
        Ok(())
    }

    fn optimizer_config(&self) -> AdamWConfig {
        AdamWConfig::new().with_weight_decay(self.weight_decay)
    }

    /// Mean cross-entropy and event F-measure counts at `threshold` on held-out pairs, without
    /// training.
    pub fn evaluate(
        &self,
        z_prev: Tensor<B::InnerBackend, 4>,
        actions: &[u32],
        events: &[u8],
        threshold: f32,
    ) -> (f32, FMeasure) {
        let net = self.net.valid();
        let logits = net.forward(z_prev, actions);
        let [_, e] = logits.dims();
        let loss: f32 = event_loss(logits.clone(), events).into_scalar().elem();
        let probs: Vec<f32> = burn::tensor::activation::sigmoid(logits)
            .into_data()
            .convert::<f32>()
            .into_vec()
            .unwrap_or_default();
        (loss, event_fmeasure(&probs, events, e, threshold))
    }
}

/// `[n, z, h, w]` rows `rows` of a `[N, z, h, w]` state bank, as one tensor.
pub fn gather_states<B: Backend>(bank: &Tensor<B, 4>, rows: &[usize]) -> Tensor<B, 4> {
    let ids: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    let idx = Tensor::<B, 1, burn::tensor::Int>::from_data(
        TensorData::new(ids, [rows.len()]),
        &bank.device(),
    );
    bank.clone().select(0, idx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::LogicNetConfig;
    use burn::backend::{Autodiff, NdArray};

    type Ad = Autodiff<NdArray>;

    #[test]
    fn clean_states_match_the_inference_reset_and_steps() {
        // The state after frame 0 must be what `WorldSession::reset` computes, and after frame
        // k what a level-0 pass from the previous state computes.
        let dev = Default::default();
        let cfg = WorldConfig::tiny(32, 32, 3, 1);
        let model = cfg.init_seeded::<NdArray>(3, &dev).unwrap();
        let [c, h, w] = cfg.vae.latent_shape();
        let lat = Tensor::<NdArray, 5>::random(
            [2, 3, c, h, w],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &dev,
        );
        let actions = vec![9, 2, 1, 9, 0, 2];
        let scores = vec![0, 1, 1, 4, 4, 5];
        let states = clean_states(&model, &cfg, lat.clone(), &actions, Some(&scores), None);
        assert_eq!(states.dims()[..2], [2, 3]);

        let x = |i: usize, k: usize| {
            lat.clone()
                .narrow(0, i, 1)
                .narrow(1, k, 1)
                .reshape([1, c, h, w])
        };
        let z = |i: usize, k: usize| {
            let [_, _, zc, zh, zw] = states.dims();
            states
                .clone()
                .narrow(0, i, 1)
                .narrow(1, k, 1)
                .reshape([1, zc, zh, zw])
        };
        let cond0 = model.condition(&[cfg.dit.no_action()], Some(&[score_digits(4)]), None);
        let (z0, _) = model.pass(model.initial_state(1), x(1, 0), &[0.0], &cond0);
        z0.into_data()
            .assert_approx_eq::<f32>(&z(1, 0).into_data(), Default::default());
        let cond2 = model.condition(&[2], Some(&[score_digits(5)]), None);
        let (z2, _) = model.pass(z(1, 1), x(1, 2), &[0.0], &cond2);
        z2.into_data()
            .assert_approx_eq::<f32>(&z(1, 2).into_data(), Default::default());
    }

    #[test]
    fn trainer_learns_an_action_rule_and_counts_it() {
        // Events fire exactly when the action is 2: the trainer must find that from states
        // that carry no information, and the counts must say so.
        let dev = Default::default();
        let net = LogicNetConfig::tiny(4, 3, 1).init::<Ad>(&dev).unwrap();
        let mut tr = LogicTrainer::new(net, 3e-3, 0.0);
        let z = Tensor::<NdArray, 4>::zeros([12, 4, 8, 8], &dev);
        let actions: Vec<u32> = (0..12).map(|i| i % 3).collect();
        let events: Vec<u8> = actions.iter().map(|&a| u8::from(a == 2)).collect();
        let first = tr.step(z.clone(), &actions, &events);
        let mut last = first;
        for _ in 0..150 {
            last = tr.step(z.clone(), &actions, &events);
        }
        assert!(last < first * 0.2, "loss {first} -> {last}");
        let (_, counts) = tr.evaluate(z, &actions, &events, 0.5);
        assert_eq!(counts.true_positives, 4);
        assert_eq!(counts.false_positives + counts.false_negatives, 0);
        assert_eq!(counts.f1(), Some(1.0));
    }

    #[test]
    fn counts_and_f1() {
        let c = event_fmeasure(&[0.9, 0.1, 0.6, 0.2], &[1, 1, 0, 0], 1, 0.5);
        assert_eq!(
            c,
            FMeasure {
                true_positives: 1,
                false_positives: 1,
                false_negatives: 1,
            }
        );
        // Two event bits per row: bit 1 of the second row is the only one set.
        let two = event_fmeasure(&[0.1, 0.2, 0.3, 0.8], &[0, 2], 2, 0.5);
        assert_eq!(two.f1(), Some(1.0));
        assert_eq!(c.f1(), Some(0.5));
        assert_eq!(FMeasure::default().f1(), None);
    }
}
