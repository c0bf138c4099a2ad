//! File names of a Hugging Face checkpoint directory and the shard index format.
//!
//! Pure text handling, so both native (memory-mapped files) and wasm (fetched buffers) resolve
//! shards the same way.

use std::collections::BTreeSet;

use serde::Deserialize;

pub const CONFIG_FILE: &str = "config.json";
pub const SINGLE_WEIGHTS_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";
/// transformers' `generate` settings (stop tokens, sampling); written by our trainer.
pub const GENERATION_CONFIG_FILE: &str = "generation_config.json";

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{INDEX_FILE} is not valid JSON with a `weight_map`: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "{INDEX_FILE} names shard `{0}`, which is not a plain file name in the checkpoint directory"
    )]
    BadShardName(String),
    #[error("{INDEX_FILE} lists no tensors")]
    Empty,
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: std::collections::HashMap<String, String>,
}

/// The distinct shard file names an index refers to, sorted. Names that could escape the
/// checkpoint directory (separators, `..`) are refused.
pub fn shard_files(index_json: &str) -> Result<Vec<String>, IndexError> {
    let index: ShardIndex = serde_json::from_str(index_json)?;
    if index.weight_map.is_empty() {
        return Err(IndexError::Empty);
    }
    let files: BTreeSet<String> = index.weight_map.into_values().collect();
    for f in &files {
        if f.is_empty() || f.contains('/') || f.contains('\\') || f == ".." || f == "." {
            return Err(IndexError::BadShardName(f.clone()));
        }
    }
    Ok(files.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_each_shard_once_and_refuses_paths() {
        let text = r#"{"metadata": {"total_size": 1}, "weight_map": {
            "a": "model-00002-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
            "c": "model-00001-of-00002.safetensors"}}"#;
        assert_eq!(
            shard_files(text).unwrap(),
            vec![
                "model-00001-of-00002.safetensors".to_string(),
                "model-00002-of-00002.safetensors".to_string()
            ]
        );
        let evil = r#"{"weight_map": {"a": "../secret.safetensors"}}"#;
        assert!(matches!(
            shard_files(evil),
            Err(IndexError::BadShardName(_))
        ));
        assert!(matches!(shard_files("{}"), Err(IndexError::Json(_))));
    }
}
