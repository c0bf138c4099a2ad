//! The report of a `gamegen validate --ruffle` run: `report.html` (self-contained: class table,
//! the mapping to the ByteCraft paper's manual classes, one row per file with thumbnails as
//! data URLs) and `report.json` beside it with the same data. Both are written atomically.

use crate::fsutil::write_atomic;
use crate::ruffle_classify::{Class, Observation};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One file: levels 1-2, then what Ruffle showed (absent when levels 1-2 already said broken).
#[derive(Clone, Debug, Serialize)]
pub struct FileRow {
    pub path: String,
    pub bytes: u64,
    /// `valid`, `damaged` or `broken` from levels 1-2 (absent when the file was unreadable).
    pub verdict: Option<String>,
    /// Valid as written: levels 1-2 forgave nothing (absent when the file was unreadable).
    pub valid_as_written: Option<bool>,
    pub level_reached: Option<u8>,
    /// The first level 1-2 error, if any.
    pub first_error: Option<String>,
    pub class: Class,
    pub reason: String,
    /// For broken files: `header` (levels 1-2, the paper's "fully broken") or `ruffle`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_by: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ruffle: Option<Observation>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub files: usize,
    /// Files per class, every class present (zero counts included).
    pub counts: BTreeMap<&'static str, usize>,
    /// The same as percentages of `files`.
    pub percent: BTreeMap<&'static str, f64>,
    /// Broken files by cause: `header` (levels 1-2) and `ruffle` (rejected, panicked, hung).
    pub broken_by: BTreeMap<&'static str, usize>,
    /// Files that went through Ruffle.
    pub ruffle_files: usize,
    /// Wall time of the whole command and of the Ruffle part after the browser was up.
    pub wall_seconds: f64,
    pub ruffle_seconds: f64,
    /// `ruffle_seconds / ruffle_files`: the cost of one more file.
    pub seconds_per_file: f64,
    pub jobs: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub summary: Summary,
    pub files: Vec<FileRow>,
}

impl Report {
    pub fn new(files: Vec<FileRow>, wall_seconds: f64, ruffle_seconds: f64, jobs: usize) -> Self {
        let n = files.len();
        let mut counts: BTreeMap<&'static str, usize> =
            Class::ALL.iter().map(|c| (c.as_str(), 0)).collect();
        let mut broken_by: BTreeMap<&'static str, usize> =
            [("header", 0), ("ruffle", 0)].into_iter().collect();
        for f in &files {
            *counts.entry(f.class.as_str()).or_default() += 1;
            if let Some(b) = f.broken_by {
                *broken_by.entry(b).or_default() += 1;
            }
        }
        let percent = counts
            .iter()
            .map(|(k, &v)| (*k, 100.0 * v as f64 / n.max(1) as f64))
            .collect();
        let ruffle_files = files.iter().filter(|f| f.ruffle.is_some()).count();
        Self {
            summary: Summary {
                files: n,
                counts,
                percent,
                broken_by,
                ruffle_files,
                wall_seconds,
                ruffle_seconds,
                seconds_per_file: ruffle_seconds / ruffle_files.max(1) as f64,
                jobs,
            },
            files,
        }
    }

    /// Write `html` and the JSON beside it (same name, `.json`); returns the JSON's path.
    pub fn write(&self, html: &Path) -> std::io::Result<PathBuf> {
        let json_path = html.with_extension("json");
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomic(&json_path, &json)?;
        write_atomic(html, self.html().as_bytes())?;
        Ok(json_path)
    }

    /// The class table as text lines, for the terminal and docs.
    pub fn table_text(&self) -> String {
        let mut s = String::new();
        for c in Class::ALL {
            let k = c.as_str();
            let _ = writeln!(
                s,
                "{k:<12} {:>6} {:>6.1}%",
                self.summary.counts[k], self.summary.percent[k]
            );
        }
        s
    }

    pub fn html(&self) -> String {
        let s = &self.summary;
        let mut h = String::with_capacity(64 * 1024 + self.files.len() * 4096);
        h.push_str(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>gamegen: Ruffle classification</title>\n<style>\
             body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}\
             td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f2f2f2}\
             td.n{text-align:right}img{border:1px solid #999;image-rendering:pixelated;max-width:160px}\
             .broken{background:#fde2e2}.blank{background:#eee}.static{background:#fff6d6}.animated{background:#e3f1ff}\
             .interactive{background:#dff5e1}code,pre{font-size:12px}pre{white-space:pre-wrap;margin:0;max-width:46em}\
             </style></head><body>\n<h1>Ruffle classification</h1>\n",
        );
        let _ = writeln!(
            h,
            "<p>{} files, {} run in Ruffle ({} pages in parallel): {:.1} s in all, {:.3} s per file in Ruffle. \
             Made by <code>gamegen validate --ruffle</code>; see docs/swf.md for the rules.</p>",
            s.files, s.ruffle_files, s.jobs, s.wall_seconds, s.seconds_per_file
        );
        h.push_str("<h2>Classes</h2>\n<table><tr><th>class</th><th>rule</th><th>files</th><th>%</th></tr>\n");
        for c in Class::ALL {
            let k = c.as_str();
            let _ = writeln!(
                h,
                "<tr class=\"{k}\"><td>{k}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}%</td></tr>",
                esc(rule(c)),
                s.counts[k],
                s.percent[k]
            );
        }
        h.push_str("</table>\n");
        h.push_str(
            "<h2>Against the ByteCraft paper's classes</h2>\n<p>The paper (Table 1) sorted files by \
             hand after opening them in Ruffle; ours are automatic. The correspondence:</p>\n\
             <table><tr><th>paper (manual)</th><th>ours (automatic)</th><th>files</th><th>%</th></tr>\n",
        );
        let pct = |n: usize| 100.0 * n as f64 / s.files.max(1) as f64;
        let c = |k: &str| s.counts[k];
        // (paper class, our class(es), bound: "" exact, "<=" or ">=", count)
        let rows: [(&str, String, &str, usize); 5] = [
            (
                "Fully broken (wrong format)",
                format!(
                    "broken: {} by levels 1-2 (exactly the paper's header check), {} by Ruffle (rejected, panicked, hung)",
                    s.broken_by["header"], s.broken_by["ruffle"]
                ),
                "",
                c("broken"),
            ),
            ("Blank canvas (flat color)", "blank".into(), "", c("blank")),
            (
                "Stuck on loading screen",
                "part of static (a loader that never finishes does not change); not told apart automatically".into(),
                "&le; ",
                c("static"),
            ),
            (
                "Showing/hearing something",
                "animated, plus the static files that are not loaders (sound is not measured)".into(),
                "&ge; ",
                c("animated"),
            ),
            (
                "Fully working",
                "interactive: an upper bound (it answers keys or clicks); \"playable\" still needs a person".into(),
                "&le; ",
                c("interactive"),
            ),
        ];
        for (paper, ours, bound, n) in rows {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{bound}{n}</td><td class=\"n\">{bound}{:.1}%</td></tr>",
                esc(paper),
                esc(&ours),
                pct(n)
            );
        }
        h.push_str("</table>\n<h2>Files</h2>\n<table><tr><th>#</th><th>file</th><th>class</th><th>levels 1-2</th><th>early</th><th>later</th><th>why, errors</th></tr>\n");
        for (i, f) in self.files.iter().enumerate() {
            let k = f.class.as_str();
            let thumbs: Vec<Option<&str>> = f
                .ruffle
                .as_ref()
                .map(|r| r.thumbs.iter().map(|t| t.as_deref()).collect())
                .unwrap_or_default();
            let img = |t: Option<&Option<&str>>| match t.copied().flatten() {
                Some(u) if u.starts_with("data:image/png;base64,") => {
                    format!("<img alt=\"\" src=\"{}\">", esc(u))
                }
                _ => "-".to_string(),
            };
            let mut why = esc(&f.reason);
            if let Some(e) = &f.first_error {
                let _ = write!(why, "<br>levels 1-2: {}", esc(e));
            }
            if let Some(r) = &f.ruffle {
                if !r.console.is_empty() {
                    let _ = write!(why, "<pre>{}</pre>", esc(&r.console.join("\n")));
                }
                if !r.blocked.is_empty() {
                    let _ = write!(why, "<br>blocked requests: {}", esc(&r.blocked.join(", ")));
                }
            }
            let _ = writeln!(
                h,
                "<tr class=\"{k}\"><td class=\"n\">{i}</td><td><code>{}</code></td><td>{k}</td><td>{}{} L{}</td><td>{}</td><td>{}</td><td>{why}</td></tr>",
                esc(&f.path),
                esc(f.verdict.as_deref().unwrap_or("unreadable")),
                if f.valid_as_written == Some(true) {
                    " (as written)"
                } else {
                    ""
                },
                f.level_reached.map_or("-".to_string(), |l| l.to_string()),
                img(thumbs.first()),
                img(thumbs.get(1)),
            );
        }
        h.push_str("</table>\n</body></html>\n");
        h
    }
}

/// The rule of each class, as shown in the report.
pub fn rule(c: Class) -> &'static str {
    match c {
        Class::Broken => "levels 1-2 say broken, or Ruffle rejects the bytes, panics or hangs",
        Class::Blank => "one flat colour in every sampled frame; input changes nothing",
        Class::Static => {
            "something drawn, but no change over 2 s or with input (stuck loaders too)"
        }
        Class::Animated => "pixels change over time without input",
        Class::Interactive => {
            "keys (arrows, space, enter) and mouse moves/clicks change the picture more than a no-input rerun does"
        }
    }
}

/// Escape text for HTML element content and double-quoted attributes.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            _ => o.push(ch),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(class: Class, thumb: bool) -> FileRow {
        FileRow {
            path: "a<b>.swf".into(),
            bytes: 10,
            verdict: Some("valid".into()),
            valid_as_written: Some(true),
            level_reached: Some(2),
            first_error: None,
            class,
            reason: "r".into(),
            broken_by: (class == Class::Broken).then_some("ruffle"),
            ruffle: Some(Observation {
                thumbs: if thumb {
                    vec![Some("data:image/png;base64,AAAA".into()); 2]
                } else {
                    vec![]
                },
                console: vec!["ERROR core/x: <bad>".into()],
                ..Observation::default()
            }),
        }
    }

    #[test]
    fn counts_percentages_and_escaping() {
        let r = Report::new(
            vec![
                row(Class::Animated, true),
                row(Class::Animated, true),
                row(Class::Broken, false),
                row(Class::Blank, true),
            ],
            2.0,
            1.0,
            2,
        );
        assert_eq!(r.summary.counts["animated"], 2);
        assert_eq!(r.summary.counts["interactive"], 0);
        assert_eq!(r.summary.percent["animated"], 50.0);
        assert_eq!(r.summary.broken_by["ruffle"], 1);
        assert_eq!(r.summary.seconds_per_file, 0.25);
        let h = r.html();
        assert_eq!(h.matches("<img alt=\"\" src=\"data:image/png").count(), 6);
        assert!(h.contains("a&lt;b&gt;.swf") && !h.contains("a<b>.swf"));
        assert!(h.contains("&lt;bad&gt;"));
        assert!(r.table_text().contains("animated          2   50.0%"));
    }
}
