//! `gamegen validate --prompt-check`: read each file's attributes and score them against the
//! prompt it was made for (see `core/src/swf/adherence`).

use super::validate::Args;
use anyhow::bail;
use gamegen_core::swf::adherence::{self, Adherence, Claims, Facts};
use gamegen_core::swf::synth::Attributes;
use gamegen_native::bytecraft::generate::prompt_ids_beside;
use gamegen_native::swf_batch::map_ordered;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// A prompt and, for a synthetic corpus, the record it was written from.
#[derive(Clone, Debug)]
struct PromptEntry {
    text: String,
    attributes: Option<Attributes>,
}

/// Prompts by id from a prompt file or manifest (see `super::manifest::read_prompts`); a
/// `gamegen corpus synth` manifest brings each record's attributes.
fn load_prompts(path: &Path) -> anyhow::Result<HashMap<String, PromptEntry>> {
    Ok(super::manifest::read_prompts(path)?
        .into_iter()
        .map(|r| {
            let entry = PromptEntry {
                text: r.prompt.text,
                attributes: r.attributes,
            };
            (r.prompt.id, entry)
        })
        .collect())
}

/// Which prompt each file answers: the single `--prompt`, else the file's prompt id (from
/// `results.jsonl`, else its name without `.swf`) looked up in `--prompts`, else in a
/// `manifest.jsonl` beside the file.
struct PromptIndex {
    single: Option<PromptEntry>,
    given: Option<HashMap<String, PromptEntry>>,
    beside: HashMap<PathBuf, HashMap<String, PromptEntry>>,
    ids: HashMap<PathBuf, String>,
}

impl PromptIndex {
    fn new(args: &Args, paths: &[PathBuf]) -> anyhow::Result<Self> {
        let single = args.prompt.as_ref().map(|t| PromptEntry {
            text: t.clone(),
            attributes: None,
        });
        let given = args.prompts.as_deref().map(load_prompts).transpose()?;
        let mut beside = HashMap::new();
        if single.is_none() && given.is_none() {
            let mut dirs: Vec<&Path> = paths.iter().filter_map(|p| p.parent()).collect();
            dirs.sort();
            dirs.dedup();
            for dir in dirs {
                let m = dir.join("manifest.jsonl");
                if m.is_file() {
                    beside.insert(dir.to_path_buf(), load_prompts(&m)?);
                }
            }
        }
        Ok(Self {
            single,
            given,
            beside,
            ids: prompt_ids_beside(paths),
        })
    }

    fn lookup(&self, path: &Path) -> Option<(String, &PromptEntry)> {
        if let Some(p) = &self.single {
            return Some(("--prompt".into(), p));
        }
        let stem = path.file_stem()?.to_string_lossy().into_owned();
        let id = self.ids.get(path).cloned().unwrap_or(stem);
        let table = match &self.given {
            Some(t) => t,
            None => self.beside.get(path.parent()?)?,
        };
        table.get(&id).map(|p| (id, p))
    }
}

#[derive(Serialize)]
struct Line {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_id: Option<String>,
    /// `record` (exact attributes) or `text` (read from the prompt's words).
    #[serde(skip_serializing_if = "Option::is_none")]
    claims_from: Option<&'static str>,
    /// Mean over the prompt's claims; 0 for a file whose header does not parse.
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    adherence: Option<Adherence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<Facts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn check_file(path: &Path, index: &PromptIndex) -> Line {
    let prompt = index.lookup(path);
    let (claims, from) = match &prompt {
        Some((_, p)) => match &p.attributes {
            Some(a) => (Some(Claims::from_record(a)), Some("record")),
            None => (Some(Claims::from_text(&p.text)), Some("text")),
        },
        None => (None, None),
    };
    let mut line = Line {
        file: path.display().to_string(),
        prompt_id: prompt.as_ref().map(|p| p.0.clone()),
        claims_from: from,
        score: None,
        adherence: None,
        attributes: None,
        error: None,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            line.error = Some(format!("cannot read: {e}"));
            return line;
        }
    };
    match adherence::extract(&bytes) {
        Err(e) => {
            line.error = Some(format!("header does not parse: {e}"));
            if claims.as_ref().is_some_and(|c| !c.is_empty()) {
                line.score = Some(0.0);
            }
        }
        Ok(facts) => {
            if let Some(c) = &claims {
                let a = adherence::score(&facts, c);
                line.score = a.score;
                line.adherence = Some(a);
            }
            line.attributes = Some(facts);
        }
    }
    line
}

fn text_line(l: &Line) -> String {
    let Some(a) = &l.adherence else {
        return match (&l.error, &l.attributes) {
            (Some(e), _) => format!("{}  {}", l.file, e),
            (None, Some(f)) => format!(
                "{}  no prompt; {}x{} @ {} fps, {} frames, {} objects{}",
                l.file,
                f.width,
                f.height,
                f.frame_rate,
                f.frames,
                f.objects.len(),
                if f.interactive() { ", interactive" } else { "" }
            ),
            (None, None) => l.file.clone(),
        };
    };
    let mut parts: Vec<String> = a
        .checks
        .iter()
        .map(|c| {
            let mark = if c.score == 1.0 { "ok" } else { "NO" };
            format!("{} {mark}", c.attribute)
        })
        .collect();
    if !a.objects.is_empty() {
        let full = a.objects.iter().filter(|o| o.score == 1.0).count();
        parts.push(format!("objects {full}/{}", a.objects.len()));
    }
    match l.score {
        Some(s) => format!("{}  score {s:.2}  {}", l.file, parts.join(", ")),
        None => format!("{}  prompt states nothing checkable", l.file),
    }
}

pub fn run(args: &Args, paths: &[PathBuf], jobs: usize) -> anyhow::Result<()> {
    let index = PromptIndex::new(args, paths)?;
    let mut lines = super::ResultLines::new(args.json, args.quiet);
    let (mut scores, mut unmatched, mut unreadable) = (Vec::new(), 0usize, 0usize);
    let mut per_claim: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    map_ordered(
        paths,
        jobs,
        |p| check_file(p, &index),
        |l| {
            if l.prompt_id.is_none() {
                unmatched += 1;
            }
            if l.error
                .as_deref()
                .is_some_and(|e| e.starts_with("cannot read"))
            {
                unreadable += 1;
            }
            if let Some(s) = l.score {
                scores.push(s);
            }
            if let Some(a) = &l.adherence {
                for c in &a.checks {
                    let e = per_claim.entry(c.attribute.clone()).or_default();
                    *e = (e.0 + c.score, e.1 + 1);
                }
                for o in &a.objects {
                    let e = per_claim.entry("objects".into()).or_default();
                    *e = (e.0 + o.score, e.1 + 1);
                }
            }
            lines.emit(&l, text_line);
        },
    );
    lines.finish()?;
    let mean = if scores.is_empty() {
        "n/a".to_string()
    } else {
        format!("{:.3}", scores.iter().sum::<f64>() / scores.len() as f64)
    };
    let claims: Vec<String> = per_claim
        .iter()
        .map(|(k, (s, n))| format!("{k} {:.2}", s / *n as f64))
        .collect();
    eprintln!(
        "{} files: {} scored, mean adherence {mean}{}{}",
        paths.len(),
        scores.len(),
        if claims.is_empty() {
            String::new()
        } else {
            format!(" ({})", claims.join(", "))
        },
        if unmatched > 0 {
            format!("; {unmatched} without a prompt")
        } else {
            String::new()
        }
    );
    if unreadable > 0 {
        bail!("{unreadable} file(s) could not be read (see their error fields)");
    }
    if (args.prompts.is_some() || args.prompt.is_some()) && scores.is_empty() {
        bail!("no file matched a prompt (files match by results.jsonl prompt_id or by name)");
    }
    Ok(())
}
