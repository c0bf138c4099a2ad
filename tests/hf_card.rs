//! The shipped models as Hugging Face repositories: every card's front matter, the ByteCraft
//! export's stop tokens and sampling settings, and the card's transformers snippet, run where
//! transformers is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use gamegen_core::bytecraft::config::Qwen2Config;
use gamegen_core::bytecraft::export::{GenerationTokens, IM_END, generation_config_json};
use gamegen_core::bytecraft::sampler::SamplingConfig;
use gamegen_native::bytecraft::tokenizer::TextTokenizer;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn mini() -> PathBuf {
    repo().join("models/bytecraft-mini")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The YAML front matter of a card: the `key: value` lines between the opening and closing
/// `---`, or None when the card has none.
fn front_matter(card: &str) -> Option<Vec<(String, String)>> {
    let rest = card.strip_prefix("---\n")?;
    let end = rest.find("\n---\n")?;
    Some(
        rest[..end]
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
    )
}

#[test]
fn every_model_card_has_hugging_face_front_matter() {
    let mut cards = 0;
    for entry in std::fs::read_dir(repo().join("models")).unwrap() {
        let card_path = entry.unwrap().path().join("README.md");
        if !card_path.is_file() {
            continue;
        }
        cards += 1;
        let card = read(&card_path);
        let fields = front_matter(&card)
            .unwrap_or_else(|| panic!("{} has no front matter", card_path.display()));
        for key in ["license", "library_name", "pipeline_tag"] {
            let value = fields.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            assert!(
                value.is_some_and(|v| !v.is_empty()),
                "{}: no `{key}`",
                card_path.display()
            );
        }
    }
    assert!(cards >= 8, "only {cards} model cards found");
    let card = read(&mini().join("README.md"));
    let fields = front_matter(&card).unwrap();
    assert!(fields.contains(&("library_name".into(), "transformers".into())));
    assert!(fields.contains(&("pipeline_tag".into(), "text-generation".into())));
}

/// The shipped checkpoint's `generation_config.json` and `config.json` are what the trainer
/// writes today: byte eos and `<|im_end|>` as stop tokens, the project's sampling defaults.
#[test]
fn shipped_bytecraft_names_its_stop_tokens_and_sampling() {
    let tok = TextTokenizer::open(&mini()).unwrap();
    let tokens = GenerationTokens::from_tokens(&tok.bytes).unwrap();
    assert_eq!(tokens.im_end, Some(tok.bytes.id_of(IM_END).unwrap()));
    let config = Qwen2Config::from_json(&read(&mini().join("config.json"))).unwrap();
    assert_eq!(
        config.eos_token_id,
        Some(serde_json::Value::from(tokens.eos)),
        "config.json's eos_token_id"
    );
    assert_eq!(
        read(&mini().join("generation_config.json")),
        generation_config_json(&config, &tokens, &SamplingConfig::RECOMMENDED)
    );
}

/// The card's python block, verbatim.
fn card_snippet() -> String {
    let card = read(&mini().join("README.md"));
    let start = card
        .find("```python\n")
        .expect("the card has a python block")
        + 10;
    let len = card[start..].find("\n```").expect("the python block ends");
    card[start..start + len].to_string()
}

/// Runs the card's snippet against the shipped directory when transformers is installed; it
/// never is on CI, so without it the test says why it skipped and passes.
#[test]
fn card_snippet_generates_with_transformers() {
    let probe = Command::new("python3")
        .args(["-c", "import transformers, torch"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            let why = String::from_utf8_lossy(&o.stderr);
            let why = why.trim().lines().last().unwrap_or("");
            eprintln!("skipped: python3 cannot import transformers and torch ({why})");
            return;
        }
        Err(e) => {
            eprintln!("skipped: no python3 ({e})");
            return;
        }
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(card_snippet())
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the card's snippet failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.trim().lines().last().unwrap_or("");
    let ids: Vec<u32> = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the snippet printed {last:?}, not a list of ids: {e}"));
    let tok = TextTokenizer::open(&mini()).unwrap();
    assert!(!ids.is_empty() && ids.len() <= 64, "{} ids", ids.len());
    assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()));
}
