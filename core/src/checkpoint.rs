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
    #[error("tensor `{path}` has shape {found:?} in the checkpoint but the model expects {expected:?}")]
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
}

/// Serialise a module's parameters to safetensors bytes.
pub fn to_safetensors<B: Backend, M: Module<B> + ModuleSnapshot<B>>(
    module: &M,
) -> Result<Vec<u8>, CheckpointError> {
    let mut store = SafetensorsStore::from_bytes(None);
    module
        .save_into(&mut store)
        .map_err(|e| CheckpointError::Format(e.to_string()))?;
    store
        .get_bytes()
        .map_err(|e| CheckpointError::Format(e.to_string()))
}

/// Load parameters from safetensors bytes into `module`, requiring an exact match: every tensor
/// of the model present with the right shape, and nothing extra in the file.
pub fn from_safetensors<B: Backend, M: Module<B> + ModuleSnapshot<B>>(
    mut module: M,
    bytes: Vec<u8>,
) -> Result<M, CheckpointError> {
    let mut store = SafetensorsStore::from_bytes(Some(bytes)).allow_partial(true);
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
                expected: expected.dims.to_vec(),
                found: found.dims.to_vec(),
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
