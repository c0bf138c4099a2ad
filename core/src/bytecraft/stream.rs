//! One sample generated a token at a time, with the caller reading the logits.
//!
//! [`generate`](super::generate::generate_constrained) reads each step's logits synchronously,
//! which a browser cannot do on WebGPU (its page has one thread; a GPU read is a promise). Here
//! the model's next logits are handed out as a tensor ([`SampleStream::take_logits`]); the
//! caller reads them however its backend allows (`into_data_async().await` in wasm,
//! `into_data()` natively) and gives the values back ([`SampleStream::push_logits`]), which draws
//! one token and starts the next forward pass. Between two steps the caller is free to yield to
//! its event loop, report progress, or drop the stream (cancel).
//!
//! For one seed this draws exactly the tokens `generate_constrained` draws for that seed: the
//! same prefill, the same sampler and filters, the same constraint order, the same stop rules
//! (a test holds it to that).

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::decode::{InputError, check_ids};
use super::generate::{ConstraintState, GenerationConfig, StopReason};
use super::kv_cache::KvCache;
use super::model::Qwen2ForCausalLM;
use super::sampler::sample;
use crate::rng::Rng;

/// A sample in progress.
pub struct SampleStream<B: Backend> {
    cache: KvCache<B>,
    rng: Rng,
    seed: u64,
    cfg: GenerationConfig,
    constraint: Option<Box<dyn ConstraintState>>,
    /// Candidate ids when a constraint runs without an allowed list: the whole vocabulary.
    everything: Vec<u32>,
    tokens: Vec<u32>,
    /// Logits of the next position, `[1, vocab]`, not yet read.
    pending: Option<Tensor<B, 2>>,
    stop: Option<StopReason>,
    masked: f64,
}

impl<B: Backend> SampleStream<B> {
    /// Run the prompt through the model (the prefill) and get ready to draw.
    pub fn start(
        model: &Qwen2ForCausalLM<B>,
        prompt: &[u32],
        seed: u64,
        cfg: GenerationConfig,
        constraint: Option<Box<dyn ConstraintState>>,
        device: &B::Device,
    ) -> Result<Self, InputError> {
        check_ids(prompt, model.vocab_size)?;
        let mut cache = model.new_cache();
        let (pending, stop) = if cfg.max_new == 0 {
            (None, Some(StopReason::MaxTokens))
        } else {
            let ids: Vec<i64> = prompt.iter().map(|&i| i as i64).collect();
            let input = Tensor::from_data(TensorData::new(ids, [1, prompt.len()]), device);
            (Some(model.forward_last(input, &mut cache)), None)
        };
        let everything = if cfg.allowed.is_none() && constraint.is_some() {
            (0..model.vocab_size as u32).collect()
        } else {
            Vec::new()
        };
        Ok(Self {
            cache,
            rng: Rng::new(seed),
            seed,
            cfg,
            constraint,
            everything,
            tokens: Vec::new(),
            pending,
            stop,
            masked: 0.0,
        })
    }

    /// The logits to read for the next draw; `None` once the sample has ended or while the
    /// previous logits have not been pushed back.
    pub fn take_logits(&mut self) -> Option<Tensor<B, 2>> {
        self.pending.take()
    }

    /// Draw the next token from `logits` (one vocabulary row, as read from
    /// [`take_logits`](Self::take_logits)); unless that ends the sample, start the forward pass
    /// for the position after it. Returns the token, or `None` when the sample had already
    /// ended or the constraint allowed nothing (the sample then ends as at the token limit).
    pub fn push_logits(
        &mut self,
        model: &Qwen2ForCausalLM<B>,
        logits: &[f32],
        device: &B::Device,
    ) -> Option<u32> {
        if self.stop.is_some() {
            return None;
        }
        let allowed = self.cfg.allowed.as_deref();
        let id = match &mut self.constraint {
            Some(state) => {
                let candidates = allowed.unwrap_or(&self.everything);
                let left = self.cfg.max_new.saturating_sub(self.tokens.len());
                let ok = state.filter_within(candidates, left);
                if ok.is_empty() {
                    self.stop = Some(StopReason::MaxTokens);
                    return None;
                }
                self.masked += super::generate::masked_share(logits, candidates, &ok);
                let id = sample(logits, Some(&ok), &self.cfg.sampling, &mut self.rng);
                state.advance(id);
                id
            }
            None => sample(logits, allowed, &self.cfg.sampling, &mut self.rng),
        };
        self.tokens.push(id);
        if self.cfg.stop.contains(&id) {
            self.stop = Some(StopReason::StopToken);
        } else if self.tokens.len() >= self.cfg.max_new {
            self.stop = Some(StopReason::MaxTokens);
        } else {
            let input: Tensor<B, 2, Int> =
                Tensor::from_data(TensorData::new(vec![id as i64], [1, 1]), device);
            self.pending = Some(model.forward_last(input, &mut self.cache));
        }
        Some(id)
    }

    /// One step with a synchronous read (native backends).
    pub fn step_blocking(
        &mut self,
        model: &Qwen2ForCausalLM<B>,
        device: &B::Device,
    ) -> Option<u32> {
        let logits = self.take_logits()?;
        let values = logits
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("f32 logits");
        self.push_logits(model, &values, device)
    }

    /// Tokens drawn so far.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Probability mass the constraint masked so far, summed over the draws
    /// ([`super::generate::Sample::masked_mass`]).
    pub fn masked_mass(&self) -> f64 {
        self.masked
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// How the sample ended, once it has.
    pub fn stop(&self) -> Option<StopReason> {
        self.stop
    }

    /// Positions in the model's cache (prompt plus tokens fed back).
    pub fn context_len(&self) -> usize {
        self.cache.len()
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;

    use super::super::alphabet::Alphabet;
    use super::super::byte_tokens::ByteTokens;
    use super::super::config::Qwen2Config;
    use super::super::constrained::SwfFraming;
    use super::super::generate::{Constraint, generate_constrained};
    use super::super::init::random_weights;
    use super::super::sampler::SamplingConfig;
    use super::*;

    /// Byte tokens for every single byte and the specials, ids from 4 (ids 0..4 are "text").
    fn tokens() -> (ByteTokens, usize) {
        let a = Alphabet::get();
        let mut contents: Vec<String> =
            [a.pad, a.bos, a.eos].map(|c| a.special_content(c)).to_vec();
        contents.extend((0..=255u8).map(|b| a.token_content(&[b])));
        let added: Vec<serde_json::Value> = contents
            .iter()
            .enumerate()
            .map(|(i, c)| serde_json::json!({"id": 4 + i, "content": c}))
            .collect();
        let json = serde_json::json!({ "added_tokens": added }).to_string();
        (
            ByteTokens::from_tokenizer_json(&json).unwrap(),
            4 + contents.len(),
        )
    }

    fn drain(
        model: &Qwen2ForCausalLM<NdArray>,
        prompt: &[u32],
        seed: u64,
        cfg: &GenerationConfig,
        constraint: Option<Box<dyn ConstraintState>>,
    ) -> (Vec<u32>, StopReason) {
        let device = Default::default();
        let mut s =
            SampleStream::start(model, prompt, seed, cfg.clone(), constraint, &device).unwrap();
        while s.stop().is_none() {
            s.step_blocking(model, &device);
        }
        assert!(s.take_logits().is_none());
        (s.tokens().to_vec(), s.stop().unwrap())
    }

    #[test]
    fn streaming_draws_what_batch_generation_draws() {
        let (tokens, vocab) = tokens();
        let config = Qwen2Config::from_json(&format!(
            r#"{{"vocab_size": {vocab}, "hidden_size": 16, "intermediate_size": 24,
                "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
                "rope_theta": 10000.0, "tie_word_embeddings": true}}"#
        ))
        .unwrap();
        let device = Default::default();
        let model =
            Qwen2ForCausalLM::<NdArray>::load(&config, &random_weights(&config, 9), &device)
                .unwrap();
        let eos = tokens.eos_id().unwrap();
        let framing = SwfFraming::new(&tokens, vocab);
        let prompt = [1, 2, 3, 0, 2];
        let seeds: Vec<u64> = (0..6).map(|k| 1000 + k).collect();
        for (temperature, top_p, constrained, max_new) in [
            (1.0, 1.0, false, 40),
            (0.3, 0.9, false, 60),
            (1.0, 1.0, true, 120),
            (0.0, 1.0, true, 30),
        ] {
            let cfg = GenerationConfig {
                max_new,
                sampling: SamplingConfig {
                    temperature,
                    top_p,
                    ..Default::default()
                },
                stop: vec![eos],
                allowed: Some(tokens.byte_ids().to_vec()),
            };
            let constraint = constrained.then_some(&framing as &dyn Constraint);
            let batch =
                generate_constrained(&model, &prompt, &seeds, &cfg, constraint, &device, |_| {})
                    .unwrap();
            for b in &batch {
                let state = constrained.then(|| framing.start_owned());
                let (streamed, stop) = drain(&model, &prompt, b.seed, &cfg, state);
                assert_eq!(
                    streamed, b.tokens,
                    "T {temperature}, constrained {constrained}"
                );
                assert_eq!(stop, b.stop);
            }
        }
    }

    #[test]
    fn bad_prompts_and_zero_length_are_handled() {
        let (tokens, vocab) = tokens();
        let config = Qwen2Config::from_json(&format!(
            r#"{{"vocab_size": {vocab}, "hidden_size": 8, "intermediate_size": 8,
                "num_hidden_layers": 1, "num_attention_heads": 1, "num_key_value_heads": 1,
                "tie_word_embeddings": true}}"#
        ))
        .unwrap();
        let device = Default::default();
        let model =
            Qwen2ForCausalLM::<NdArray>::load(&config, &random_weights(&config, 1), &device)
                .unwrap();
        let cfg = GenerationConfig {
            max_new: 0,
            sampling: SamplingConfig::default(),
            stop: vec![tokens.eos_id().unwrap()],
            allowed: None,
        };
        let start = |p: &[u32], cfg: &GenerationConfig| {
            SampleStream::start(&model, p, 1, cfg.clone(), None, &device)
        };
        assert!(matches!(start(&[][..], &cfg), Err(InputError::Empty)));
        assert!(matches!(
            start(&[vocab as u32][..], &cfg),
            Err(InputError::OutOfVocabulary { .. })
        ));
        let mut s = start(&[1][..], &cfg).unwrap();
        assert_eq!(s.stop(), Some(StopReason::MaxTokens));
        assert_eq!(s.step_blocking(&model, &device), None);
        assert_eq!(s.push_logits(&model, &[0.0; 4], &device), None);
    }
}
