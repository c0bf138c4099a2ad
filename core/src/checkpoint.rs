//! Checkpoints: safetensors weights plus a serde `config.json`, as bytes.
//!
//! Core never touches the file system (it also runs in wasm), so everything here works on byte
//! buffers; the native crate writes them atomically and the browser fetches them.

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::backend::Backend;
use serde::{Serialize, de::DeserializeOwned};

/// What can go wrong when reading or writing a checkpoint. Every message names the tensor or
/// field at fault so that a user with a wrong file knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("invalid config.json: {0}")]
    Config(String),
    #[error("unreadable safetensors: {0}")]
    Format(String),
    #[error(
        "tensor `{path}` has shape {found:?} in the checkpoint but the model expects {expected:?}"
    )]
    Shape {
        path: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("tensor `{0}` is missing from the checkpoint")]
    Missing(String),
    #[error("checkpoint holds tensor `{0}` that the model does not have (wrong config?)")]
    Unused(String),
    #[error("tensor `{path}`: {message}")]
    Tensor { path: String, message: String },
    #[error("tensor `{path}` holds a non-finite value ({value}) at element {index}")]
    NonFinite {
        path: String,
        index: usize,
        value: String,
    },
}

/// Check safetensors bytes before a model is built for them: the header and every tensor's
/// extent must be readable (a truncated file fails here), and every floating-point weight must
/// be finite (a NaN or an infinity would load silently and poison every output).
pub fn check_weights(bytes: &[u8]) -> Result<(), CheckpointError> {
    use safetensors::Dtype;
    let file = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| CheckpointError::Format(e.to_string()))?;
    let mut tensors = file.tensors();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, view) in tensors {
        let data = view.data();
        let bad = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .enumerate()
                .find(|(_, v)| !v.is_finite())
                .map(|(i, v)| (i, v.to_string())),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .enumerate()
                .find(|(_, v)| !v.is_finite())
                .map(|(i, v)| (i, v.to_string())),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]))
                .enumerate()
                .find(|(_, v)| !v.is_finite())
                .map(|(i, v)| (i, v.to_string())),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]))
                .enumerate()
                .find(|(_, v)| !v.is_finite())
                .map(|(i, v)| (i, v.to_string())),
            _ => None,
        };
        if let Some((index, value)) = bad {
            return Err(CheckpointError::NonFinite { path, index, value });
        }
    }
    Ok(())
}

/// Serialise a module's parameters to safetensors bytes.
pub fn to_safetensors<B: Backend, M: Module<B> + ModuleSnapshot<B>>(
    module: &M,
) -> Result<Vec<u8>, CheckpointError> {
    let mut store = SafetensorsStore::from_bytes(None);
    module
        .save_into(&mut store)
        .map_err(|e| CheckpointError::Format(e.to_string()))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| CheckpointError::Format(e.to_string()))?;
    Ok(canonical_header(bytes))
}

/// The same safetensors bytes with the header's keys sorted at every level: the writer fills
/// its metadata from a hash map, whose order changes from process to process, and a resumed
/// training run must write the bytes an uninterrupted one writes. Bytes whose header does not
/// parse are returned unchanged.
fn canonical_header(bytes: Vec<u8>) -> Vec<u8> {
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(
                    entries.into_iter().map(|(k, v)| (k, sorted(v))).collect(),
                )
            }
            other => other,
        }
    }
    let Some(n) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
    else {
        return bytes;
    };
    let Some(header) = bytes
        .get(8..8usize.saturating_add(n))
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(h).ok())
    else {
        return bytes;
    };
    let Ok(mut text) = serde_json::to_vec(&sorted(header)) else {
        return bytes;
    };
    // The data keeps its 8-byte alignment: pad the header with spaces, as the format does.
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// Load parameters from safetensors bytes into `module`, requiring an exact match: every tensor
/// of the model present with the right shape, and nothing extra in the file.
///
/// The bytes are checked first ([`check_weights`]): a NaN or infinite weight is refused.
pub fn from_safetensors<B: Backend, M: Module<B> + ModuleSnapshot<B>>(
    module: M,
    bytes: Vec<u8>,
) -> Result<M, CheckpointError> {
    check_weights(&bytes)?;
    apply_checked(module, bytes)
}

/// [`from_safetensors`] for bytes that already passed [`check_weights`].
pub(crate) fn apply_checked<B: Backend, M: Module<B> + ModuleSnapshot<B>>(
    mut module: M,
    bytes: Vec<u8>,
) -> Result<M, CheckpointError> {
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .allow_partial(true)
        .validate(false);
    let result = module
        .load_from(&mut store)
        .map_err(|e| CheckpointError::Format(e.to_string()))?;
    if let Some(err) = result.errors.first() {
        return Err(match err {
            burn::store::ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => CheckpointError::Shape {
                path: path.clone(),
                expected: expected.to_vec(),
                found: found.to_vec(),
            },
            other => CheckpointError::Tensor {
                path: error_path(other).to_string(),
                message: other.to_string(),
            },
        });
    }
    if let Some((path, _)) = result.missing.first() {
        return Err(CheckpointError::Missing(path.clone()));
    }
    if let Some(path) = result.unused.first() {
        return Err(CheckpointError::Unused(path.clone()));
    }
    Ok(module)
}

fn error_path(err: &burn::store::ApplyError) -> &str {
    use burn::store::ApplyError::*;
    match err {
        ShapeMismatch { path, .. }
        | DTypeMismatch { path, .. }
        | AdapterError { path, .. }
        | LoadError { path, .. } => path,
    }
}

/// Serialise a config as pretty JSON (the `config.json` beside every checkpoint).
pub fn config_to_json<C: Serialize>(config: &C) -> String {
    serde_json::to_string_pretty(config).expect("configs are plain data and always serialise")
}

/// Parse a `config.json`, naming the offending field on error.
pub fn config_from_json<C: DeserializeOwned>(text: &str) -> Result<C, CheckpointError> {
    serde_json::from_str(text).map_err(|e| CheckpointError::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoencoder::FrameAutoencoderConfig;
    use burn::backend::NdArray;
    use burn::tensor::Tensor;

    type B = NdArray;

    fn small(latent: usize) -> FrameAutoencoderConfig {
        FrameAutoencoderConfig {
            image_size: 8,
            channels: [4, 4],
            latent_channels: latent,
        }
    }

    #[test]
    fn round_trip_gives_identical_outputs() {
        let dev = Default::default();
        let a = small(2).init::<B>(&dev);
        let bytes = to_safetensors(&a).unwrap();
        let b = from_safetensors(small(2).init::<B>(&dev), bytes).unwrap();
        let x = Tensor::<B, 4>::ones([1, 3, 8, 8], &dev);
        let ya = a.forward(x.clone()).into_data().into_vec::<f32>().unwrap();
        let yb = b.forward(x).into_data().into_vec::<f32>().unwrap();
        assert_eq!(ya, yb);
    }

    #[test]
    fn shape_mismatch_names_the_tensor_and_both_shapes() {
        let dev = Default::default();
        let bytes = to_safetensors(&small(2).init::<B>(&dev)).unwrap();
        let err = from_safetensors(small(3).init::<B>(&dev), bytes).unwrap_err();
        match &err {
            CheckpointError::Shape {
                path,
                expected,
                found,
            } => {
                assert!(path.contains("latent"), "{path}");
                assert_ne!(expected, found);
            }
            other => panic!("expected a shape error, got {other}"),
        }
        assert!(err.to_string().contains("expects"));
    }

    #[test]
    fn truncated_file_is_an_error_not_a_panic() {
        let dev = Default::default();
        let bytes = to_safetensors(&small(2).init::<B>(&dev)).unwrap();
        for cut in [0, 7, bytes.len() / 2, bytes.len() - 1] {
            let r = from_safetensors(small(2).init::<B>(&dev), bytes[..cut].to_vec());
            assert!(r.is_err(), "cut at {cut} loaded");
        }
    }

    #[test]
    fn bad_config_json_is_reported() {
        let r: Result<FrameAutoencoderConfig, _> = config_from_json("{\"image_size\": \"big\"}");
        assert!(matches!(r, Err(CheckpointError::Config(_))));
        let r: Result<FrameAutoencoderConfig, _> = config_from_json("{\"imagesize\": 8}");
        assert!(r.is_err(), "unknown fields must be rejected");
    }
}
