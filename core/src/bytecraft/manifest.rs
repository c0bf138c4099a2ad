//! Manifests: JSON Lines files with one record per line, read by `gamegen generate --prompts`,
//! `gamegen validate --prompt-check` and `gamegen similarity --truth`, and prompt files.
//!
//! Every record is read through one typed [`Record`]; a command then takes the view it needs:
//! [`parse_prompts`] (an id, the prompt text and, for a synthetic corpus, the record's
//! attributes) or [`parse_truths`] (which file is the true file of which prompt or generated
//! file). A `gamegen corpus synth` `manifest.jsonl` is valid for both. Errors name the line, so
//! a caller that adds the file name gives a one-line message such as
//! `prompts.jsonl line 2: not JSON: ...`.

use super::prompts::{Prompt, StructuredPrompt, parse_prompt_file};
use crate::swf::synth::Attributes;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Why a manifest or prompt file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("line {line}: {problem}")]
    Line { line: usize, problem: Problem },
    #[error("holds no prompt")]
    Empty,
}

/// What is wrong with one record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a record: {0}")]
    NotRecord(String),
    #[error("needs a \"prompt\" string or structured fields with \"kind\"")]
    NoPrompt,
    #[error("\"attributes\" is not a synth record: {0}")]
    Attributes(String),
    #[error("needs \"truth\"")]
    NoTruth,
    #[error("needs \"prompt_id\" or \"generated\"")]
    NoTarget,
}

/// One prompt with what is known about the file it asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptRecord {
    pub prompt: Prompt,
    /// The exact attributes of a synthetic corpus record, when the line carries them.
    pub attributes: Option<Attributes>,
}

/// Which file a generated file should be compared with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Truth {
    /// A `gamegen corpus synth` record (it has `name` and no `truth`): the true file of prompt
    /// `name` is `<name>.swf` beside the manifest.
    Beside { prompt_id: String },
    /// The files generated from prompt `prompt_id` answer the file at `truth`.
    Prompt { prompt_id: String, truth: String },
    /// The generated file `generated` (a file name or a path) answers the file at `truth`.
    File { generated: String, truth: String },
}

/// How a prompt file is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptFormat {
    /// One JSON record per line.
    Jsonl,
    /// Free text, prompts separated by lines holding only `Ŧ` (see [`parse_prompt_file`]).
    Separated,
}

impl PromptFormat {
    /// JSON Lines when the file is named `*.jsonl` or its first non-blank character is `{`
    /// (no prompt file starts a prompt that way in practice); otherwise `Ŧ`-separated text.
    pub fn of(file_name: &str, text: &str) -> Self {
        if file_name.ends_with(".jsonl") || text.trim_start().starts_with('{') {
            Self::Jsonl
        } else {
            Self::Separated
        }
    }
}

/// The prompts of a prompt file in file order. A JSON record's id is its `id`, `name` or
/// `prompt_id` (the first that is a string or a number), else `p<n>` for the n-th prompt, as
/// for a `Ŧ`-separated file; its text is `prompt`, else the rendered [`StructuredPrompt`] of
/// its fields (`{"kind": "game", "title": ...}`); `attributes`, when present and not null,
/// must be a synthetic corpus record's. Other fields are ignored.
pub fn parse_prompts(text: &str, format: PromptFormat) -> Result<Vec<PromptRecord>, ManifestError> {
    let prompts = match format {
        PromptFormat::Separated => parse_prompt_file(text)
            .into_iter()
            .map(|prompt| PromptRecord {
                prompt,
                attributes: None,
            })
            .collect(),
        PromptFormat::Jsonl => {
            let mut prompts = Vec::new();
            for (line, record) in records(text) {
                let at = |problem| ManifestError::Line { line, problem };
                let record = record.map_err(at)?;
                let text = match (record.prompt, record.structured) {
                    (Some(Scalar::Text(p)), _) => p,
                    (None, Some(s)) => s.render(),
                    _ => return Err(at(Problem::NoPrompt)),
                };
                let attributes = record
                    .attributes
                    .map(Attributes::deserialize)
                    .transpose()
                    .map_err(|e| at(Problem::Attributes(e.to_string())))?;
                let id = [record.id, record.name, record.prompt_id]
                    .into_iter()
                    .flatten()
                    .find_map(Scalar::into_id)
                    .unwrap_or_else(|| format!("p{}", prompts.len()));
                prompts.push(PromptRecord {
                    prompt: Prompt { id, text },
                    attributes,
                });
            }
            prompts
        }
    };
    if prompts.is_empty() {
        return Err(ManifestError::Empty);
    }
    Ok(prompts)
}

/// The pairings of a truth manifest, in file order (see [`Truth`]): a record with a `truth`
/// string pairs it with its `prompt_id` (a string or a number), else with its `generated` file;
/// a record without `truth` is a `gamegen corpus synth` record when it has a `name` string.
pub fn parse_truths(text: &str) -> Result<Vec<Truth>, ManifestError> {
    let mut truths = Vec::new();
    for (line, record) in records(text) {
        let at = |problem| ManifestError::Line { line, problem };
        let record = record.map_err(at)?;
        let truth = match (record.truth, record.name) {
            (None, Some(Scalar::Text(name))) => Truth::Beside { prompt_id: name },
            (Some(Scalar::Text(truth)), _) => {
                match (record.prompt_id.and_then(Scalar::into_id), record.generated) {
                    (Some(prompt_id), _) => Truth::Prompt { prompt_id, truth },
                    (None, Some(Scalar::Text(generated))) => Truth::File { generated, truth },
                    _ => return Err(at(Problem::NoTarget)),
                }
            }
            _ => return Err(at(Problem::NoTruth)),
        };
        truths.push(truth);
    }
    Ok(truths)
}

/// Every field a manifest record may have; the views above decide which they need. Fields
/// read through [`Scalar`] accept any JSON value, so a field of the wrong type is reported by
/// the view as missing rather than as a parse error of the whole line.
#[derive(serde::Deserialize)]
struct Record {
    #[serde(default)]
    id: Option<Scalar>,
    #[serde(default)]
    name: Option<Scalar>,
    #[serde(default)]
    prompt_id: Option<Scalar>,
    #[serde(default)]
    prompt: Option<Scalar>,
    /// Kept as JSON until a view asks for it, so a truth manifest need not hold valid
    /// attributes and a prompt view can say that the attributes are what is wrong.
    #[serde(default)]
    attributes: Option<serde_json::Value>,
    #[serde(default)]
    truth: Option<Scalar>,
    #[serde(default)]
    generated: Option<Scalar>,
    /// `None` unless the remaining fields form a structured prompt (which needs `kind`).
    #[serde(flatten)]
    structured: Option<StructuredPrompt>,
}

/// The non-blank lines of `text` with their 1-based line numbers, each read as a [`Record`].
fn records(text: &str) -> impl Iterator<Item = (usize, Result<Record, Problem>)> + '_ {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let record = serde_json::from_str::<Record>(l).map_err(|e| match e.classify() {
                serde_json::error::Category::Data => Problem::NotRecord(e.to_string()),
                _ => Problem::NotJson(e.to_string()),
            });
            (i + 1, record)
        })
}

/// A JSON value where a string (or, for an id, a number) belongs.
enum Scalar {
    Text(String),
    /// A number, written as JSON writes it.
    Number(String),
    /// `true`, `false`, an array or an object.
    Other,
}

impl Scalar {
    /// An id: a string as it is, a number as JSON writes it.
    fn into_id(self) -> Option<String> {
        match self {
            Self::Text(s) | Self::Number(s) => Some(s),
            Self::Other => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Text(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                // serde_json's own rendering (`1.0`, `1e20`), as a JSON writer shows the id.
                Ok(serde_json::Number::from_f64(v)
                    .map_or(Scalar::Other, |n| Scalar::Number(n.to_string())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swf::synth::synthesize;

    fn line_error(e: ManifestError) -> (usize, Problem) {
        match e {
            ManifestError::Line { line, problem } => (line, problem),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn the_format_follows_the_name_then_the_first_character() {
        assert_eq!(
            PromptFormat::of("p.jsonl", "a pong game"),
            PromptFormat::Jsonl
        );
        assert_eq!(
            PromptFormat::of("p", "\n  {\"prompt\": 1}"),
            PromptFormat::Jsonl
        );
        assert_eq!(
            PromptFormat::of("p.txt", "a pong\nŦ\n"),
            PromptFormat::Separated
        );
    }

    #[test]
    fn separated_files_number_their_prompts() {
        let p = parse_prompts("a pong game\nŦ\nune animation\n", PromptFormat::Separated).unwrap();
        let ids: Vec<&str> = p.iter().map(|r| r.prompt.id.as_str()).collect();
        assert_eq!(ids, ["p0", "p1"]);
        assert_eq!(p[1].prompt.text, "une animation");
        assert!(p.iter().all(|r| r.attributes.is_none()));
        assert_eq!(
            parse_prompts("Ŧ\n \n", PromptFormat::Separated),
            Err(ManifestError::Empty)
        );
    }

    #[test]
    fn ids_come_from_id_name_or_prompt_id_as_strings_or_numbers() {
        let text = "{\"id\": \"a\", \"prompt\": \"one\"}\n\
                    {\"name\": \"000004\", \"seed\": 1, \"prompt\": \"two\"}\n\
                    {\"prompt_id\": 7, \"prompt\": \"three\"}\n\
                    {\"id\": 2.5, \"prompt\": \"four\"}\n\
                    {\"id\": true, \"name\": \"n\", \"prompt\": \"five\"}\n\
                    {\"id\": null, \"prompt\": \"six\"}\n\
                    \n\
                    {\"prompt\": \"seven\", \"truth\": \"x.swf\"}\n";
        let p = parse_prompts(text, PromptFormat::Jsonl).unwrap();
        let got: Vec<(&str, &str)> = p
            .iter()
            .map(|r| (r.prompt.id.as_str(), r.prompt.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", "one"),
                ("000004", "two"),
                ("7", "three"),
                ("2.5", "four"),
                ("n", "five"),
                ("p5", "six"),
                ("p6", "seven"),
            ]
        );
    }

    #[test]
    fn structured_fields_are_rendered_when_there_is_no_prompt() {
        let p = parse_prompts(
            "{\"kind\": \"game\", \"title\": \"Pong\", \"size_kb\": 12}",
            PromptFormat::Jsonl,
        )
        .unwrap();
        assert_eq!(p[0].prompt.id, "p0");
        assert_eq!(
            p[0].prompt.text,
            "Please generate a video game with the following specifications:\n- Title: Pong\n- Size: 12KB"
        );
    }

    #[test]
    fn a_synth_manifest_is_a_prompt_file_and_a_truth_manifest() {
        let records: Vec<_> = (0..3).map(|i| synthesize(5, i).record).collect();
        let text: String = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        let prompts = parse_prompts(&text, PromptFormat::of("manifest.jsonl", &text)).unwrap();
        for (p, r) in prompts.iter().zip(&records) {
            assert_eq!(p.prompt.id, r.name);
            assert_eq!(p.prompt.text, r.prompt);
            assert_eq!(p.attributes.as_ref(), Some(&r.attributes));
        }
        let truths = parse_truths(&text).unwrap();
        assert_eq!(
            truths[1],
            Truth::Beside {
                prompt_id: "000001".into()
            }
        );
        // Null attributes are no attributes.
        let p = parse_prompts(
            "{\"id\": 1, \"prompt\": \"x\", \"attributes\": null}",
            PromptFormat::Jsonl,
        )
        .unwrap();
        assert_eq!(p[0].attributes, None);
    }

    #[test]
    fn truth_records_pair_prompts_or_files() {
        let text = "{\"prompt_id\": \"a\", \"truth\": \"t/a.swf\"}\n\
                    {\"prompt_id\": 3, \"truth\": \"t/3.swf\"}\n\
                    {\"generated\": \"s0.swf\", \"truth\": \"t/b.swf\"}\n\
                    {\"prompt_id\": false, \"generated\": \"s1.swf\", \"truth\": \"t/c.swf\"}\n";
        assert_eq!(
            parse_truths(text).unwrap(),
            [
                Truth::Prompt {
                    prompt_id: "a".into(),
                    truth: "t/a.swf".into()
                },
                Truth::Prompt {
                    prompt_id: "3".into(),
                    truth: "t/3.swf".into()
                },
                Truth::File {
                    generated: "s0.swf".into(),
                    truth: "t/b.swf".into()
                },
                Truth::File {
                    generated: "s1.swf".into(),
                    truth: "t/c.swf".into()
                },
            ]
        );
        assert_eq!(parse_truths("\n  \n").unwrap(), []);
    }

    #[test]
    fn each_problem_names_its_line() {
        let prompts = |t| line_error(parse_prompts(t, PromptFormat::Jsonl).unwrap_err());
        let (line, p) = prompts("{\"id\": \"a\", \"prompt\": \"x\"}\n{oops\n");
        assert_eq!(line, 2);
        assert!(matches!(p, Problem::NotJson(_)), "{p}");
        assert!(matches!(prompts("not json").1, Problem::NotJson(_)));
        assert!(matches!(prompts("{\"id\": \"a\"").1, Problem::NotJson(_)));
        assert!(matches!(prompts("[1, 2]").1, Problem::NotRecord(_)));
        assert!(matches!(
            prompts("{\"id\": 1, \"id\": 2, \"prompt\": \"x\"}").1,
            Problem::NotRecord(_)
        ));
        assert_eq!(prompts("{\"id\": 3}\n"), (1, Problem::NoPrompt));
        assert_eq!(
            prompts("\n{\"id\": 3, \"prompt\": 4}"),
            (2, Problem::NoPrompt)
        );
        let (line, p) = prompts("{\"id\": 3, \"prompt\": \"x\", \"attributes\": {\"kind\": 1}}");
        assert_eq!(line, 1);
        assert!(matches!(p, Problem::Attributes(_)), "{p}");
        assert_eq!(
            parse_prompts("\n", PromptFormat::Jsonl),
            Err(ManifestError::Empty)
        );

        let truths = |t| line_error(parse_truths(t).unwrap_err());
        assert_eq!(truths("{\"truth\": 3}"), (1, Problem::NoTruth));
        assert_eq!(truths("{\"prompt_id\": \"a\"}"), (1, Problem::NoTruth));
        assert_eq!(truths("\n\n{\"truth\": \"t.swf\"}"), (3, Problem::NoTarget));
        assert!(matches!(truths("{truth}").1, Problem::NotJson(_)));

        let e = parse_prompts("{}\n{oops", PromptFormat::Jsonl).unwrap_err();
        assert_eq!(e.to_string(), format!("line 1: {}", Problem::NoPrompt));
        let e = parse_prompts("{\"prompt\": \"a\"}\n{oops", PromptFormat::Jsonl).unwrap_err();
        assert!(e.to_string().starts_with("line 2: not JSON: "), "{e}");
        assert_eq!(ManifestError::Empty.to_string(), "holds no prompt");
    }
}
