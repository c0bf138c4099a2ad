//! Whole-sequence helpers over a loaded model: logits of every position and greedy decoding.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::model::Qwen2ForCausalLM;

/// Bad token input for a model.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("the id list is empty")]
    Empty,
    #[error("token id {id} is outside the vocabulary (size {vocab})")]
    OutOfVocabulary { id: u32, vocab: usize },
}

/// Check ids against the vocabulary before they reach the embedding lookup.
pub fn check_ids(ids: &[u32], vocab: usize) -> Result<(), InputError> {
    if ids.is_empty() {
        return Err(InputError::Empty);
    }
    match ids.iter().find(|&&id| id as usize >= vocab) {
        Some(&id) => Err(InputError::OutOfVocabulary { id, vocab }),
        None => Ok(()),
    }
}

fn id_tensor<B: Backend>(ids: &[u32], device: &B::Device) -> Tensor<B, 2, Int> {
    let values: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(values, [1, ids.len()]), device)
}

/// One row of vocabulary-size logits per input position (a single sequence, no cache reuse).
pub fn logits<B: Backend>(
    model: &Qwen2ForCausalLM<B>,
    ids: &[u32],
    device: &B::Device,
) -> Result<Vec<Vec<f32>>, InputError> {
    check_ids(ids, model.vocab_size)?;
    let mut cache = model.new_cache();
    let out = model.forward(id_tensor::<B>(ids, device), &mut cache);
    let values = out
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32 data after convert");
    Ok(values
        .chunks(model.vocab_size)
        .map(<[f32]>::to_vec)
        .collect())
}

/// Greedy continuation: `max_new` new ids, argmax at every step, no stop token. The prompt is
/// run once, then one token per step through the KV cache.
pub fn greedy<B: Backend>(
    model: &Qwen2ForCausalLM<B>,
    ids: &[u32],
    max_new: usize,
    device: &B::Device,
) -> Result<Vec<u32>, InputError> {
    check_ids(ids, model.vocab_size)?;
    let mut cache = model.new_cache();
    let mut out = Vec::with_capacity(max_new);
    let mut input = id_tensor::<B>(ids, device);
    for _ in 0..max_new {
        let logits = model.forward_last(input, &mut cache);
        let next = logits
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .expect("i64 data after convert")[0] as u32;
        out.push(next);
        input = id_tensor::<B>(&[next], device);
    }
    Ok(out)
}
