//! The frame autoencoder in the browser: load the shipped checkpoint, run it on the active
//! backend, hand the result to the page as floats and RGBA bytes.

use burn::tensor::backend::Backend;
use gamegen_core::autoencoder::{FrameAutoencoder, FrameAutoencoderConfig};
use gamegen_core::checkpoint;
use gamegen_core::data::synthetic::{planar_to_rgba, synthetic_batch};
use wasm_bindgen::prelude::*;

use crate::backend::{Active, Cpu, Gpu, active};
use crate::js_err;

enum Model {
    Gpu(Box<FrameAutoencoder<Gpu>>),
    Cpu(Box<FrameAutoencoder<Cpu>>),
}

/// A loaded frame autoencoder bound to the page's backend.
#[wasm_bindgen]
pub struct FrameAe {
    model: Model,
    size: usize,
}

fn load<B: Backend>(
    config: &FrameAutoencoderConfig,
    weights: Vec<u8>,
) -> Result<FrameAutoencoder<B>, JsValue> {
    let device = B::Device::default();
    checkpoint::from_safetensors(config.init::<B>(&device), weights).map_err(js_err)
}

async fn forward<B: Backend>(
    model: &FrameAutoencoder<B>,
    seed: u64,
    index: u64,
    count: usize,
) -> Result<Vec<f32>, JsValue> {
    let device = B::Device::default();
    let data = synthetic_batch(model.image_size(), seed, index, count);
    let y = model.forward(model.input_from_slice(data, count, &device));
    y.into_data_async()
        .await
        .map_err(|e| js_err(format!("{e:?}")))?
        .into_vec::<f32>()
        .map_err(|e| js_err(format!("{e:?}")))
}

#[wasm_bindgen]
impl FrameAe {
    /// Build from the text of `config.json` and the bytes of `model.safetensors`.
    /// `init_backend` must have been awaited first.
    #[wasm_bindgen(constructor)]
    pub fn new(config_json: &str, weights: Vec<u8>) -> Result<FrameAe, JsValue> {
        let config: FrameAutoencoderConfig =
            checkpoint::config_from_json(config_json).map_err(js_err)?;
        config.validate().map_err(js_err)?;
        let model = match active() {
            Some(Active::WebGpu { .. }) => Model::Gpu(Box::new(load::<Gpu>(&config, weights)?)),
            Some(Active::Cpu { .. }) => Model::Cpu(Box::new(load::<Cpu>(&config, weights)?)),
            None => return Err(js_err("call init_backend() before loading a model")),
        };
        Ok(FrameAe {
            model,
            size: config.image_size,
        })
    }

    #[wasm_bindgen(getter)]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Reconstruct `count` synthetic frames of stream `seed` from `index`: flat
    /// `[count, 3, size, size]` floats.
    pub async fn reconstruct(
        &self,
        seed: u32,
        index: u32,
        count: usize,
    ) -> Result<Vec<f32>, JsValue> {
        if !(1..=256).contains(&count) {
            return Err(js_err("count must be in 1..=256"));
        }
        match &self.model {
            Model::Gpu(m) => forward(m, seed as u64, index as u64, count).await,
            Model::Cpu(m) => forward(m, seed as u64, index as u64, count).await,
        }
    }

    /// The synthetic input frames themselves, as RGBA bytes stacked vertically.
    pub fn input_rgba(&self, seed: u32, index: u32, count: usize) -> Vec<u8> {
        let data = synthetic_batch(self.size, seed as u64, index as u64, count);
        planar_to_rgba(&data, count, self.size * self.size)
    }
}

/// `[count, 3, size, size]` floats to RGBA bytes, frames stacked vertically (what a canvas
/// wants).
#[wasm_bindgen(js_name = planarToRgba)]
pub fn planar_to_rgba_js(data: &[f32], count: usize, size: usize) -> Vec<u8> {
    planar_to_rgba(data, count, size * size)
}
