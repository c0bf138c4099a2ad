//! Loading a ByteCraft checkpoint from bytes, as native (memory-mapped files) and the browser
//! (fetched buffers) both do through core: `config.json` (validated before anything is
//! allocated), the shard index, the safetensors header and every tensor's f32 decoding, and
//! finally building the Qwen2 model on the CPU backend, which checks every tensor's name and
//! shape against the config.
//!
//! Input: the `config.json` text, a NUL byte, then the `model.safetensors` bytes (without a
//! NUL the whole input is tried as each of the three). Nothing may panic or allocate beyond
//! what the input's own tensors hold.

#![no_main]

use burn::backend::NdArray;
use gamegen_core::bytecraft::hf_layout::shard_files;
use gamegen_core::bytecraft::weights::decode_f32;
use gamegen_core::bytecraft::{Qwen2Config, Qwen2ForCausalLM, SafetensorsShards, TensorSource};
use libfuzzer_sys::fuzz_target;

fn tensors(weights: &[u8]) -> Option<SafetensorsShards<'_>> {
    let shards = SafetensorsShards::new([("model.safetensors".to_string(), weights)]).ok()?;
    let names: Vec<String> = shards.names().map(str::to_string).collect();
    for name in &names {
        if let Ok(Some(raw)) = shards.tensor(name)
            && let Ok(values) = decode_f32(name, &raw)
        {
            assert_eq!(values.len(), raw.shape.iter().product::<usize>());
        }
    }
    Some(shards)
}

fuzz_target!(|data: &[u8]| {
    let (config, weights) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    let config = std::str::from_utf8(config).ok();
    if let Some(text) = config {
        let _ = shard_files(text);
    }
    let config = config.and_then(|t| Qwen2Config::from_json(t).ok());
    if let Some(c) = &config {
        // A config that validates has consistent, bounded sizes.
        assert!(c.parameter_count() > 0);
        assert_eq!(c.num_attention_heads % c.kv_heads(), 0);
        assert_eq!(c.head_dim() % 2, 0);
    }
    let Some(shards) = tensors(weights) else {
        return;
    };
    if let Some(c) = config {
        let device = Default::default();
        let _ = Qwen2ForCausalLM::<NdArray>::load(&c, &shards, &device);
    }
});
