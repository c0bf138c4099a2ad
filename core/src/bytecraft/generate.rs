//! Batched sampling of several continuations of one prompt with a shared KV cache.
//!
//! The prompt is run once (batch 1), its cache is repeated to one row per sample, then every
//! step feeds the batch's newest tokens; a sample that emits a stop token or reaches the token
//! limit leaves the batch (its cache rows are dropped), so the batch shrinks as samples finish.
//! Each sample draws from its own seeded stream: the same seed gives the same tokens whatever
//! else is in the batch.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::decode::{InputError, check_ids};
use super::model::Qwen2ForCausalLM;
use super::sampler::{SamplingConfig, sample};
use crate::rng::{Rng, derive_seed};

/// How a sample ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A stop token was drawn (it is the last token of the sample).
    StopToken,
    /// `max_new` tokens were drawn without a stop token.
    MaxTokens,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationConfig {
    pub max_new: usize,
    pub sampling: SamplingConfig,
    /// Ids that end a sample (the eos byte token for ByteCraft).
    pub stop: Vec<u32>,
    /// Ids that may be drawn (the byte tokens for ByteCraft); `None` = the whole vocabulary.
    pub allowed: Option<Vec<u32>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub seed: u64,
    pub tokens: Vec<u32>,
    pub stop: StopReason,
}

/// Restricts what a sample may draw next, given what it drew so far (constrained decoding).
pub trait Constraint {
    /// The state of a fresh sample.
    fn start(&self) -> Box<dyn ConstraintState + '_>;
}

/// One sample's position in a [`Constraint`].
pub trait ConstraintState {
    /// The ids of `candidates` that may come next.
    fn filter(&self, candidates: &[u32]) -> Vec<u32>;
    /// Record that `id` was drawn.
    fn advance(&mut self, id: u32);
}

/// FNV-1a: a stable hash of a prompt id for seeding.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// The seed of sample `k` of prompt `prompt_id` in a run seeded `run_seed`: `gamegen generate`
/// and the browser studio both use it, so the same (seed, prompt id, sample) gives the same
/// file in both (on the same backend arithmetic).
pub fn sample_seed(run_seed: u64, prompt_id: &str, k: usize) -> u64 {
    derive_seed(derive_seed(run_seed, fnv1a(prompt_id)), k as u64)
}

fn column<B: Backend>(ids: &[u32], device: &B::Device) -> Tensor<B, 2, Int> {
    let v: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(v, [ids.len(), 1]), device)
}

/// Sample one continuation per seed. `on_step(tokens_drawn_this_step)` reports progress.
pub fn generate<B: Backend>(
    model: &Qwen2ForCausalLM<B>,
    prompt: &[u32],
    seeds: &[u64],
    cfg: &GenerationConfig,
    device: &B::Device,
    on_step: impl FnMut(usize),
) -> Result<Vec<Sample>, InputError> {
    generate_constrained(model, prompt, seeds, cfg, None, device, on_step)
}

/// [`generate`] with every draw restricted by `constraint` (after `cfg.allowed`). A sample whose
/// constraint allows nothing ends as if it hit the token limit.
pub fn generate_constrained<B: Backend>(
    model: &Qwen2ForCausalLM<B>,
    prompt: &[u32],
    seeds: &[u64],
    cfg: &GenerationConfig,
    constraint: Option<&dyn Constraint>,
    device: &B::Device,
    mut on_step: impl FnMut(usize),
) -> Result<Vec<Sample>, InputError> {
    check_ids(prompt, model.vocab_size)?;
    let n = seeds.len();
    let mut rngs: Vec<Rng> = seeds.iter().map(|&s| Rng::new(s)).collect();
    let mut tokens: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut stops: Vec<Option<StopReason>> = vec![None; n];
    if n == 0 || cfg.max_new == 0 {
        return Ok(seeds
            .iter()
            .map(|&seed| Sample {
                seed,
                tokens: vec![],
                stop: StopReason::MaxTokens,
            })
            .collect());
    }
    let mut cache = model.new_cache();
    let ids: Vec<i64> = prompt.iter().map(|&i| i as i64).collect();
    let first = model.forward_last(
        Tensor::from_data(TensorData::new(ids, [1, prompt.len()]), device),
        &mut cache,
    );
    let first = first
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32 logits");
    cache.repeat_rows(n);
    // Rows of the running batch -> sample index.
    let mut active: Vec<usize> = (0..n).collect();
    let mut rows: Vec<Vec<f32>> = vec![first; 1];
    let allowed = cfg.allowed.as_deref();
    let everything: Vec<u32>;
    let candidates: &[u32] = match (allowed, constraint) {
        (Some(a), _) => a,
        (None, Some(_)) => {
            everything = (0..model.vocab_size as u32).collect();
            &everything
        }
        (None, None) => &[],
    };
    let mut states: Vec<Option<Box<dyn ConstraintState + '_>>> =
        (0..n).map(|_| constraint.map(|c| c.start())).collect();
    loop {
        let mut next = Vec::with_capacity(active.len());
        let mut keep = Vec::with_capacity(active.len());
        for (row, &s) in active.iter().enumerate() {
            let logits = if rows.len() == 1 {
                &rows[0]
            } else {
                &rows[row]
            };
            let id = match &mut states[s] {
                Some(state) => {
                    let ok = state.filter(candidates);
                    if ok.is_empty() {
                        stops[s] = Some(StopReason::MaxTokens);
                        continue;
                    }
                    let id = sample(logits, Some(&ok), &cfg.sampling, &mut rngs[s]);
                    state.advance(id);
                    id
                }
                None => sample(logits, allowed, &cfg.sampling, &mut rngs[s]),
            };
            tokens[s].push(id);
            if cfg.stop.contains(&id) {
                stops[s] = Some(StopReason::StopToken);
            } else if tokens[s].len() >= cfg.max_new {
                stops[s] = Some(StopReason::MaxTokens);
            } else {
                keep.push(row);
                next.push(id);
            }
        }
        on_step(active.len());
        if keep.is_empty() {
            break;
        }
        if keep.len() != active.len() {
            cache.retain_rows(&keep);
            active = keep.iter().map(|&r| active[r]).collect();
        }
        let logits = model.forward_last(column::<B>(&next, device), &mut cache);
        let flat = logits
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("f32 logits");
        rows = flat.chunks(model.vocab_size).map(<[f32]>::to_vec).collect();
    }
    Ok(seeds
        .iter()
        .zip(tokens)
        .zip(stops)
        .map(|((&seed, tokens), stop)| Sample {
            seed,
            tokens,
            stop: stop.unwrap_or(StopReason::MaxTokens),
        })
        .collect())
}
