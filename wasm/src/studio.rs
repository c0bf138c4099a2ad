//! The SWF studio in the browser: a ByteCraft checkpoint (Hugging Face Qwen2 layout, fetched by
//! the page) generating a file on the page's backend, a chunk of tokens per call, plus the
//! validation, repair and template helpers the page shows around it.
//!
//! Generation is a [`SampleStream`]: each `step(n)` call draws up to `n` tokens, reading every
//! step's logits with an awaited read (the only read WebGPU allows on the page's thread; on the
//! CPU fallback it resolves at once). The page loops over `step` and yields between calls, so it
//! stays responsive, shows progress, and cancels by simply not calling `step` again.
//! Sampling settings, stop and allowed tokens, constrained decoding and per-sample seeds are
//! those of `gamegen generate --prompt TEXT` (prompt id `p0`): with the same settings the CPU
//! fallback writes the same file as the native CLI on its default backend.

use burn::tensor::backend::Backend;
use gamegen_core::bytecraft::generate::{GenerationConfig, StopReason, sample_seed};
use gamegen_core::bytecraft::prompts::chat_text;
use gamegen_core::bytecraft::sampler::SamplingConfig;
use gamegen_core::bytecraft::{
    ByteTokens, Qwen2Config, Qwen2ForCausalLM, SafetensorsShards, SampleStream, TextBpe,
};
use gamegen_core::swf;
use gamegen_core::swf::grammar::mask::SwfGrammar;
use gamegen_core::swf::grammar::patch::patch;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::backend::{Active, Cpu, Gpu, active};
use crate::js_err;

/// The prompt id of a single prompt, as `gamegen generate --prompt` names it; part of the seed.
const PROMPT_ID: &str = "p0";
/// Largest `max_new` accepted: the model's context is 1,024 positions, the released model's
/// files reach 32K tokens; beyond that a browser tab is the wrong place.
const MAX_NEW_LIMIT: usize = 32_768;

enum Model {
    Gpu(Box<Qwen2ForCausalLM<Gpu>>),
    Cpu(Box<Qwen2ForCausalLM<Cpu>>),
}

enum Stream {
    Gpu(Box<SampleStream<Gpu>>),
    Cpu(Box<SampleStream<Cpu>>),
}

/// The option names `start` accepts (a misspelt one is an error, not silently ignored:
/// serde-wasm-bindgen reads only the fields it knows).
const OPTION_NAMES: &[&str] = &[
    "seed",
    "sample",
    "temperature",
    "topP",
    "minP",
    "topK",
    "maxNew",
    "constrained",
    "system",
];

/// Generation settings from the page; names and defaults follow `gamegen generate`.
#[derive(Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Options {
    seed: u64,
    sample: usize,
    temperature: f32,
    top_p: f32,
    min_p: f32,
    top_k: usize,
    max_new: usize,
    constrained: bool,
    system: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        let sampling = SamplingConfig::RECOMMENDED;
        Self {
            seed: 0,
            sample: 0,
            temperature: sampling.temperature,
            top_p: sampling.top_p,
            min_p: sampling.min_p,
            top_k: sampling.top_k,
            max_new: 1500,
            constrained: false,
            system: None,
        }
    }
}

/// What the page learns when a generation starts.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Started {
    prompt_tokens: usize,
    sample_seed: String,
    max_new: usize,
}

/// The generated file so far.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    #[serde(with = "serde_bytes_as_array")]
    bytes: Vec<u8>,
    /// The eos byte token closed the file.
    complete: bool,
    tokens: usize,
    /// `stop_token`, `max_tokens`, or `running` while the sample is still going.
    stop: &'static str,
    /// Constrained decoding patched the finished file's lengths and frame counts.
    patched: bool,
    /// Probability mass the constraint masked, mean per drawn token (0 unconstrained).
    masked_mass: f64,
}

/// `Vec<u8>` as a `Uint8Array` (serde-wasm-bindgen's default would be a plain array of
/// numbers).
mod serde_bytes_as_array {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(js_err)
}

fn load<B: Backend>(
    config: &Qwen2Config,
    weights: &[u8],
) -> Result<Box<Qwen2ForCausalLM<B>>, JsValue> {
    let device = B::Device::default();
    let source = SafetensorsShards::new([("model.safetensors".to_string(), weights)])
        .map_err(|e| js_err(format!("model.safetensors: {e}")))?;
    Qwen2ForCausalLM::load(config, &source, &device)
        .map(Box::new)
        .map_err(|e| js_err(format!("model.safetensors: {e}")))
}

async fn run_steps<B: Backend>(
    model: &Qwen2ForCausalLM<B>,
    stream: &mut SampleStream<B>,
    max_tokens: u32,
) -> Result<u32, JsValue> {
    let device = B::Device::default();
    let mut drawn = 0;
    while drawn < max_tokens {
        let Some(logits) = stream.take_logits() else {
            break;
        };
        let values = logits
            .into_data_async()
            .await
            .map_err(|e| js_err(format!("reading logits: {e:?}")))?
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| js_err(format!("reading logits: {e:?}")))?;
        if stream.push_logits(model, &values, &device).is_none() {
            break;
        }
        drawn += 1;
    }
    Ok(drawn)
}

/// A ByteCraft model loaded on the page's backend, generating one file at a time.
#[wasm_bindgen]
pub struct Studio {
    model: Model,
    config: Qwen2Config,
    bytes: ByteTokens,
    text: TextBpe,
    grammar: SwfGrammar,
    constrained: bool,
    stream: Option<Stream>,
}

#[wasm_bindgen]
impl Studio {
    /// Build from the text of `config.json` and `tokenizer.json` and the bytes of
    /// `model.safetensors`. `init_backend` must have been awaited first.
    #[wasm_bindgen(constructor)]
    pub fn new(config_json: &str, weights: &[u8], tokenizer_json: &str) -> Result<Studio, JsValue> {
        let config =
            Qwen2Config::from_json(config_json).map_err(|e| js_err(format!("config.json: {e}")))?;
        let bytes = ByteTokens::from_tokenizer_json(tokenizer_json)
            .map_err(|e| js_err(format!("tokenizer.json: {e}")))?;
        let text = TextBpe::from_tokenizer_json(tokenizer_json)
            .map_err(|e| js_err(format!("tokenizer.json: {e}")))?;
        if let Some(&id) = bytes.byte_ids().last()
            && id as usize >= config.vocab_size
        {
            return Err(js_err(format!(
                "tokenizer.json has byte token id {id}, beyond the model's vocabulary of {}",
                config.vocab_size
            )));
        }
        bytes
            .eos_id()
            .map_err(|e| js_err(format!("tokenizer.json: {e}")))?;
        let model = match active() {
            Some(Active::WebGpu { .. }) => Model::Gpu(load::<Gpu>(&config, weights)?),
            Some(Active::Cpu { .. }) => Model::Cpu(load::<Cpu>(&config, weights)?),
            None => return Err(js_err("call init_backend() before loading a model")),
        };
        let grammar = SwfGrammar::new(&bytes, config.vocab_size);
        Ok(Studio {
            model,
            config,
            bytes,
            text,
            grammar,
            constrained: false,
            stream: None,
        })
    }

    /// Model facts for the page: vocabulary, layers, hidden size, parameters, byte tokens.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        let c = &self.config;
        let params = match &self.model {
            Model::Gpu(m) => burn::module::Module::num_params(m.as_ref()),
            Model::Cpu(m) => burn::module::Module::num_params(m.as_ref()),
        };
        to_js(&serde_json::json!({
            "vocabSize": c.vocab_size,
            "layers": c.num_hidden_layers,
            "hidden": c.hidden_size,
            "heads": c.num_attention_heads,
            "kvHeads": c.kv_heads(),
            "contextLength": c.max_position_embeddings,
            "parameters": params,
            "byteTokens": self.bytes.byte_ids().len(),
        }))
    }

    /// Token ids of the full model input for `user` (ChatML with the system prompt, then
    /// `Bytes: `), as `gamegen generate` encodes it.
    #[wasm_bindgen(js_name = encodePrompt)]
    pub fn encode_prompt(&self, user: &str, system: Option<String>) -> Vec<u32> {
        self.text.encode(&chat_text(user, system.as_deref()))
    }

    /// Start a new sample for `prompt` (any previous one is dropped) and run the prompt through
    /// the model. `options`: `{seed, sample, temperature, topP, minP, topK, maxNew,
    /// constrained, system}`, all optional, defaults as `gamegen generate`'s except `maxNew`
    /// (1500). Resolves to `{promptTokens, sampleSeed, maxNew}`.
    pub fn start(&mut self, prompt: &str, options: JsValue) -> Result<JsValue, JsValue> {
        self.stream = None;
        if prompt.trim().is_empty() {
            return Err(js_err("the prompt is empty"));
        }
        let o: Options = if options.is_undefined() || options.is_null() {
            Options::default()
        } else {
            let object: &js_sys::Object = options
                .dyn_ref()
                .ok_or_else(|| js_err("options must be an object"))?;
            for key in js_sys::Object::keys(object).iter() {
                let key = key.as_string().unwrap_or_default();
                if !OPTION_NAMES.contains(&key.as_str()) {
                    return Err(js_err(format!(
                        "options: unknown option `{key}` (known: {})",
                        OPTION_NAMES.join(", ")
                    )));
                }
            }
            serde_wasm_bindgen::from_value(options).map_err(|e| js_err(format!("options: {e}")))?
        };
        if !(1..=MAX_NEW_LIMIT).contains(&o.max_new) {
            return Err(js_err(format!("maxNew must be in 1..={MAX_NEW_LIMIT}")));
        }
        let sampling = SamplingConfig {
            temperature: o.temperature,
            top_p: o.top_p,
            min_p: o.min_p,
            top_k: o.top_k,
        };
        sampling.validate().map_err(js_err)?;
        let eos = self.bytes.eos_id().map_err(js_err)?;
        let cfg = GenerationConfig {
            max_new: o.max_new,
            sampling,
            stop: vec![eos],
            allowed: Some(self.bytes.byte_ids().to_vec()),
        };
        let ids = self.text.encode(&chat_text(prompt, o.system.as_deref()));
        let seed = sample_seed(o.seed, PROMPT_ID, o.sample);
        if o.constrained && o.max_new < SwfGrammar::min_tokens() {
            return Err(js_err(format!(
                "constrained decoding needs maxNew >= {} (the shortest finished file)",
                SwfGrammar::min_tokens()
            )));
        }
        self.constrained = o.constrained;
        let constraint = o.constrained.then(|| self.grammar.start_owned());
        let stream = match &self.model {
            Model::Gpu(m) => Stream::Gpu(Box::new(
                SampleStream::start(m, &ids, seed, cfg, constraint, &Default::default())
                    .map_err(js_err)?,
            )),
            Model::Cpu(m) => Stream::Cpu(Box::new(
                SampleStream::start(m, &ids, seed, cfg, constraint, &Default::default())
                    .map_err(js_err)?,
            )),
        };
        self.stream = Some(stream);
        to_js(&Started {
            prompt_tokens: ids.len(),
            // u64 does not fit a JS number exactly: shown as text.
            sample_seed: seed.to_string(),
            max_new: o.max_new,
        })
    }

    /// Draw up to `max_tokens` more tokens; resolves to how many were drawn (fewer, possibly 0,
    /// once the sample ends). Await each call before the next one.
    pub async fn step(&mut self, max_tokens: u32) -> Result<u32, JsValue> {
        match (&self.model, &mut self.stream) {
            (_, None) => Err(js_err("no generation running: call start() first")),
            (Model::Gpu(m), Some(Stream::Gpu(s))) => run_steps(m, s, max_tokens).await,
            (Model::Cpu(m), Some(Stream::Cpu(s))) => run_steps(m, s, max_tokens).await,
            _ => Err(js_err("model and generation are on different backends")),
        }
    }

    /// The sample has ended (eos drawn or the token limit reached).
    #[wasm_bindgen(getter)]
    pub fn done(&self) -> bool {
        self.stop().is_some()
    }

    /// Tokens drawn so far in the current sample.
    #[wasm_bindgen(getter)]
    pub fn tokens(&self) -> usize {
        self.drawn().len()
    }

    /// Drop the current sample (cancel); read `output()` first to keep what was drawn.
    pub fn cancel(&mut self) {
        self.stream = None;
    }

    /// The file decoded from the tokens drawn so far: `{bytes, complete, tokens, stop}`.
    pub fn output(&self) -> Result<JsValue, JsValue> {
        if self.stream.is_none() {
            return Err(js_err("no generation: call start() first"));
        }
        let tokens = self.drawn();
        let file = self.bytes.decode(tokens).map_err(js_err)?;
        let stop = match self.stop() {
            None => "running",
            Some(StopReason::StopToken) => "stop_token",
            Some(StopReason::MaxTokens) => "max_tokens",
        };
        // A finished constrained file gets its lengths and frame counts from its content.
        let patched = (self.constrained && file.complete)
            .then(|| patch(&file.bytes).ok())
            .flatten();
        let masked = match &self.stream {
            Some(Stream::Gpu(s)) => s.masked_mass(),
            Some(Stream::Cpu(s)) => s.masked_mass(),
            None => 0.0,
        };
        let out = Output {
            patched: patched.is_some(),
            bytes: patched.unwrap_or(file.bytes),
            complete: file.complete,
            tokens: tokens.len(),
            stop,
            masked_mass: masked / tokens.len().max(1) as f64,
        };
        out.serialize(&serde_wasm_bindgen::Serializer::new())
            .map_err(js_err)
    }
}

impl Studio {
    fn drawn(&self) -> &[u32] {
        match &self.stream {
            None => &[],
            Some(Stream::Gpu(s)) => s.tokens(),
            Some(Stream::Cpu(s)) => s.tokens(),
        }
    }

    fn stop(&self) -> Option<StopReason> {
        match &self.stream {
            None => None,
            Some(Stream::Gpu(s)) => s.stop(),
            Some(Stream::Cpu(s)) => s.stop(),
        }
    }
}

/// Validate any bytes as a SWF file (levels 1 and 2, as `gamegen validate`): the report as a
/// plain object `{verdict, level_reached, first_error, findings, header, tags, stats, ...}`.
#[wasm_bindgen(js_name = validateSwf)]
pub fn validate_swf(bytes: &[u8]) -> Result<JsValue, JsValue> {
    to_js(&swf::validate(bytes))
}

/// Fix the length field and frame count (`gamegen repair`): `{bytes, changes}`; throws when the
/// header does not parse.
#[wasm_bindgen(js_name = repairSwf)]
pub fn repair_swf(bytes: &[u8]) -> Result<JsValue, JsValue> {
    #[derive(Serialize)]
    struct Repaired {
        #[serde(with = "serde_bytes_as_array")]
        bytes: Vec<u8>,
        changes: Vec<String>,
    }
    let r = swf::repair::repair(bytes, swf::Options::default().max_body_len).map_err(js_err)?;
    Repaired {
        bytes: r.bytes,
        changes: r.changes,
    }
    .serialize(&serde_wasm_bindgen::Serializer::new())
    .map_err(js_err)
}

/// Prompt templates: the structured prompt and the paraphrases of synthetic corpus files
/// `index .. index + count` of `seed` (`gamegen corpus synth --seed SEED`), with the facts they
/// were built from (so the page can say what a faithful file would show).
#[wasm_bindgen(js_name = templatePrompts)]
pub fn template_prompts(seed: u32, index: u32, count: u32) -> Result<JsValue, JsValue> {
    if count > 256 {
        return Err(js_err("count must be at most 256"));
    }
    let list: Vec<serde_json::Value> = (index..index.saturating_add(count))
        .map(|i| {
            let s = swf::synth::synthesize(u64::from(seed), u64::from(i));
            let a = &s.record.attributes;
            serde_json::json!({
                "name": s.record.name,
                "index": i,
                "title": a.title,
                "kind": a.kind,
                "prompt": s.record.prompt,
                "paraphrases": s.record.paraphrases,
                "width": a.width,
                "height": a.height,
                "frameRate": a.frame_rate,
                "background": format!("#{:02x}{:02x}{:02x}",
                    a.background[0], a.background[1], a.background[2]),
                "bytes": s.record.bytes,
            })
        })
        .collect();
    to_js(&list)
}

/// The synthetic file a template's prompt was written from (the "reference answer").
#[wasm_bindgen(js_name = templateFile)]
pub fn template_file(seed: u32, index: u32) -> Vec<u8> {
    swf::synth::synthesize(u64::from(seed), u64::from(index)).bytes
}
