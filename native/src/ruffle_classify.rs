//! Level 3 of SWF validation: what the Ruffle web player actually shows, in headless Chromium.
//!
//! `ruffle_core` is not on crates.io, so the player is the npm build of Ruffle driven by Node +
//! playwright-core (`native/js/ruffle-classify.mjs`, embedded in the binary and written to a
//! temporary directory at run time). This module finds what the driver needs (node, the npm
//! packages, chromium) and says which is missing in one line, streams jobs and observations
//! over the driver's stdin/stdout as JSON Lines, and turns observations into [`Class`]es: the
//! rules live here, in Rust and unit-tested, not in the page.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The driver script, shipped inside the binary so `gamegen` works outside the source tree.
const DRIVER: &str = include_str!("../js/ruffle-classify.mjs");

/// Environment variables that override where the tools are (flags override these).
pub const ENV_CHROMIUM: &str = "GAMEGEN_CHROMIUM";
pub const ENV_NODE: &str = "GAMEGEN_NODE";
pub const ENV_WWW: &str = "GAMEGEN_WWW";
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// Why classification could not run. Each message is one line saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "chromium not found at {0} (install Debian's chromium, or point --chromium / GAMEGEN_CHROMIUM at one)"
    )]
    ChromiumMissing(PathBuf),
    #[error("node not found as `{0}` (install Node.js, or point --node / GAMEGEN_NODE at it)")]
    NodeMissing(PathBuf),
    #[error(
        "the npm packages @ruffle-rs/ruffle and playwright-core were not found {0} (run `npm ci` in www/, or point --www / GAMEGEN_WWW at the directory holding node_modules)"
    )]
    PackagesMissing(String),
    #[error("the Ruffle driver failed: {0}")]
    Driver(String),
    #[error("the Ruffle driver: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the tools are and how hard to try.
#[derive(Clone, Debug)]
pub struct Config {
    pub chromium: PathBuf,
    pub node: PathBuf,
    /// A directory holding `node_modules/@ruffle-rs/ruffle` and `node_modules/playwright-core`.
    pub www: PathBuf,
    /// Pages working in parallel.
    pub jobs: usize,
    /// Outer limit per file; a page that exceeds it is thrown away and recreated.
    pub timeout_ms: u64,
    /// Ruffle's own script limit (`maxExecutionDuration`, seconds).
    pub max_execution_secs: f64,
}

impl Config {
    /// Resolve the tools from flags, then environment variables, then defaults, and check
    /// that each exists before a browser is started.
    pub fn resolve(
        chromium: Option<PathBuf>,
        node: Option<PathBuf>,
        www: Option<PathBuf>,
        jobs: usize,
        timeout_ms: u64,
    ) -> Result<Self, Error> {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let chromium = chromium
            .or_else(|| env(ENV_CHROMIUM))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM));
        if !chromium.is_file() {
            return Err(Error::ChromiumMissing(chromium));
        }
        let www = match www.or_else(|| env(ENV_WWW)) {
            Some(dir) if has_packages(&dir) => dir,
            Some(dir) => return Err(Error::PackagesMissing(format!("in {}", dir.display()))),
            None => find_www().ok_or_else(|| {
                Error::PackagesMissing(
                    "next to the gamegen binary or the current directory".to_string(),
                )
            })?,
        };
        let node = node
            .or_else(|| env(ENV_NODE))
            .unwrap_or_else(|| PathBuf::from("node"));
        let node_ok = Command::new(&node)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !node_ok {
            return Err(Error::NodeMissing(node));
        }
        Ok(Self {
            chromium,
            node,
            www,
            jobs: jobs.max(1),
            timeout_ms,
            max_execution_secs: 1.0,
        })
    }
}

fn has_packages(dir: &Path) -> bool {
    dir.join("node_modules/@ruffle-rs/ruffle/ruffle.js")
        .is_file()
        && dir
            .join("node_modules/playwright-core/package.json")
            .is_file()
}

/// Look for `www/node_modules` (or `node_modules`) in the ancestors of the binary (a build in
/// `target/release` finds the project's `www/`) and of the current directory.
fn find_www() -> Option<PathBuf> {
    let mut starts = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        starts.push(exe.canonicalize().unwrap_or(exe));
    }
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    starts.iter().find_map(|s| {
        s.ancestors()
            .flat_map(|a| [a.join("www"), a.to_path_buf()])
            .find(|d| has_packages(d))
    })
}

/// One file to run, with what levels 1-2 read from its header (to size the player and step
/// its clock at the movie's own frame rate).
#[derive(Clone, Debug, Serialize)]
pub struct Job {
    pub path: PathBuf,
    pub width: f64,
    pub height: f64,
    pub fps: f64,
}

/// What the driver saw for one file (see the page's `classify` in the driver).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Observation {
    pub loaded: bool,
    pub panic: bool,
    /// Ruffle panicked only in the run with synthetic input.
    pub input_panic: bool,
    /// The outer per-file timeout fired (a hung player).
    pub timeout: bool,
    pub error: Option<String>,
    /// Canvas size in pixels.
    pub canvas: Option<[u32; 2]>,
    /// PNG data URLs of the first and last sampled frame (run without input).
    pub thumbs: Vec<Option<String>>,
    /// Per sampled frame: its colour when every pixel has it, else null.
    pub flat: Vec<Option<String>>,
    /// Pixels changed between the first sample and each later one (no input).
    pub over_time: Vec<i64>,
    /// Most pixels changed at one sampled time, input run vs the first no-input run.
    pub input_diff: Option<i64>,
    /// The same, second no-input run vs the first (nondeterminism); only when input changed.
    pub baseline_diff: Option<i64>,
    /// Input run vs the second no-input run.
    pub input_vs_rerun: Option<i64>,
    /// Console error lines (Ruffle's `ERROR core/...`, panics).
    pub console: Vec<String>,
    /// Requests the file tried to make; all were blocked.
    pub blocked: Vec<String>,
    /// Ruffle's movie metadata.
    pub metadata: Option<serde_json::Value>,
    /// Wall time for this file in the driver.
    pub ms: u64,
}

/// The automatic classes, from worst to best.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Levels 1-2 say broken, or Ruffle rejects the file, panics or hangs.
    Broken,
    /// One flat colour in every sampled frame, and input changes nothing.
    Blank,
    /// Something drawn, nothing changes over time or with input (includes stuck loaders).
    Static,
    /// Pixels change over time without input.
    Animated,
    /// Synthetic keys and clicks change the picture beyond run-to-run noise.
    Interactive,
}

impl Class {
    pub const ALL: [Class; 5] = [
        Class::Broken,
        Class::Blank,
        Class::Static,
        Class::Animated,
        Class::Interactive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Broken => "broken",
            Class::Blank => "blank",
            Class::Static => "static",
            Class::Animated => "animated",
            Class::Interactive => "interactive",
        }
    }
}

/// The class of an observed file and a short reason. Input beats time: a file that animates
/// and answers keys is interactive. Interactive needs input to change more than a second
/// no-input run changes (twice the noise, both against the first run and against the rerun),
/// so nondeterministic files (random numbers, timers) are not mistaken for games.
pub fn classify(o: &Observation) -> (Class, String) {
    if o.timeout {
        return (Class::Broken, "the player hung (outer timeout)".into());
    }
    if !o.loaded {
        let why = o
            .error
            .clone()
            .unwrap_or_else(|| "Ruffle did not load it".into());
        return (Class::Broken, why);
    }
    if o.panic || o.input_panic {
        // Ruffle's message: "panicked at FILE:LINE:COL:\nWHAT"; keep where and what.
        let what = o
            .console
            .iter()
            .find(|l| l.starts_with("panicked at"))
            .map(|l| l.lines().take(2).collect::<Vec<_>>().join(" "))
            .map_or(String::new(), |m| format!(": {m}"));
        return (Class::Broken, format!("Ruffle panicked{what}"));
    }
    if o.flat.is_empty() || o.canvas.is_none() {
        return (Class::Broken, "no frame could be read back".into());
    }
    if let Some(input) = o.input_diff.filter(|&d| d > 0) {
        let noise = o.baseline_diff.unwrap_or(0);
        let rerun = o.input_vs_rerun.unwrap_or(input);
        if noise >= 0 && input > 2 * noise && rerun > 2 * noise {
            return (
                Class::Interactive,
                format!("input changed {input} px (no-input rerun: {noise} px)"),
            );
        }
    }
    let moved = o.over_time.iter().copied().max().unwrap_or(0);
    if moved > 0 {
        return (
            Class::Animated,
            format!("{moved} px changed over time without input"),
        );
    }
    let first = o.flat.first().cloned().flatten();
    if let Some(colour) = first
        && o.flat.iter().all(|f| f.as_deref() == Some(colour.as_str()))
    {
        return (Class::Blank, format!("flat {colour}"));
    }
    (
        Class::Static,
        "drawn, no change over time or with input".into(),
    )
}

/// Run the driver on `jobs`, calling `on_result(index, observation)` as each file finishes (in
/// completion order). `on_ready` runs once the browser is up, so callers can start a clock
/// that measures files, not start-up.
pub fn run(
    cfg: &Config,
    jobs: &[Job],
    mut on_ready: impl FnMut(),
    mut on_result: impl FnMut(usize, Observation),
) -> Result<(), Error> {
    let dir = std::env::temp_dir().join(format!("gamegen-ruffle-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("ruffle-classify.mjs");
    std::fs::write(&script, DRIVER)?;
    let result = run_script(cfg, &script, jobs, &mut on_ready, &mut on_result);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_script(
    cfg: &Config,
    script: &Path,
    jobs: &[Job],
    on_ready: &mut dyn FnMut(),
    on_result: &mut dyn FnMut(usize, Observation),
) -> Result<(), Error> {
    let mut child = Command::new(&cfg.node)
        .arg(script)
        .arg("--www")
        .arg(&cfg.www)
        .arg("--chromium")
        .arg(&cfg.chromium)
        .args(["--jobs", &cfg.jobs.to_string()])
        .args(["--timeout-ms", &cfg.timeout_ms.to_string()])
        .args(["--max-exec", &cfg.max_execution_secs.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NodeMissing(cfg.node.clone()),
            _ => Error::Io(e),
        })?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(Error::Driver("no pipes to the driver".into()));
    };
    // Drain stderr on a thread (a full pipe would block the driver) and keep its tail.
    let err_tail = std::thread::spawn(move || {
        let mut tail: Vec<String> = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
        tail
    });
    // Feed every job at once from a thread; the driver queues them and hands them to pages.
    let lines: Vec<String> = jobs
        .iter()
        .enumerate()
        .map(|(id, j)| {
            serde_json::json!({"id": id, "path": j.path, "width": j.width, "height": j.height, "fps": j.fps})
                .to_string()
        })
        .collect();
    let feeder = std::thread::spawn(move || {
        for l in lines {
            if writeln!(stdin, "{l}").is_err() {
                break;
            }
        }
        // Dropping stdin closes it: the driver finishes once the queue is empty.
    });
    let mut done = 0usize;
    let mut failure: Option<String> = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let v: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(_) => continue, // stray output from a library: not part of the protocol
        };
        if let Some(msg) = v.get("fatal").and_then(|m| m.as_str()) {
            failure = Some(msg.to_string());
            break;
        }
        if v.get("ready").is_some() {
            on_ready();
            continue;
        }
        let Some(id) = v.get("id").and_then(|i| i.as_u64()).map(|i| i as usize) else {
            continue;
        };
        if id >= jobs.len() {
            continue;
        }
        let obs: Observation = serde_json::from_value(v)
            .map_err(|e| Error::Driver(format!("unreadable result for file {id}: {e}")))?;
        on_result(id, obs);
        done += 1;
    }
    let _ = feeder.join();
    let status = child.wait()?;
    let tail = err_tail.join().unwrap_or_default();
    if let Some(msg) = failure {
        return Err(Error::Driver(msg));
    }
    if done < jobs.len() {
        let last = tail
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| format!("exit status {status}"));
        return Err(Error::Driver(format!(
            "it stopped after {done} of {} files: {last}",
            jobs.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drawn() -> Observation {
        Observation {
            loaded: true,
            canvas: Some([320, 240]),
            flat: vec![None, None, None],
            over_time: vec![0, 0],
            input_diff: Some(0),
            ..Observation::default()
        }
    }

    #[test]
    fn classes_follow_the_rules() {
        assert_eq!(classify(&Observation::default()).0, Class::Broken);
        let mut o = drawn();
        o.panic = true;
        o.console = vec!["panicked at core/src/x.rs:1:2:\nFailed to compile\n\nStack:".into()];
        assert_eq!(
            classify(&o),
            (
                Class::Broken,
                "Ruffle panicked: panicked at core/src/x.rs:1:2: Failed to compile".into()
            )
        );
        let mut o = drawn();
        o.timeout = true;
        assert_eq!(classify(&o).0, Class::Broken);

        assert_eq!(classify(&drawn()).0, Class::Static);
        let mut o = drawn();
        o.flat = vec![Some("#ffffff".into()); 3];
        assert_eq!(classify(&o).0, Class::Blank);
        // A flat colour that changes over time is not blank.
        o.flat[2] = Some("#000000".into());
        o.over_time = vec![0, 76800];
        assert_eq!(classify(&o).0, Class::Animated);

        let mut o = drawn();
        o.over_time = vec![0, 12];
        assert_eq!(classify(&o).0, Class::Animated);
        o.input_diff = Some(300);
        o.baseline_diff = Some(0);
        o.input_vs_rerun = Some(300);
        assert_eq!(classify(&o).0, Class::Interactive);
    }

    #[test]
    fn nondeterminism_is_not_interactivity() {
        let mut o = drawn();
        o.over_time = vec![40, 50];
        o.input_diff = Some(90);
        o.baseline_diff = Some(80);
        o.input_vs_rerun = Some(85);
        assert_eq!(classify(&o).0, Class::Animated);
        o.input_diff = Some(5000);
        o.input_vs_rerun = Some(4900);
        assert_eq!(classify(&o).0, Class::Interactive);
        // A rerun that panicked gives no baseline: not enough to call it interactive.
        o.baseline_diff = Some(-1);
        assert_eq!(classify(&o).0, Class::Animated);
    }

    #[test]
    fn observations_parse_from_driver_json() {
        let v = r##"{"id":3,"loaded":true,"panic":false,"error":null,"canvas":[320,233],
            "thumbs":["data:image/png;base64,AA"],"flat":["#ffffff",null],"overTime":[0],
            "inputDiff":0,"baselineDiff":null,"console":[],"blocked":["http://x/"],"ms":300}"##;
        let o: Observation = serde_json::from_str(v).unwrap();
        assert_eq!(o.canvas, Some([320, 233]));
        assert_eq!(o.flat[0].as_deref(), Some("#ffffff"));
        assert_eq!(o.blocked.len(), 1);
        assert_eq!(classify(&o).0, Class::Static);
    }

    #[test]
    fn a_missing_chromium_is_one_clear_error() {
        let e =
            Config::resolve(Some("/nonexistent/chromium".into()), None, None, 1, 1000).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("/nonexistent/chromium"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}
