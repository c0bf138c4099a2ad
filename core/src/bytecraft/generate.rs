//! Batched sampling with continuous batching: a queue of samples (any prompts) runs through a
//! fixed number of cache rows ("slots"); when a sample ends, its slot is refilled from the
//! queue at once, so the batch never shrinks while work remains.
//!
//! Each prompt is run alone once (its prefill is kept while samples of it are still queued)
//! and copied into the slots that sample it; then every step feeds each slot's newest token at
//! that slot's own position ([`SlotKvCache`]: per-row lengths, right padding, a mask per row).
//! Each sample draws from its own seeded stream and its row computes the same numbers as it
//! would alone, so a sample's tokens do not depend on what else is in the batch (the tests
//! check byte-identical outputs for several batch sizes).

use std::collections::HashMap;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::decode::{InputError, check_ids};
use super::kv_cache::KvCache;
use super::model::Qwen2ForCausalLM;
use super::sampler::{SamplingConfig, sample};
use super::slot_cache::SlotKvCache;
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
    /// Probability mass the constraint took away, summed over the draws: at each draw, the
    /// share (at temperature 1) of the candidates' probability on tokens the constraint
    /// refused. 0 without a constraint.
    pub masked_mass: f64,
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
    /// [`filter`](Self::filter) for a draw that has `tokens_left` tokens of budget, itself
    /// included: a constraint that must finish something (a file's End tag) keeps room for it.
    fn filter_within(&self, candidates: &[u32], tokens_left: usize) -> Vec<u32> {
        let _ = tokens_left;
        self.filter(candidates)
    }
    /// Record that `id` was drawn.
    fn advance(&mut self, id: u32);
}

/// The share of the softmax (temperature 1) over `candidates` that falls outside `kept` (a
/// subset of them, in the same order): the probability mass a constraint masked at one draw.
pub fn masked_share(logits: &[f32], candidates: &[u32], kept: &[u32]) -> f64 {
    let get = |i: u32| logits.get(i as usize).copied().unwrap_or(f32::NEG_INFINITY);
    let max = candidates
        .iter()
        .map(|&i| get(i))
        .filter(|l| !l.is_nan())
        .fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return 0.0;
    }
    let weight = |i: u32| {
        let l = get(i);
        if l.is_nan() {
            0.0
        } else {
            f64::from(l - max).exp()
        }
    };
    let all: f64 = candidates.iter().map(|&i| weight(i)).sum();
    let ok: f64 = kept.iter().map(|&i| weight(i)).sum();
    if all > 0.0 {
        (1.0 - ok / all).max(0.0)
    } else {
        0.0
    }
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

/// One sample to draw: an index into the prompt list and the sample's own seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    pub prompt: usize,
    pub seed: u64,
}

/// Why a queue stopped early.
#[derive(Debug, thiserror::Error)]
pub enum QueueError<E> {
    #[error("prompt {index}")]
    Input {
        index: usize,
        #[source]
        source: InputError,
    },
    /// The `on_done` callback failed (e.g. writing the sample's file).
    #[error("{0}")]
    Sink(E),
}

/// Positions preallocated per slot beyond the longest prompt before the cache first grows.
const INITIAL_ROOM: usize = 256;

/// A continuous-batching sampler over one model.
pub struct Batcher<'a, B: Backend> {
    pub model: &'a Qwen2ForCausalLM<B>,
    pub cfg: &'a GenerationConfig,
    /// Extra restriction of every draw (constrained decoding), after `cfg.allowed`.
    pub constraint: Option<&'a dyn Constraint>,
    /// Sequences in flight (cache rows).
    pub slots: usize,
    pub device: &'a B::Device,
}

/// A prompt run once, kept while samples of it remain queued.
struct Prefill<B: Backend> {
    cache: KvCache<B>,
    logits: Vec<f32>,
    remaining: usize,
}

/// One sample in a slot: its stream, what it drew, and the logits of its next draw.
struct Running<'c> {
    job: usize,
    seed: u64,
    rng: Rng,
    tokens: Vec<u32>,
    state: Option<Box<dyn ConstraintState + 'c>>,
    logits: Vec<f32>,
    masked: f64,
}

impl Running<'_> {
    /// Draw the next token; `Some` when the sample ended (a stop token, the limit, or a
    /// constraint that allows nothing, which ends it as if it hit the limit).
    fn draw(
        &mut self,
        cfg: &GenerationConfig,
        candidates: &[u32],
        allowed: Option<&[u32]>,
    ) -> Option<StopReason> {
        let id = match &mut self.state {
            Some(state) => {
                let left = cfg.max_new.saturating_sub(self.tokens.len());
                let ok = state.filter_within(candidates, left);
                if ok.is_empty() {
                    return Some(StopReason::MaxTokens);
                }
                self.masked += masked_share(&self.logits, candidates, &ok);
                let id = sample(&self.logits, Some(&ok), &cfg.sampling, &mut self.rng);
                state.advance(id);
                id
            }
            None => sample(&self.logits, allowed, &cfg.sampling, &mut self.rng),
        };
        self.tokens.push(id);
        if cfg.stop.contains(&id) {
            Some(StopReason::StopToken)
        } else if self.tokens.len() >= cfg.max_new {
            Some(StopReason::MaxTokens)
        } else {
            None
        }
    }

    fn finish(self, stop: StopReason) -> (usize, Sample) {
        (
            self.job,
            Sample {
                seed: self.seed,
                tokens: self.tokens,
                stop,
                masked_mass: self.masked,
            },
        )
    }
}

fn f32_rows<B: Backend>(logits: Tensor<B, 2>) -> Vec<f32> {
    logits
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32 logits")
}

impl<B: Backend> Batcher<'_, B> {
    /// Run `ids` alone; its cache and last logits serve the `samples` jobs of the prompt.
    fn prefill(&self, ids: &[u32], samples: usize) -> Prefill<B> {
        let mut cache = self.model.new_cache();
        let input: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        let logits = self.model.forward_last(
            Tensor::<B, 2, Int>::from_data(TensorData::new(input, [1, ids.len()]), self.device),
            &mut cache,
        );
        Prefill {
            cache,
            logits: f32_rows(logits),
            remaining: samples,
        }
    }

    /// Draw every job. `on_step(n)` reports the tokens drawn in a step; `on_done(job, sample)`
    /// receives each sample as soon as it ends (so a caller can save it at once); its error
    /// stops the run.
    pub fn run<E>(
        &self,
        prompts: &[Vec<u32>],
        jobs: &[Job],
        mut on_step: impl FnMut(usize),
        mut on_done: impl FnMut(usize, Sample) -> Result<(), E>,
    ) -> Result<(), QueueError<E>> {
        let (model, cfg) = (self.model, self.cfg);
        let mut remaining: HashMap<usize, usize> = HashMap::new();
        for job in jobs {
            let prompt = prompts.get(job.prompt).ok_or(QueueError::Input {
                index: job.prompt,
                source: InputError::Empty,
            })?;
            check_ids(prompt, model.vocab_size).map_err(|source| QueueError::Input {
                index: job.prompt,
                source,
            })?;
            *remaining.entry(job.prompt).or_default() += 1;
        }
        if cfg.max_new == 0 {
            for (j, job) in jobs.iter().enumerate() {
                let sample = Sample {
                    seed: job.seed,
                    tokens: vec![],
                    stop: StopReason::MaxTokens,
                    masked_mass: 0.0,
                };
                on_done(j, sample).map_err(QueueError::Sink)?;
            }
            return Ok(());
        }
        let allowed = cfg.allowed.as_deref();
        let everything: Vec<u32>;
        let candidates: &[u32] = match (allowed, self.constraint) {
            (Some(a), _) => a,
            (None, Some(_)) => {
                everything = (0..model.vocab_size as u32).collect();
                &everything
            }
            (None, None) => &[],
        };
        let longest = remaining
            .keys()
            .map(|&p| prompts[p].len())
            .max()
            .unwrap_or(1);
        let slots = self.slots.max(1).min(jobs.len().max(1));
        let mut cache: SlotKvCache<B> = model.new_slot_cache(
            slots,
            longest + cfg.max_new.min(INITIAL_ROOM),
            longest + cfg.max_new,
            self.device,
        );
        let mut prefills: HashMap<usize, Prefill<B>> = HashMap::new();
        let mut rows: Vec<Option<Running<'_>>> = (0..slots).map(|_| None).collect();
        let mut next_job = 0;
        loop {
            let mut drawn = 0;
            // Rows fed in the last step draw their next token; finished ones free their slot.
            for row in rows.iter_mut() {
                let Some(run) = row.as_mut() else { continue };
                let stop = run.draw(cfg, candidates, allowed);
                drawn += 1;
                if let Some(stop) = stop {
                    let (j, sample) = row.take().expect("running").finish(stop);
                    on_done(j, sample).map_err(QueueError::Sink)?;
                }
            }
            // Free slots take queued jobs (prompt run once, first token drawn) until they hold
            // a sample that goes on.
            for (r, row) in rows.iter_mut().enumerate() {
                while row.is_none() && next_job < jobs.len() {
                    let j = next_job;
                    next_job += 1;
                    let job = jobs[j];
                    let prefill = prefills.entry(job.prompt).or_insert_with(|| {
                        self.prefill(&prompts[job.prompt], remaining[&job.prompt])
                    });
                    let mut run = Running {
                        job: j,
                        seed: job.seed,
                        rng: Rng::new(job.seed),
                        tokens: Vec::new(),
                        state: self.constraint.map(|c| c.start()),
                        logits: prefill.logits.clone(),
                        masked: 0.0,
                    };
                    let stop = run.draw(cfg, candidates, allowed);
                    drawn += 1;
                    match stop {
                        Some(stop) => {
                            let (j, sample) = run.finish(stop);
                            on_done(j, sample).map_err(QueueError::Sink)?;
                        }
                        None => {
                            cache.fill_row(r, &prefill.cache);
                            *row = Some(run);
                        }
                    }
                    prefill.remaining -= 1;
                    if prefill.remaining == 0 {
                        prefills.remove(&job.prompt);
                    }
                }
            }
            if drawn > 0 {
                on_step(drawn);
            }
            // Only once the queue is empty can slots stay free: drop them from the batch.
            if rows.iter().any(Option::is_none) {
                let keep: Vec<usize> = (0..rows.len()).filter(|&r| rows[r].is_some()).collect();
                if keep.is_empty() {
                    break;
                }
                cache.retain_rows(&keep);
                rows = keep.iter().map(|&r| rows[r].take()).collect();
            }
            let next: Vec<i64> = rows
                .iter()
                .map(|r| *r.as_ref().expect("kept").tokens.last().expect("drew") as i64)
                .collect();
            let n = next.len();
            cache.reserve(1);
            let logits = model.forward_last(
                Tensor::<B, 2, Int>::from_data(TensorData::new(next, [n, 1]), self.device),
                &mut cache,
            );
            let flat = f32_rows(logits);
            for (row, chunk) in rows.iter_mut().zip(flat.chunks(model.vocab_size)) {
                row.as_mut().expect("kept").logits = chunk.to_vec();
            }
        }
        Ok(())
    }
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
/// constraint allows nothing ends as if it hit the token limit. All seeds run together (one
/// slot each).
pub fn generate_constrained<B: Backend>(
    model: &Qwen2ForCausalLM<B>,
    prompt: &[u32],
    seeds: &[u64],
    cfg: &GenerationConfig,
    constraint: Option<&dyn Constraint>,
    device: &B::Device,
    on_step: impl FnMut(usize),
) -> Result<Vec<Sample>, InputError> {
    check_ids(prompt, model.vocab_size)?;
    let jobs: Vec<Job> = seeds.iter().map(|&seed| Job { prompt: 0, seed }).collect();
    let mut out: Vec<Option<Sample>> = vec![None; jobs.len()];
    let batcher = Batcher {
        model,
        cfg,
        constraint,
        slots: seeds.len(),
        device,
    };
    let done = batcher.run(&[prompt.to_vec()], &jobs, on_step, |j, sample| {
        out[j] = Some(sample);
        Ok::<(), std::convert::Infallible>(())
    });
    match done {
        Ok(()) => Ok(out
            .into_iter()
            .map(|s| s.expect("every job ends"))
            .collect()),
        Err(QueueError::Input { source, .. }) => Err(source),
        Err(QueueError::Sink(never)) => match never {},
    }
}
