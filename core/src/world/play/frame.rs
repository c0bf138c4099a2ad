//! Frames between the game's bytes and the model's tensors: RGB8 <-> `[1, 3, h, w]` in `[0, 1]`.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::SessionError;
use crate::world::model::spatial::crops_to_tensor;

/// RGB8 interleaved `h x w` frame -> `[1, 3, h, w]` in `[0, 1]`.
pub fn rgb8_to_tensor<B: Backend>(
    rgb: &[u8],
    h: usize,
    w: usize,
    device: &B::Device,
) -> Tensor<B, 4> {
    crops_to_tensor(&[rgb.to_vec()], h, w, device)
}

/// `[1, 3, h, w]` in `[0, 1]` -> RGB8 interleaved.
pub fn tensor_to_rgb8<B: Backend>(frame: Tensor<B, 4>) -> Vec<u8> {
    let [_, _, h, w] = frame.dims();
    planar_to_rgb8(&read_f32(frame.into_data()), h, w)
}

/// [`tensor_to_rgb8`] with an awaited read (WebGPU in the browser).
pub async fn tensor_to_rgb8_async<B: Backend>(
    frame: Tensor<B, 4>,
) -> Result<Vec<u8>, SessionError> {
    let [_, _, h, w] = frame.dims();
    let data = frame
        .into_data_async()
        .await
        .map_err(|e| SessionError::Read(format!("{e:?}")))?;
    Ok(planar_to_rgb8(&read_f32(data), h, w))
}

/// Planar `3 x h x w` floats in `[0, 1]` -> RGB8 interleaved (values outside are clamped).
pub fn planar_to_rgb8(data: &[f32], h: usize, w: usize) -> Vec<u8> {
    let mut out = vec![0u8; h * w * 3];
    for c in 0..3 {
        for i in 0..h * w {
            let v = data.get(c * h * w + i).copied().unwrap_or(0.0);
            out[3 * i + c] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    out
}

/// Float data of any float dtype as f32 (the conversion cannot fail for float tensors); f32
/// data is taken as it is, without a copy.
pub fn read_f32(data: TensorData) -> Vec<f32> {
    data.convert::<f32>().into_vec().unwrap_or_default()
}
