//! Prompts as the reference builds them: structured or free-text descriptions, wrapped in
//! Qwen's ChatML with its default system prompt, followed by the literal `Bytes: ` after which
//! the model emits the bos byte token. Prompt files hold several prompts separated by lines
//! holding only `Ŧ`; JSON Lines prompt files are read by [`super::manifest`].

use serde::{Deserialize, Serialize};

/// Qwen2.5's default system prompt, used by the reference script.
pub const DEFAULT_SYSTEM_PROMPT: &str =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
/// Appended after the generation prompt; the model continues with the bytes.
pub const BYTES_SUFFIX: &str = "Bytes: ";
/// A line holding only this separates prompts in a prompt file.
pub const PROMPT_SEPARATOR: &str = "Ŧ";

/// What the file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Animation,
    Game,
}

/// The structured prompt of the paper's Figure 3 (left). Optional lines are left out when
/// absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StructuredPrompt {
    pub kind: Kind,
    #[serde(default)]
    pub frame_rate: Option<f64>,
    /// `(width, height)` in pixels.
    #[serde(default)]
    pub resolution: Option<(u32, u32)>,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub release_date: Option<String>,
    /// Size in kilobytes.
    #[serde(default)]
    pub size_kb: Option<u32>,
    #[serde(default)]
    pub description: Option<String>,
}

impl StructuredPrompt {
    /// The user message text.
    pub fn render(&self) -> String {
        let what = match self.kind {
            Kind::Animation => "an animation",
            Kind::Game => "a video game",
        };
        let mut s = format!("Please generate {what} with the following specifications:");
        if let Some(fps) = self.frame_rate {
            s += &format!("\n- Frame rate: {fps:?}");
        }
        if let Some((w, h)) = self.resolution {
            s += &format!("\n- Resolution: {w}x{h}");
        }
        if !self.languages.is_empty() {
            s += &format!("\n- Language(s): {}", self.languages.join(", "));
        }
        if let Some(title) = &self.title {
            s += &format!("\n- Title: {title}");
        }
        if let Some(date) = &self.release_date {
            s += &format!("\n- Release Date: {date}");
        }
        if let Some(kb) = self.size_kb {
            s += &format!("\n- Size: {kb}KB");
        }
        if let Some(d) = &self.description {
            s += &format!("\n- Description: {d}");
        }
        s
    }
}

/// One prompt to generate from.
#[derive(Clone, Debug, PartialEq)]
pub struct Prompt {
    /// Stable id used in outputs (`results.jsonl`, file names).
    pub id: String,
    /// The user message.
    pub text: String,
}

/// The full model input text: ChatML system + user turns, the assistant generation prompt,
/// then `Bytes: ` (Qwen2.5's chat template for one user message, as the reference renders it).
pub fn chat_text(user: &str, system: Option<&str>) -> String {
    let system = system.unwrap_or(DEFAULT_SYSTEM_PROMPT);
    format!(
        "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{BYTES_SUFFIX}"
    )
}

/// Split a prompt file on lines holding only `Ŧ` (surrounding whitespace ignored); blank
/// prompts are skipped; ids are `p0`, `p1`, ... in file order. A file of blank prompts gives
/// none.
pub fn parse_prompt_file(text: &str) -> Vec<Prompt> {
    let mut prompts = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut flush = |lines: &mut Vec<&str>| {
        let body = lines.join("\n").trim().to_string();
        lines.clear();
        if !body.is_empty() {
            let id = format!("p{}", prompts.len());
            prompts.push(Prompt { id, text: body });
        }
    };
    for line in text.lines() {
        if line.trim() == PROMPT_SEPARATOR {
            flush(&mut current);
        } else {
            current.push(line);
        }
    }
    flush(&mut current);
    prompts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_prompt_matches_the_papers_example() {
        let p = StructuredPrompt {
            kind: Kind::Animation,
            frame_rate: Some(24.0),
            resolution: Some((500, 400)),
            languages: vec!["English".into(), "Japanese".into()],
            title: Some("Bulletproof".into()),
            release_date: None,
            size_kb: Some(42),
            description: Some("This is an animation of stick figures shooting".into()),
        };
        assert_eq!(
            p.render(),
            "Please generate an animation with the following specifications:\n\
             - Frame rate: 24.0\n- Resolution: 500x400\n- Language(s): English, Japanese\n\
             - Title: Bulletproof\n- Size: 42KB\n\
             - Description: This is an animation of stick figures shooting"
        );
        let game = StructuredPrompt {
            kind: Kind::Game,
            release_date: Some("2011".into()),
            ..p
        };
        assert!(
            game.render()
                .starts_with("Please generate a video game with")
        );
        assert!(game.render().contains("\n- Release Date: 2011\n"));
    }

    #[test]
    fn chat_text_is_chatml_with_the_bytes_suffix() {
        assert_eq!(
            chat_text("make pong", None),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful \
             assistant.<|im_end|>\n<|im_start|>user\nmake pong<|im_end|>\n\
             <|im_start|>assistant\nBytes: "
        );
    }

    #[test]
    fn prompt_files_split_on_lines_holding_only_the_prefix() {
        let text = "first line\nsecond line\nŦ\n\n  Ŧ  \nunstructured: 日本語のゲーム\nŦ\n";
        let prompts = parse_prompt_file(text);
        assert_eq!(prompts.len(), 2);
        assert_eq!(prompts[0].text, "first line\nsecond line");
        assert_eq!(
            prompts[1],
            Prompt {
                id: "p1".into(),
                text: "unstructured: 日本語のゲーム".into()
            }
        );
        // A Ŧ inside a line is text, not a separator.
        assert_eq!(parse_prompt_file("aŦb\n")[0].text, "aŦb");
        assert!(parse_prompt_file("Ŧ\n \n").is_empty());
    }
}
