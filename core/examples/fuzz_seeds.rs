//! Writes the generated seed inputs of the fuzz targets (docs/reliability.md, "Fuzzing")
//! with the project's real writers: tiny episode shards as `gamegen collect` writes them and
//! tiny ByteCraft checkpoints (config.json, NUL, model.safetensors) as training exports them.
//!
//! `cargo run -p gamegen-core --example fuzz_seeds -- fuzz/corpus`

use std::path::{Path, PathBuf};

use gamegen_core::bytecraft::Qwen2Config;
use gamegen_core::bytecraft::export::hf_config_json;
use gamegen_core::bytecraft::init::random_weights;
use gamegen_core::data::collect::{CollectConfig, play_episode};
use gamegen_core::data::shard;
use gamegen_core::games::GameKind;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create the corpus directory");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
    eprintln!("{} ({} bytes)", dir.join(name).display(), bytes.len());
}

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );

    let shards = out.join("episode_shard");
    for (game, frames) in [
        (GameKind::Traveler, 3),
        (GameKind::Pong, 2),
        (GameKind::Pacman, 2),
        (GameKind::Pong, 1),
    ] {
        let mut cfg = CollectConfig::new(game, 1, 7);
        cfg.frames = frames;
        let ep = play_episode(&cfg, None, 0).expect("play an episode");
        let name = format!("{}-{frames}.{}", game.name(), shard::EXTENSION);
        write(&shards, &name, &shard::encode(&ep, cfg.level));
    }

    let checkpoints = out.join("checkpoint_load");
    for (name, text) in [
        (
            "tied-mha",
            r#"{"vocab_size": 6, "hidden_size": 4, "intermediate_size": 6,
                "num_hidden_layers": 1, "num_attention_heads": 2,
                "tie_word_embeddings": true, "rope_theta": 10000.0}"#,
        ),
        (
            "untied-gqa",
            r#"{"vocab_size": 5, "hidden_size": 8, "intermediate_size": 4,
                "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "tie_word_embeddings": false,
                "rope_parameters": {"rope_theta": 50000.0, "rope_type": "default"}}"#,
        ),
    ] {
        let config = Qwen2Config::from_json(text).expect("seed config");
        let weights = random_weights(&config, 1)
            .to_safetensors()
            .expect("serialise");
        let mut bytes = hf_config_json(&config).into_bytes();
        bytes.push(0);
        bytes.extend_from_slice(&weights);
        write(&checkpoints, name, &bytes);
    }
}
