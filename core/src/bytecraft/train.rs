//! Training a ByteCraft model: examples (prompt ids + file ids), padded batches, the masked
//! next-token loss, the learning-rate schedule and one optimiser step.
//!
//! As in the paper, the model reads the chat-rendered prompt and learns only the file: the
//! loss covers the positions whose target is a byte token (bos, the pieces, eos), never the
//! prompt. Files longer than the context are cut after their start, so the header and the first
//! tags (what decides whether a file loads at all) are always learnt.

use std::collections::HashSet;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::{AutodiffModule, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::model::Qwen2ForCausalLM;
use super::muon::Muon;
pub use crate::optim::OptimizerStateError;
use crate::optim::{
    InOrder, ReplicaRunner, load_state, read_chunks, run_replicas, save_state, sum_gradients,
    write_chunks,
};

/// One training sequence.
#[derive(Clone, Debug)]
pub struct Example<'a> {
    /// The chat-rendered prompt ending in `Bytes: `.
    pub prompt: &'a [u32],
    /// bos, the file's pieces, eos.
    pub file: &'a [u32],
}

/// Token ids `[batch, len]`, next-token targets and the loss mask, padded on the right.
#[derive(Clone, Debug, PartialEq)]
pub struct LmBatch {
    pub batch: usize,
    pub len: usize,
    pub inputs: Vec<i64>,
    pub targets: Vec<i64>,
    /// 1 where the target is a file token inside the context.
    pub mask: Vec<f32>,
    /// Sum of `mask`: the number of predicted file tokens.
    pub predicted: usize,
}

/// Positions an example takes in a batch at `context` (inputs are one shorter than the sequence).
fn positions(e: &Example<'_>, context: usize) -> usize {
    (e.prompt.len() + e.file.len())
        .min(context + 1)
        .saturating_sub(1)
}

/// Regroup one optimiser step's examples into micro-batches of similar lengths, for `replicas`
/// replicas that each take `per_replica` of them, ordered so that micro-batch `m` goes to
/// replica `m % replicas` (as [`LmTrainer::step_on`] deals them).
///
/// Why: a micro-batch is padded to its longest sequence, and the corpus mixes files of a few
/// hundred tokens with files at the context limit, so a random batch computes mostly padding.
/// Sorted by length and cut into consecutive groups, each group pads only to its own longest.
/// The groups are then dealt longest first in a snake order (replica 0, 1, ..., n-1, then n-1,
/// ..., 0), so the replicas get similar work and finish together. The loss of a step is the
/// sum over its predicted tokens divided by their count, whatever the grouping, so the update
/// is the same as for the examples in one batch, up to float rounding.
pub fn length_buckets<'a>(
    mut examples: Vec<Example<'a>>,
    context: usize,
    replicas: usize,
    per_replica: usize,
) -> Vec<Vec<Example<'a>>> {
    let replicas = replicas.max(1);
    let parts = (replicas * per_replica.max(1)).min(examples.len()).max(1);
    // Longest first; ties keep the draw order (a stable sort), so the grouping is a pure
    // function of the drawn examples.
    examples.sort_by_key(|e| std::cmp::Reverse(positions(e, context)));
    let sizes = crate::optim::even_ranges(examples.len(), parts);
    let mut groups: Vec<Vec<Example<'a>>> =
        sizes.into_iter().map(|r| examples[r].to_vec()).collect();
    // Pad the group count to a multiple of `replicas` with empty groups (dealt last, to the
    // replicas that got the least), so every round of the snake is whole.
    while !groups.len().is_multiple_of(replicas) {
        groups.push(Vec::new());
    }
    let mut dealt: Vec<Vec<Example<'a>>> = vec![Vec::new(); groups.len()];
    for (i, group) in groups.into_iter().enumerate() {
        let (round, slot) = (i / replicas, i % replicas);
        let replica = if round % 2 == 0 {
            slot
        } else {
            replicas - 1 - slot
        };
        dealt[round * replicas + replica] = group;
    }
    dealt
}

/// Pad `examples` to the longest one, each cut to `context` tokens. `pad` fills inputs and
/// targets past the end (masked out, and after every real token so causal attention never
/// lets it change a real position).
pub fn make_batch(examples: &[Example<'_>], context: usize, pad: u32) -> LmBatch {
    let seqs: Vec<Vec<u32>> = examples
        .iter()
        .map(|e| {
            let mut s = e.prompt.to_vec();
            s.extend_from_slice(e.file);
            s.truncate(context + 1);
            s
        })
        .collect();
    let len = seqs
        .iter()
        .map(|s| s.len().saturating_sub(1))
        .max()
        .unwrap_or(0)
        .max(1);
    let batch = examples.len();
    let mut inputs = vec![pad as i64; batch * len];
    let mut targets = vec![pad as i64; batch * len];
    let mut mask = vec![0.0f32; batch * len];
    let mut predicted = 0;
    for (row, (s, e)) in seqs.iter().zip(examples).enumerate() {
        for t in 0..s.len().saturating_sub(1) {
            inputs[row * len + t] = s[t] as i64;
            targets[row * len + t] = s[t + 1] as i64;
            // Target index t + 1 is a file token when it is at or past the prompt's end.
            if t + 1 >= e.prompt.len() {
                mask[row * len + t] = 1.0;
                predicted += 1;
            }
        }
    }
    LmBatch {
        batch,
        len,
        inputs,
        targets,
        mask,
        predicted,
    }
}

/// Summed cross-entropy over the masked positions (divide by `predicted` for the mean).
pub fn summed_loss<B: Backend>(
    model: &Qwen2ForCausalLM<B>,
    batch: &LmBatch,
    device: &B::Device,
) -> Tensor<B, 1> {
    let shape = [batch.batch, batch.len];
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(batch.inputs.clone(), shape), device);
    let targets = Tensor::<B, 3, Int>::from_data(
        TensorData::new(batch.targets.clone(), [batch.batch, batch.len, 1]),
        device,
    );
    let mask = Tensor::<B, 2>::from_data(TensorData::new(batch.mask.clone(), shape), device);
    let logits = model.forward(ids, &mut model.new_cache());
    let logp = log_softmax(logits, 2);
    let picked = logp.gather(2, targets).reshape(shape);
    (picked * mask).sum().neg()
}

/// Which optimiser trains the decoder layers' weight matrices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// AdamW for every parameter.
    #[default]
    AdamW,
    /// Muon for the attention and MLP matrices of the decoder layers, AdamW for the
    /// embeddings, the head, the norms and the biases.
    Muon,
}

impl OptimizerKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::AdamW => "adamw",
            Self::Muon => "muon",
        }
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "adamw" => Ok(Self::AdamW),
            "muon" => Ok(Self::Muon),
            _ => Err(format!("optimizer `{s}`: expected adamw or muon")),
        }
    }
}

/// Optimiser settings (AdamW, optionally Muon for the matrices, with warm-up and cosine
/// decay; both share the schedule, see [`super::muon`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmTrainConfig {
    pub learning_rate: f64,
    /// The cosine ends at `learning_rate * min_lr_ratio`.
    pub min_lr_ratio: f64,
    pub warmup_steps: usize,
    /// Total optimiser steps the cosine spans.
    pub total_steps: usize,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub grad_clip: Option<f32>,
    #[serde(default)]
    pub optimizer: OptimizerKind,
}

impl Default for LmTrainConfig {
    fn default() -> Self {
        Self {
            learning_rate: 2e-3,
            min_lr_ratio: 0.1,
            warmup_steps: 50,
            total_steps: 1000,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.95,
            grad_clip: Some(1.0),
            optimizer: OptimizerKind::AdamW,
        }
    }
}

impl LmTrainConfig {
    /// Linear warm-up to the peak, then a cosine down to `min_lr_ratio` of it.
    pub fn lr_at(&self, step: usize) -> f64 {
        let peak = self.learning_rate;
        if step < self.warmup_steps {
            return peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / span as f64).min(1.0);
        let floor = peak * self.min_lr_ratio;
        floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }

    fn optimizer(&self) -> AdamWConfig {
        AdamWConfig::new()
            .with_beta_1(self.beta1)
            .with_beta_2(self.beta2)
            .with_weight_decay(self.weight_decay)
            .with_grad_clipping(self.grad_clip.map(GradientClippingConfig::Norm))
    }

    fn muon<B: AutodiffBackend>(&self) -> OptimizerAdaptor<Muon, Qwen2ForCausalLM<B>, B> {
        let muon = OptimizerAdaptor::from(Muon {
            weight_decay: self.weight_decay,
            ..Muon::default()
        });
        match self.grad_clip {
            Some(c) => muon.with_grad_clipping(GradientClippingConfig::Norm(c).init()),
            None => muon,
        }
    }
}

/// The decoder layers' attention and MLP matrices: what Muon trains.
pub fn muon_parameters<B: Backend>(model: &Qwen2ForCausalLM<B>) -> HashSet<ParamId> {
    model
        .layers
        .iter()
        .flat_map(|l| {
            let (a, m) = (&l.self_attn, &l.mlp);
            [
                &a.q_proj,
                &a.k_proj,
                &a.v_proj,
                &a.o_proj,
                &m.gate_proj,
                &m.up_proj,
                &m.down_proj,
            ]
            .map(|linear| linear.weight.id)
        })
        .collect()
}

/// The model and its optimiser; `step` counts optimiser steps over all runs.
pub struct LmTrainer<B: AutodiffBackend> {
    pub model: Qwen2ForCausalLM<B>,
    pub config: LmTrainConfig,
    pub step: usize,
    /// Every parameter with AdamW, or (with Muon) all but the layer matrices.
    adamw: OptimizerAdaptor<AdamW, Qwen2ForCausalLM<B>, B>,
    muon: Option<OptimizerAdaptor<Muon, Qwen2ForCausalLM<B>, B>>,
}

/// What one optimiser step measured.
#[derive(Clone, Debug, Serialize)]
pub struct LmStepStats {
    pub step: usize,
    /// Mean cross-entropy per predicted file token (nats).
    pub loss: f64,
    pub tokens: usize,
    pub lr: f64,
}

impl<B: AutodiffBackend> LmTrainer<B> {
    pub fn new(model: Qwen2ForCausalLM<B>, config: LmTrainConfig, step: usize) -> Self {
        let adamw = config.optimizer().init();
        let muon = (config.optimizer == OptimizerKind::Muon).then(|| config.muon());
        Self {
            model,
            config,
            step,
            adamw,
            muon,
        }
    }

    /// One optimiser step over `micro` batches (gradient accumulation): the gradient is that
    /// of the mean loss over every predicted token of all of them.
    pub fn step(&mut self, micro: &[LmBatch], device: &B::Device) -> LmStepStats {
        self.step_on(micro, std::slice::from_ref(device), &InOrder)
    }

    /// [`Self::step`] data-parallel over `devices`: micro-batch `m` runs on a replica of the
    /// model on device `m % devices.len()` (the first device holds the model; the others get
    /// a copy of its weights at every step, i.e. the broadcast). Each replica's gradients are
    /// moved to the first device and summed there, which, the loss being a sum over tokens
    /// scaled by the step's token count, is the gradient of plain accumulation; then one
    /// optimiser step. `runner` runs the replicas (native runs them on their own threads, so
    /// GPUs work at the same time); the result does not depend on it.
    pub fn step_on(
        &mut self,
        micro: &[LmBatch],
        devices: &[B::Device],
        runner: &impl ReplicaRunner,
    ) -> LmStepStats {
        let tokens: usize = micro.iter().map(|b| b.predicted).sum();
        let scale = 1.0 / tokens.max(1) as f64;
        let n = devices.len().max(1);
        let shares: Vec<Vec<&LmBatch>> = (0..n)
            .map(|d| {
                micro
                    .iter()
                    .enumerate()
                    .filter(|(m, b)| m % n == d && b.predicted > 0)
                    .map(|(_, b)| b)
                    .collect()
            })
            .collect();
        let work = |model: &Qwen2ForCausalLM<B>, share: Vec<&LmBatch>, device: &B::Device| {
            let mut acc = GradientsAccumulator::<Qwen2ForCausalLM<B>>::new();
            let mut total = 0.0f64;
            for batch in share {
                let loss = summed_loss(model, batch, device).mul_scalar(scale);
                total += loss.clone().into_scalar().elem::<f64>();
                let grads = GradientsParams::from_grads(loss.backward(), model);
                acc.accumulate(model, grads);
            }
            (acc.grads(), total)
        };
        let (grads, losses): (Vec<GradientsParams>, Vec<f64>) =
            run_replicas(runner, &self.model, devices, shares, work)
                .into_iter()
                .unzip();
        let total: f64 = losses.iter().sum();
        let lr = self.config.lr_at(self.step);
        if tokens > 0 {
            let mut grads = sum_gradients(&self.model, grads);
            let model = self.model.clone();
            self.model = match &mut self.muon {
                None => self.adamw.step(lr, model, grads),
                Some(muon) => {
                    let mut matrices = GradientsParams::new();
                    for id in muon_parameters(&self.model) {
                        if let Some(g) = grads.remove::<B::InnerBackend, 2>(id) {
                            matrices.register::<B::InnerBackend, 2>(id, g);
                        }
                    }
                    let model = self.adamw.step(lr, model, grads);
                    muon.step(lr, model, matrices)
                }
            };
        }
        self.step += 1;
        LmStepStats {
            step: self.step,
            loss: total,
            tokens,
            lr,
        }
    }

    /// The optimiser's state (AdamW moments and step counts, Muon momentum), so a resumed run
    /// continues exactly; parameters are keyed by their order in the model.
    pub fn optimizer_state(&self) -> Result<Vec<u8>, OptimizerStateError> {
        let kind = self.config.optimizer.name().as_bytes().to_vec();
        let mut chunks = vec![kind, save_state(&self.adamw, &self.model)?];
        if let Some(muon) = &self.muon {
            chunks.push(save_state(muon, &self.model)?);
        }
        Ok(write_chunks(chunks.iter().map(Vec::as_slice)))
    }

    /// Restore what [`Self::optimizer_state`] saved (same optimiser, same model shape).
    pub fn load_optimizer_state(
        &mut self,
        bytes: &[u8],
        device: &B::Device,
    ) -> Result<(), OptimizerStateError> {
        let chunks = read_chunks(bytes)?;
        let wanted = self.config.optimizer.name();
        let saved = String::from_utf8_lossy(chunks.first().ok_or(OptimizerStateError::Format)?);
        if saved != wanted {
            return Err(OptimizerStateError::Kind {
                saved: saved.into_owned(),
                wanted,
            });
        }
        let expected = if self.muon.is_some() { 3 } else { 2 };
        if chunks.len() != expected {
            return Err(OptimizerStateError::Format);
        }
        let adamw = std::mem::replace(&mut self.adamw, self.config.optimizer().init());
        self.adamw = load_state(adamw, &self.model, chunks[1], device)?;
        if let Some(muon) = self.muon.take() {
            self.muon = Some(load_state(muon, &self.model, chunks[2], device)?);
        }
        Ok(())
    }

    /// Mean cross-entropy per predicted token over `batches`, without gradients.
    pub fn evaluate(
        &self,
        batches: &[LmBatch],
        device: &burn::tensor::Device<B::InnerBackend>,
    ) -> f64 {
        let model = self.model.valid();
        let (mut sum, mut n) = (0.0f64, 0usize);
        for b in batches.iter().filter(|b| b.predicted > 0) {
            sum += summed_loss(&model, b, device).into_scalar().elem::<f64>();
            n += b.predicted;
        }
        sum / n.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};

    use super::super::config::Qwen2Config;
    use super::super::init::random_weights;
    use super::*;
    use crate::optim::parameter_order;
    use crate::optim::tests::{all_weights, max_diff};

    #[test]
    fn batches_predict_file_tokens_only() {
        let (p1, f1) = ([7u32, 8, 9], [1u32, 20, 21, 2]);
        let (p2, f2) = ([7u32], [1u32, 2]);
        let b = make_batch(
            &[
                Example {
                    prompt: &p1,
                    file: &f1,
                },
                Example {
                    prompt: &p2,
                    file: &f2,
                },
            ],
            64,
            0,
        );
        assert_eq!((b.batch, b.len), (2, 6));
        assert_eq!(&b.inputs[..6], &[7, 8, 9, 1, 20, 21]);
        assert_eq!(&b.targets[..6], &[8, 9, 1, 20, 21, 2]);
        assert_eq!(&b.mask[..6], &[0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(&b.inputs[6..], &[7, 1, 0, 0, 0, 0]);
        assert_eq!(&b.mask[6..], &[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(b.predicted, 6);
        // Cut to the context: the prompt and the file's start survive.
        let cut = make_batch(
            &[Example {
                prompt: &p1,
                file: &f1,
            }],
            4,
            0,
        );
        assert_eq!(cut.inputs, vec![7, 8, 9, 1]);
        assert_eq!(cut.targets, vec![8, 9, 1, 20]);
        assert_eq!(cut.predicted, 2);
    }

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        let c = LmTrainConfig {
            learning_rate: 1.0,
            min_lr_ratio: 0.1,
            warmup_steps: 10,
            total_steps: 110,
            ..Default::default()
        };
        assert!((c.lr_at(0) - 0.1).abs() < 1e-12);
        assert!((c.lr_at(9) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(60) - 0.55).abs() < 1e-9);
        assert!((c.lr_at(110) - 0.1).abs() < 1e-12);
        assert!((c.lr_at(500) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn padding_does_not_change_the_loss_of_real_tokens() {
        type B = NdArray;
        let config = Qwen2Config::from_json(
            r#"{"vocab_size": 30, "hidden_size": 16, "intermediate_size": 24,
                "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                "rope_theta": 10000.0, "tie_word_embeddings": true}"#,
        )
        .unwrap();
        let device = Default::default();
        let model =
            Qwen2ForCausalLM::<B>::load(&config, &random_weights(&config, 1), &device).unwrap();
        let (p, f, long) = ([3u32, 4], [1u32, 9, 2], [1u32, 9, 9, 9, 9, 9, 2]);
        let alone = make_batch(
            &[Example {
                prompt: &p,
                file: &f,
            }],
            64,
            0,
        );
        let padded = make_batch(
            &[
                Example {
                    prompt: &p,
                    file: &f,
                },
                Example {
                    prompt: &p,
                    file: &long,
                },
            ],
            64,
            0,
        );
        let a: f64 = summed_loss(&model, &alone, &device).into_scalar().elem();
        let both: f64 = summed_loss(&model, &padded, &device).into_scalar().elem();
        let second = make_batch(
            &[Example {
                prompt: &p,
                file: &long,
            }],
            64,
            0,
        );
        let b: f64 = summed_loss(&model, &second, &device).into_scalar().elem();
        assert!((a + b - both).abs() < 1e-4, "{a} + {b} vs {both}");
    }

    #[test]
    fn training_memorises_a_file() {
        type B = Autodiff<NdArray>;
        let config = Qwen2Config::from_json(
            r#"{"vocab_size": 24, "hidden_size": 32, "intermediate_size": 48,
                "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "rope_theta": 10000.0, "tie_word_embeddings": true}"#,
        )
        .unwrap();
        let device = Default::default();
        let model =
            Qwen2ForCausalLM::<B>::load(&config, &random_weights(&config, 2), &device).unwrap();
        let mut t = LmTrainer::new(
            model,
            LmTrainConfig {
                learning_rate: 1e-2,
                warmup_steps: 5,
                total_steps: 60,
                ..Default::default()
            },
            0,
        );
        let (p, f) = ([3u32, 4, 5], [1u32, 10, 11, 12, 13, 14, 15, 2]);
        let batch = make_batch(
            &[Example {
                prompt: &p,
                file: &f,
            }],
            64,
            0,
        );
        let before = t.evaluate(std::slice::from_ref(&batch), &device);
        for _ in 0..60 {
            t.step(std::slice::from_ref(&batch), &device);
        }
        let after = t.evaluate(std::slice::from_ref(&batch), &device);
        assert!(before > 2.5, "{before}");
        assert!(after < 0.1, "{before} -> {after}");
        assert_eq!(t.step, 60);
    }

    fn tiny_config() -> Qwen2Config {
        Qwen2Config::from_json(
            r#"{"vocab_size": 24, "hidden_size": 32, "intermediate_size": 48,
                "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "rope_theta": 10000.0, "tie_word_embeddings": false}"#,
        )
        .unwrap()
    }

    /// Four micro-batches of different files (and lengths) for step `step`.
    fn micro_batches(step: usize) -> Vec<LmBatch> {
        let p = [3u32, 4, 5];
        (0..4)
            .map(|m| {
                let file: Vec<u32> = std::iter::once(1)
                    .chain((0..3 + m + step % 2).map(|i| 6 + ((i * 5 + m * 3 + step) % 17) as u32))
                    .chain(std::iter::once(2))
                    .collect();
                make_batch(
                    &[Example {
                        prompt: &p,
                        file: &file,
                    }],
                    64,
                    0,
                )
            })
            .collect()
    }

    fn trainer(kind: OptimizerKind, step: usize) -> LmTrainer<Autodiff<NdArray>> {
        let config = tiny_config();
        let model =
            Qwen2ForCausalLM::load(&config, &random_weights(&config, 4), &Default::default())
                .unwrap();
        LmTrainer::new(model, train_config(kind), step)
    }

    fn train_config(kind: OptimizerKind) -> LmTrainConfig {
        LmTrainConfig {
            learning_rate: 1e-2,
            warmup_steps: 2,
            total_steps: 40,
            optimizer: kind,
            ..Default::default()
        }
    }

    #[test]
    fn two_devices_give_the_update_of_one_device_with_accumulation() {
        let device = Default::default();
        for kind in [OptimizerKind::AdamW, OptimizerKind::Muon] {
            let mut one = trainer(kind, 0);
            let mut two = trainer(kind, 0);
            for step in 0..3 {
                let micro = micro_batches(step);
                let a = one.step_on(&micro, &[device], &InOrder);
                let b = two.step_on(&micro, &[device, device], &InOrder);
                assert_eq!(a.tokens, b.tokens);
                assert!((a.loss - b.loss).abs() < 1e-5, "{} vs {}", a.loss, b.loss);
            }
            let (a, b) = (all_weights(&one.model), all_weights(&two.model));
            let diff = max_diff(&a, &b);
            assert!(diff < 1e-5, "{kind:?}: max weight difference {diff}");
            // The steps did move the weights (the comparison is not between two idle models).
            let moved = max_diff(&all_weights(&trainer(kind, 0).model), &a);
            assert!(moved > 1e-3, "{moved}");
        }
    }

    /// Files of lengths 2..=9 (bos, pieces, eos) behind a 3-token prompt.
    fn files_of_many_lengths() -> Vec<Vec<u32>> {
        [5usize, 0, 7, 2, 6, 1, 4, 3]
            .iter()
            .map(|&n| {
                std::iter::once(1)
                    .chain((0..n).map(|i| 6 + (i * 7 % 17) as u32))
                    .chain(std::iter::once(2))
                    .collect()
            })
            .collect()
    }

    /// One example per file, all behind `prompt`.
    fn examples_of<'a>(prompt: &'a [u32], files: &'a [Vec<u32>]) -> Vec<Example<'a>> {
        files.iter().map(|f| Example { prompt, file: f }).collect()
    }

    #[test]
    fn length_buckets_keep_every_example_pad_less_and_balance_the_replicas() {
        let p = [3u32, 4, 5];
        let files = files_of_many_lengths();
        let examples = examples_of(&p, &files);
        let padded = |groups: &[Vec<Example<'_>>]| -> usize {
            groups
                .iter()
                .map(|g| g.len() * g.iter().map(|e| positions(e, 64)).max().unwrap_or(0))
                .sum()
        };
        let one_batch = padded(std::slice::from_ref(&examples));
        let groups = length_buckets(examples.clone(), 64, 2, 2);
        assert_eq!(groups.len(), 4);
        // Every example exactly once (files are told apart by their length).
        let mut lengths: Vec<usize> = groups.iter().flatten().map(|e| e.file.len()).collect();
        lengths.sort_unstable();
        assert_eq!(lengths, (2..=9).collect::<Vec<_>>());
        assert!(
            padded(&groups) < one_batch,
            "{} vs {one_batch}",
            padded(&groups)
        );
        // Replica r gets groups r, r + 2: the longest and the shortest pair on replica 0, the
        // two middle pairs on replica 1.
        let work = |r: usize| -> usize {
            groups
                .iter()
                .skip(r)
                .step_by(2)
                .flatten()
                .map(|e| positions(e, 64))
                .sum()
        };
        assert_eq!(groups[0].iter().map(|e| e.file.len()).max(), Some(9));
        assert_eq!(groups[2].iter().map(|e| e.file.len()).min(), Some(2));
        assert!(work(0).abs_diff(work(1)) <= 2, "{} vs {}", work(0), work(1));
        // Fewer examples than groups: none lost, and whole rounds of the deal.
        let few = length_buckets(examples[..3].to_vec(), 64, 2, 2);
        assert_eq!(few.iter().map(Vec::len).sum::<usize>(), 3);
        assert_eq!(few.len() % 2, 0);
    }

    #[test]
    fn length_buckets_give_the_update_of_one_batch() {
        let p = [3u32, 4, 5];
        let files = files_of_many_lengths();
        let examples = examples_of(&p, &files);
        let device = Default::default();
        let mut whole = trainer(OptimizerKind::AdamW, 0);
        let mut buckets = trainer(OptimizerKind::AdamW, 0);
        let a = whole.step_on(&[make_batch(&examples, 64, 0)], &[device], &InOrder);
        let micro: Vec<LmBatch> = length_buckets(examples, 64, 2, 2)
            .iter()
            .map(|g| make_batch(g, 64, 0))
            .collect();
        let b = buckets.step_on(&micro, &[device, device], &InOrder);
        assert_eq!(a.tokens, b.tokens);
        assert!((a.loss - b.loss).abs() < 1e-5, "{} vs {}", a.loss, b.loss);
        let diff = max_diff(&all_weights(&whole.model), &all_weights(&buckets.model));
        assert!(diff < 1e-5, "max weight difference {diff}");
    }

    /// A run stopped after two steps and continued in a "new process" (weights through
    /// safetensors, so new parameter ids; optimiser state through its bytes) ends bit-identical
    /// to an uninterrupted run, with AdamW and with Muon.
    #[test]
    fn saved_optimizer_state_resumes_exactly() {
        use super::super::export::export_tensors;
        use super::super::weights::SafetensorsShards;
        let device = Default::default();
        for kind in [OptimizerKind::AdamW, OptimizerKind::Muon] {
            let mut straight = trainer(kind, 0);
            for step in 0..4 {
                straight.step(&micro_batches(step), &device);
            }
            let mut first = trainer(kind, 0);
            for step in 0..2 {
                first.step(&micro_batches(step), &device);
            }
            let state = first.optimizer_state().unwrap();
            let weights = export_tensors(&first.model.valid())
                .to_safetensors()
                .unwrap();
            let shards = SafetensorsShards::new([("m".to_string(), weights.as_slice())]).unwrap();
            let model =
                Qwen2ForCausalLM::<Autodiff<NdArray>>::load(&tiny_config(), &shards, &device)
                    .unwrap();
            let mut resumed = LmTrainer::new(model, train_config(kind), 2);
            resumed.load_optimizer_state(&state, &device).unwrap();
            for step in 2..4 {
                resumed.step(&micro_batches(step), &device);
            }
            assert_eq!(
                all_weights(&resumed.model),
                all_weights(&straight.model),
                "{kind:?}"
            );
            // Without the state the moments restart and the run differs.
            let shards = SafetensorsShards::new([("m".to_string(), weights.as_slice())]).unwrap();
            let model =
                Qwen2ForCausalLM::<Autodiff<NdArray>>::load(&tiny_config(), &shards, &device)
                    .unwrap();
            let mut fresh = LmTrainer::new(model, train_config(kind), 2);
            for step in 2..4 {
                fresh.step(&micro_batches(step), &device);
            }
            assert_ne!(all_weights(&fresh.model), all_weights(&straight.model));
        }
    }

    #[test]
    fn bad_optimizer_state_is_an_error() {
        let device = Default::default();
        let mut adamw = trainer(OptimizerKind::AdamW, 0);
        adamw.step(&micro_batches(0), &device);
        let mut muon = trainer(OptimizerKind::Muon, 0);
        muon.step(&micro_batches(0), &device);
        let state = muon.optimizer_state().unwrap();
        let err = adamw.load_optimizer_state(&state, &device).unwrap_err();
        assert!(matches!(err, OptimizerStateError::Kind { .. }), "{err}");
        let err = muon
            .load_optimizer_state(&state[..state.len() - 5], &device)
            .unwrap_err();
        assert!(matches!(err, OptimizerStateError::Format), "{err}");
        let err = muon
            .load_optimizer_state(b"not a state", &device)
            .unwrap_err();
        assert!(matches!(err, OptimizerStateError::Format), "{err}");
    }

    #[test]
    fn muon_training_lowers_the_loss() {
        let device = Default::default();
        let mut t = trainer(OptimizerKind::Muon, 0);
        let batches = micro_batches(0);
        let before = t.evaluate(&batches, &device);
        for _ in 0..30 {
            t.step(&batches, &device);
        }
        let after = t.evaluate(&batches, &device);
        assert!(after < before * 0.5, "{before} -> {after}");
        // The layer matrices went to Muon, the rest to AdamW: both optimisers hold state.
        assert!(t.muon.as_ref().unwrap().to_record().len() == 2 * 7);
        assert_eq!(
            t.adamw.to_record().len(),
            parameter_order(&t.model).len() - 2 * 7
        );
    }
}
