//! A Hugging Face Qwen2 checkpoint directory, memory-mapped.
//!
//! The weight files are mapped, not read: the kernel pages them in as each tensor is converted
//! to f32 and may drop them again, so loading the 8B ByteCraft model needs its f32 size in RAM
//! plus page cache, never two resident copies. Shards come from `model.safetensors.index.json`
//! when present, else the directory must hold `model.safetensors`.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use gamegen_core::bytecraft::hf_layout::{
    CONFIG_FILE, INDEX_FILE, IndexError, SINGLE_WEIGHTS_FILE, shard_files,
};
use gamegen_core::bytecraft::{
    ConfigError, Qwen2Config, Qwen2ForCausalLM, SafetensorsShards, WeightError,
};
use memmap2::Mmap;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}")]
    Config { path: PathBuf, source: ConfigError },
    #[error("{path}")]
    Index { path: PathBuf, source: IndexError },
    #[error("checkpoint {dir}")]
    Weights { dir: PathBuf, source: WeightError },
}

/// An opened checkpoint: parsed config plus mapped weight files.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: Qwen2Config,
    /// (file name, mapping), in shard order.
    files: Vec<(String, Mmap)>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Checkpoint {
    /// Read and validate `config.json`, then map every weight file. No tensor is decoded yet.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        let config_path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&config_path).map_err(io_error(&config_path))?;
        let config = Qwen2Config::from_json(&text).map_err(|source| CheckpointError::Config {
            path: config_path.clone(),
            source,
        })?;
        let index_path = dir.join(INDEX_FILE);
        let names = if index_path.is_file() {
            let index = std::fs::read_to_string(&index_path).map_err(io_error(&index_path))?;
            shard_files(&index).map_err(|source| CheckpointError::Index {
                path: index_path.clone(),
                source,
            })?
        } else {
            vec![SINGLE_WEIGHTS_FILE.to_string()]
        };
        let mut files = Vec::with_capacity(names.len());
        for name in names {
            let path = dir.join(&name);
            let file = std::fs::File::open(&path).map_err(io_error(&path))?;
            // SAFETY: the mapping is read-only and lives while `self` does. Like every mmap
            // reader (transformers included), we assume the checkpoint is not rewritten while
            // it is being loaded.
            let map = unsafe { Mmap::map(&file) }.map_err(io_error(&path))?;
            files.push((name, map));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            files,
        })
    }

    /// Total bytes of the mapped weight files.
    pub fn weight_bytes(&self) -> usize {
        self.files.iter().map(|(_, m)| m.len()).sum()
    }

    /// Build the model on `device`, one tensor at a time.
    pub fn load_model<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<Qwen2ForCausalLM<B>, CheckpointError> {
        let weights_error = |source| CheckpointError::Weights {
            dir: self.dir.clone(),
            source,
        };
        let source = SafetensorsShards::new(self.files.iter().map(|(n, m)| (n.clone(), &m[..])))
            .map_err(weights_error)?;
        Qwen2ForCausalLM::load(&self.config, &source, device).map_err(weights_error)
    }
}

impl Checkpoint {
    /// Load the model and unmap the files at once, so the page cache of the source can be
    /// reclaimed while the model runs.
    pub fn into_model<B: Backend>(
        self,
        device: &B::Device,
    ) -> Result<(Qwen2Config, Qwen2ForCausalLM<B>), CheckpointError> {
        let model = self.load_model(device)?;
        Ok((self.config, model))
    }
}

/// Open `dir` and load its model in one call.
pub fn load<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(Qwen2Config, Qwen2ForCausalLM<B>), CheckpointError> {
    Checkpoint::open(dir)?.into_model(device)
}
