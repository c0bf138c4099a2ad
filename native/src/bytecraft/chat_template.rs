//! A checkpoint's own Jinja chat template (`tokenizer_config.json` → `chat_template`), rendered
//! with minijinja the way transformers' `apply_chat_template` renders it.
//!
//! transformers compiles the template in a sandboxed Jinja environment with `trim_blocks` and
//! `lstrip_blocks` on, a `tojson` filter that is Python's `json.dumps` (`", "` / `": "`
//! separators, non-ASCII kept), a `raise_exception(message)` function and the loop controls,
//! and renders it with `messages`, `add_generation_prompt`, `tools` (none here) and the
//! special tokens of the tokenizer config (`bos_token`, `eos_token`, ...). This module sets up
//! the same environment; Python string methods (`.strip()`, `.startswith()`, ...) that newer
//! templates call come from minijinja-contrib's pycompat layer. `strftime_now` is not provided:
//! templates that use it test `is defined` first.

use std::collections::BTreeMap;

use minijinja::value::{Kwargs, Serde, Value};
use minijinja::{Environment, Error, ErrorKind};
use serde::Serialize;

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// The special tokens transformers passes to the template.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    pub pad_token: Option<String>,
    pub unk_token: Option<String>,
}

impl SpecialTokens {
    /// From `tokenizer_config.json`: each token is a string or an added-token object with a
    /// `content` field.
    pub fn from_config(config: &serde_json::Value) -> Self {
        let get = |key: &str| match config.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
            _ => None,
        };
        Self {
            bos_token: get("bos_token"),
            eos_token: get("eos_token"),
            pad_token: get("pad_token"),
            unk_token: get("unk_token"),
        }
    }
}

/// `chat_template` of a tokenizer config: a string, or a list of `{name, template}` of which
/// transformers uses `default`.
pub fn template_from_config(config: &serde_json::Value) -> Result<Option<String>, String> {
    match config.get("chat_template") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
            .and_then(|t| t.get("template")?.as_str().map(str::to_string))
            .map(Some)
            .ok_or_else(|| "chat_template is a list without a `default` template".to_string()),
        Some(_) => Err("chat_template is neither a string nor a list of templates".to_string()),
    }
}

/// A compiled-on-demand chat template.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    source: String,
    special: SpecialTokens,
}

impl ChatTemplate {
    /// Check that `source` compiles, so a broken template is reported when the checkpoint is
    /// opened rather than at the first prompt.
    pub fn new(source: String, special: SpecialTokens) -> Result<Self, String> {
        let template = Self { source, special };
        let env = environment();
        env.template_from_str(&template.source)
            .map_err(|e| describe(&e))?;
        Ok(template)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The text transformers' `apply_chat_template(messages, tokenize=False,
    /// add_generation_prompt=...)` gives.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, String> {
        let env = environment();
        let template = env
            .template_from_str(&self.source)
            .map_err(|e| describe(&e))?;
        let mut ctx: BTreeMap<&str, Value> = BTreeMap::new();
        ctx.insert("messages", Value::from(Serde(messages)));
        ctx.insert("add_generation_prompt", Value::from(add_generation_prompt));
        ctx.insert("tools", Value::from(()));
        ctx.insert("documents", Value::from(()));
        // Only the tokens the config sets: an unset one is undefined (renders empty), as in
        // transformers, not `none`.
        let s = &self.special;
        for (name, token) in [
            ("bos_token", &s.bos_token),
            ("eos_token", &s.eos_token),
            ("pad_token", &s.pad_token),
            ("unk_token", &s.unk_token),
        ] {
            if let Some(token) = token {
                ctx.insert(name, Value::from(token.as_str()));
            }
        }
        template
            .render(Value::from(Serde(&ctx)))
            .map_err(|e| describe(&e))
    }
}

/// minijinja's error with its detail (line, what went wrong) on one line.
fn describe(e: &Error) -> String {
    let mut text = e.to_string();
    if let Some(detail) = e.detail()
        && !text.contains(detail)
    {
        text = format!("{text}: {detail}");
    }
    text.replace('\n', " ")
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("default delimiters are valid"),
    );
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_filter("tojson", tojson);
    env.add_function(
        "raise_exception",
        |message: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        },
    );
    env
}

/// Python's `json.dumps(value, ensure_ascii=False, indent=indent)`, as transformers' filter.
/// Its other keyword arguments (`separators`, `sort_keys`) are refused rather than ignored.
fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let _ensure_ascii_off: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(&value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let mut out = String::new();
    write_python_json(&json, indent, 0, &mut out);
    Ok(Value::from_safe_string(out))
}

fn write_python_json(v: &serde_json::Value, indent: Option<usize>, depth: usize, out: &mut String) {
    use serde_json::Value as J;
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    // With an indent Python separates items by "," + newline; without, by ", ".
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v {
        J::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_python_json(item, indent, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        J::Object(map) if !map.is_empty() => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                out.push_str(&serde_json::to_string(k).expect("a string serialises"));
                out.push_str(": ");
                write_python_json(item, indent, depth + 1, out);
            }
            newline(out, depth);
            out.push('}');
        }
        other => out.push_str(&serde_json::to_string(other).expect("JSON serialises")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn special() -> SpecialTokens {
        SpecialTokens {
            bos_token: Some("<s>".into()),
            eos_token: Some("</s>".into()),
            ..Default::default()
        }
    }

    #[test]
    fn tojson_uses_python_separators_and_keeps_unicode() {
        let t = ChatTemplate::new(
            "{{ {'a': [1, 'é'], 'b': none} | tojson }}|{{ [1] | tojson(indent=2) }}".into(),
            special(),
        )
        .unwrap();
        assert_eq!(
            t.render(&[], false).unwrap(),
            "{\"a\": [1, \"é\"], \"b\": null}|[\n  1\n]"
        );
    }

    #[test]
    fn broken_templates_are_errors_not_panics() {
        let err = ChatTemplate::new("{% for m in messages %}".into(), special()).unwrap_err();
        assert!(
            err.contains("syntax error") || err.contains("unexpected"),
            "{err}"
        );
        let raising = ChatTemplate::new(
            "{{ raise_exception('only user turns, got ' + messages[0].role) }}".into(),
            special(),
        )
        .unwrap();
        let msg = Message {
            role: "system".into(),
            content: "x".into(),
        };
        let err = raising.render(&[msg], true).unwrap_err();
        assert!(err.contains("only user turns, got system"), "{err}");
    }

    #[test]
    fn config_forms_of_the_template() {
        let s: serde_json::Value = serde_json::json!({"chat_template": "x"});
        assert_eq!(template_from_config(&s).unwrap().as_deref(), Some("x"));
        let list = serde_json::json!({"chat_template": [
            {"name": "tool_use", "template": "t"}, {"name": "default", "template": "d"}]});
        assert_eq!(template_from_config(&list).unwrap().as_deref(), Some("d"));
        assert_eq!(template_from_config(&serde_json::json!({})).unwrap(), None);
        assert!(template_from_config(&serde_json::json!({"chat_template": 3})).is_err());
        let tokens = SpecialTokens::from_config(&serde_json::json!({
            "bos_token": {"content": "<b>", "lstrip": false}, "eos_token": "<e>"}));
        assert_eq!(tokens.bos_token.as_deref(), Some("<b>"));
        assert_eq!(tokens.eos_token.as_deref(), Some("<e>"));
        assert_eq!(tokens.pad_token, None);
    }
}

/// The templates in `tests/fixtures/bytecraft/chat_templates/` (Qwen2.5-Instruct's real one and
/// a second that uses `bos_token`, `loop.last`, `trim`, `tojson`), rendered by transformers
/// 5.24 into `expected.json` by `make_expected.py` there.
#[cfg(test)]
mod transformers_parity {
    use std::path::Path;

    use super::*;

    #[test]
    fn fixture_templates_render_as_transformers_does() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/bytecraft/chat_templates");
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        let templates = expected["templates"].as_object().unwrap();
        assert!(templates.contains_key("qwen2.5-instruct.jinja"));
        let mut checked = 0;
        for (name, spec) in templates {
            let mut source = std::fs::read_to_string(dir.join(name)).unwrap();
            if source.ends_with('\n') {
                source.pop();
            }
            let template = ChatTemplate::new(source, SpecialTokens::from_config(spec)).unwrap();
            for case in spec["cases"].as_array().unwrap() {
                let messages: Vec<Message> = case["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| Message {
                        role: m["role"].as_str().unwrap().into(),
                        content: m["content"].as_str().unwrap().into(),
                    })
                    .collect();
                let generation = case["add_generation_prompt"].as_bool().unwrap();
                let got = template.render(&messages, generation).unwrap();
                assert_eq!(got, case["text"].as_str().unwrap(), "{name} {case}");
                checked += 1;
            }
        }
        assert_eq!(checked, 12);
    }

    #[test]
    fn qwen_template_with_a_system_prompt() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/bytecraft/chat_templates");
        let source = std::fs::read_to_string(dir.join("qwen2.5-instruct.jinja")).unwrap();
        let template = ChatTemplate::new(source, SpecialTokens::default()).unwrap();
        let messages = [
            Message {
                role: "system".into(),
                content: "S".into(),
            },
            Message {
                role: "user".into(),
                content: "U".into(),
            },
        ];
        assert_eq!(
            template.render(&messages, true).unwrap(),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
