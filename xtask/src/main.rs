//! The project's two entry points, as in the README:
//!
//! - `cargo xtask demo`: set up everything (wasm32 target, wasm-bindgen-cli at the version in
//!   Cargo.lock, npm packages), build, and serve the demo, printing its URL.
//! - `cargo xtask test`: set up what tests need (plus Debian `chromium` when missing) and run every
//!   check: fmt, clippy, cargo tests, the CUDA build, the wasm build, the browser tests.
//!
//! Plain std only, so that the xtask itself builds in seconds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const WASM_PROFILE: &str = "wasm-release";

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("setup") => setup(false),
        Some("build-web") => build_web(),
        Some("build-torch") => build_torch(),
        _ => {
            eprintln!(
                "usage: cargo xtask demo [--port N]   set up, build and serve the demo\n       \
                 cargo xtask test [--skip STEP]  set up and run every check\n       \
                 cargo xtask setup               only install what the project needs\n       \
                 cargo xtask build-web           only build the web site: wasm into www/pkg, models \
                 into www/models, the Ruffle player into www/ruffle\n       \
                 cargo xtask build-torch         build gamegen with the LibTorch backend \
                 (--backend tch), installing PyTorch into target/torch-venv"
            );
            bail!("unknown or missing command");
        }
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

/// Run a command, echoing it, failing with its name on a non-zero exit.
fn sh(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: $ {}", describe(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{}`", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed with {status}", describe(cmd));
    }
    Ok(())
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn output(cmd: &mut Command) -> Option<String> {
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The version of `wasm-bindgen` recorded in Cargo.lock: the CLI must match it exactly.
fn locked_wasm_bindgen_version() -> Result<String> {
    let lock = std::fs::read_to_string("Cargo.lock").context("cannot read Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\""
            && let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
        {
            return Ok(v.trim_matches('"').to_string());
        }
    }
    bail!("wasm-bindgen is not in Cargo.lock")
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0")
}

/// The PyTorch release whose LibTorch burn-tch's `torch-sys` is written against.
const TORCH_VERSION: &str = "2.9.0";
/// Where `build-torch` keeps its Python environment (ignored by git, about 7 GB: PyPI's Linux
/// wheel of torch brings NVIDIA's CUDA libraries, which LibTorch links even on the CPU).
const TORCH_VENV: &str = "target/torch-venv";

/// Install PyTorch from PyPI into [`TORCH_VENV`] and build `gamegen` with the `tch` feature
/// against its LibTorch (the binary records the library path, so it runs without
/// `LD_LIBRARY_PATH`).
fn build_torch() -> Result<()> {
    let venv = project_root().join(TORCH_VENV);
    let python = venv.join("bin/python3");
    let has_torch = output(
        Command::new(&python).args(["-c", "import torch; print(torch.__version__.split('+')[0])"]),
    )
    .is_some_and(|v| v.trim() == TORCH_VERSION);
    if !has_torch {
        if !python.exists() {
            sh(Command::new("python3").args(["-m", "venv"]).arg(&venv))
                .context("creating the PyTorch environment needs python3 with venv")?;
        }
        sh(Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            &format!("torch=={TORCH_VERSION}"),
        ]))?;
    }
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    sh(cargo()
        .args(["build", "--release", "--features", "tch"])
        .env("PATH", path)
        .env("VIRTUAL_ENV", &venv)
        .env("LIBTORCH_USE_PYTORCH", "1"))?;
    eprintln!("xtask: target/release/gamegen has --backend tch (gamegen backends lists it)");
    Ok(())
}

/// Install what both entry points need. `for_tests` adds Debian's chromium.
fn setup(for_tests: bool) -> Result<()> {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == WASM_TARGET) {
        sh(Command::new("rustup").args(["target", "add", WASM_TARGET]))?;
    }
    let want = locked_wasm_bindgen_version()?;
    let have = output(Command::new("wasm-bindgen").arg("--version")).unwrap_or_default();
    if !have.split_whitespace().any(|w| w == want) {
        sh(cargo().args(["install", "wasm-bindgen-cli", "--version", &want]))?;
    }
    if !Path::new("www/node_modules/@ruffle-rs/ruffle").exists()
        || !Path::new("www/node_modules/playwright-core").exists()
    {
        sh(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir("www"))?;
    }
    if for_tests && !Path::new("/usr/bin/chromium").exists() {
        if !is_root() {
            bail!(
                "the browser tests need Debian's chromium at /usr/bin/chromium; install it with \
                 `sudo apt-get install -y chromium` and run again"
            );
        }
        let apt = |args: &[&str]| {
            sh(Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive"))
        };
        if apt(&["install", "-y", "--no-install-recommends", "chromium"]).is_err() {
            apt(&["update"])?;
            apt(&["install", "-y", "--no-install-recommends", "chromium"])?;
        }
    }
    Ok(())
}

/// Build the wasm crate twice and run wasm-bindgen into `www/pkg`, and copy the shipped models
/// into `www/models` and the Ruffle player into `www/ruffle`, so the pages fetch everything from
/// the same origin.
///
/// The two builds differ only in their target features: `gamegen_wasm_bg.wasm` uses 128-bit SIMD
/// (every current browser), `gamegen_wasm_relaxed_bg.wasm` adds relaxed SIMD (fused
/// multiply-adds in the CPU kernels; `www/js/backend.js` picks it where the browser validates
/// it). Both share one JavaScript glue file, which is checked to be the same.
fn build_web() -> Result<()> {
    let baseline = build_wasm(&target_dir(), None)?;
    bindgen(&baseline, Path::new("www/pkg"))?;
    let relaxed_dir = relaxed_target_dir();
    let relaxed = build_wasm(&relaxed_dir, Some(RELAXED_RUSTFLAGS))?;
    let relaxed_pkg = relaxed_dir.join("pkg");
    bindgen(&relaxed, &relaxed_pkg)?;
    let glue = |dir: &Path| -> Result<String> {
        let text = std::fs::read_to_string(dir.join("gamegen_wasm.js"))
            .with_context(|| format!("reading the glue in {}", dir.display()))?;
        // Comments name closure table indices, which differ between builds; the code may not.
        Ok(text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n"))
    };
    if glue(Path::new("www/pkg"))? != glue(&relaxed_pkg)? {
        bail!(
            "the relaxed-SIMD wasm build needs different JavaScript glue than the baseline \
             build (compare www/pkg/gamegen_wasm.js with {}/gamegen_wasm.js)",
            relaxed_pkg.display()
        );
    }
    std::fs::copy(
        relaxed_pkg.join("gamegen_wasm_bg.wasm"),
        "www/pkg/gamegen_wasm_relaxed_bg.wasm",
    )?;
    copy_models(Path::new("models"), Path::new("www/models"))?;
    copy_ruffle(
        Path::new("www/node_modules/@ruffle-rs/ruffle"),
        Path::new("www/ruffle"),
    )?;
    Ok(())
}

/// The wasm target's flags for the relaxed-SIMD build (an environment variable that takes the
/// place of `.cargo/config.toml`'s `target.wasm32-unknown-unknown.rustflags`).
const RELAXED_RUSTFLAGS: (&str, &str) = (
    "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
    "-C target-feature=+simd128,+relaxed-simd",
);

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

/// The relaxed-SIMD build's own target directory, so neither wasm build invalidates the other.
fn relaxed_target_dir() -> PathBuf {
    target_dir().join("wasm-relaxed")
}

/// `cargo build` of the wasm crate into `target_dir`, with `flags` (variable, value) for the
/// wasm target when given; returns the built module's path.
fn build_wasm(target_dir: &Path, flags: Option<(&str, &str)>) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "-p", "gamegen-wasm", "--target", WASM_TARGET])
        .args(["--profile", WASM_PROFILE])
        .env("CARGO_TARGET_DIR", target_dir);
    if let Some((name, value)) = flags {
        cmd.env(name, value);
    }
    sh(&mut cmd)?;
    Ok(target_dir
        .join(WASM_TARGET)
        .join(WASM_PROFILE)
        .join("gamegen_wasm.wasm"))
}

/// wasm-bindgen's web glue and processed module for `wasm` into `out_dir`.
fn bindgen(wasm: &Path, out_dir: &Path) -> Result<()> {
    sh(Command::new("wasm-bindgen")
        .arg(wasm)
        .args(["--target", "web", "--no-typescript"])
        .arg("--out-dir")
        .arg(out_dir))
}

/// Copy the Ruffle web player from its npm package into `www/ruffle`, so the studio serves it
/// from its own origin: `ruffle.js`, its `core.ruffle.*.js` chunks, the two wasm builds (Ruffle
/// picks one by the browser's wasm features) and the licences. Source maps stay behind. Stale
/// files (an older Ruffle's hashed names) are removed.
fn copy_ruffle(from: &Path, to: &Path) -> Result<()> {
    if !from.join("ruffle.js").is_file() {
        bail!(
            "{} is missing: run `npm ci` in www/ (or `cargo xtask setup`)",
            from.display()
        );
    }
    let wanted = |name: &str| {
        name == "ruffle.js"
            || name == "package.json"
            || name.starts_with("LICENSE")
            || (name.starts_with("core.ruffle.") && name.ends_with(".js"))
            || name.ends_with(".wasm")
    };
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(to)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && !from.join(&name).is_file() {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("cannot remove {}", entry.path().display()))?;
        }
    }
    let mut copied = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && wanted(&name) {
            std::fs::copy(entry.path(), to.join(&name))
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
            copied += 1;
        }
    }
    eprintln!("xtask: Ruffle player in {}: {copied} files", to.display());
    Ok(())
}

/// Files a page needs from a model directory (training logs and plots stay behind). ByteCraft
/// checkpoints add their tokenizer files.
fn is_model_file(name: &str) -> bool {
    name == "config.json"
        || name.ends_with(".safetensors")
        || name == "README.md"
        || name == "tokenizer.json"
        || name == "tokenizer_config.json"
        || name == "byte_merges.json"
}

/// Copy the shipped models the pages load: `frame-ae`, every `world-*` and `bytecraft-*`
/// directory that has a `config.json` (a directory still being written by a first training run
/// has none yet). Writes `www/models/index.json` listing the world and ByteCraft models copied,
/// so the pages offer only those without probing for missing files. Stale models in
/// `www/models` are removed.
fn copy_models(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    let mut dirs: Vec<String> = Vec::new();
    if from.exists() {
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let trained = entry.path().join("config.json").is_file();
            let wanted = name == "frame-ae"
                || ((name.starts_with("world-") || name.starts_with("bytecraft-")) && trained);
            if entry.file_type()?.is_dir() && wanted {
                dirs.push(name);
            }
        }
    }
    dirs.sort();
    for entry in std::fs::read_dir(to)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if (name.starts_with("world-") || name.starts_with("bytecraft-")) && !dirs.contains(&name) {
            std::fs::remove_dir_all(entry.path())
                .with_context(|| format!("cannot remove {}", entry.path().display()))?;
        }
    }
    for name in &dirs {
        let (src, dest) = (from.join(name), to.join(name));
        std::fs::create_dir_all(&dest)?;
        for entry in std::fs::read_dir(&src)? {
            let entry = entry?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_file() && is_model_file(&file) {
                std::fs::copy(entry.path(), dest.join(&file))
                    .with_context(|| format!("cannot copy {}", entry.path().display()))?;
            }
        }
    }
    let listed = |prefix: &str| -> String {
        dirs.iter()
            .filter(|d| d.starts_with(prefix))
            .map(|d| format!("\"{d}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    std::fs::write(
        to.join("index.json"),
        format!(
            "{{\"world\": [{}], \"bytecraft\": [{}]}}\n",
            listed("world-"),
            listed("bytecraft-")
        ),
    )?;
    eprintln!("xtask: models in {}: {}", to.display(), dirs.join(", "));
    Ok(())
}

fn demo(args: &[String]) -> Result<()> {
    let mut port = "8080".to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => port = it.next().context("--port needs a value")?.clone(),
            other => bail!("unknown option {other}"),
        }
    }
    setup(false)?;
    build_web()?;
    sh(cargo().args(["build", "--release", "--bin", "gamegen"]))?;
    eprintln!("xtask: serving the demo; open the URL below (Ctrl-C to stop)");
    sh(Command::new("target/release/gamegen").args(["serve", "--dir", "www", "--port", &port]))
}

/// Runs the named steps of `cargo xtask test`, timing each so docs/ci.md can give the
/// breakdown. With `keep_going`, a failed step is recorded and the next one still runs.
struct Steps {
    skip: Vec<String>,
    keep_going: bool,
    failed: Vec<String>,
    timings: Vec<(String, f64)>,
}

impl Steps {
    fn run(&mut self, name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
        if self.skip.iter().any(|s| s == name) {
            eprintln!("xtask: skipping {name}");
            return Ok(());
        }
        let t = Instant::now();
        eprintln!("xtask: == {name}");
        let result = f().with_context(|| format!("step `{name}`"));
        let secs = t.elapsed().as_secs_f64();
        self.timings.push((name.to_string(), secs));
        match result {
            Ok(()) => {
                eprintln!("xtask: == {name} passed in {secs:.0} s");
                Ok(())
            }
            Err(e) if self.keep_going => {
                eprintln!("xtask: == {name} FAILED in {secs:.0} s: {e:#}");
                self.failed.push(name.to_string());
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

fn test(args: &[String]) -> Result<()> {
    let mut steps = Steps {
        skip: Vec::new(),
        keep_going: false,
        failed: Vec::new(),
        timings: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--skip" => steps
                .skip
                .push(it.next().context("--skip needs a step name")?.clone()),
            "--keep-going" => steps.keep_going = true,
            other => bail!("unknown option {other}"),
        }
    }
    let t = Instant::now();
    steps.run("setup", || setup(true))?;
    steps.run("fmt", || sh(cargo().args(["fmt", "--all", "--check"])))?;
    // The wasm crate is linted for its real target only: built for the host it would drag in
    // the whole native wgpu stack (hundreds of crates) that nothing else needs.
    steps.run("clippy", || {
        sh(cargo().args([
            "clippy",
            "--workspace",
            "--exclude",
            "gamegen-wasm",
            "--all-targets",
            "--release",
            "--",
            "-D",
            "warnings",
        ]))?;
        sh(cargo().args([
            "clippy",
            "-p",
            "gamegen-wasm",
            "--target",
            WASM_TARGET,
            "--profile",
            WASM_PROFILE,
            "--",
            "-D",
            "warnings",
        ]))?;
        // The relaxed-SIMD build compiles code the baseline one does not (see build_web).
        sh(cargo()
            .env("CARGO_TARGET_DIR", relaxed_target_dir())
            .env(RELAXED_RUSTFLAGS.0, RELAXED_RUSTFLAGS.1)
            .args(["clippy", "-p", "gamegen-wasm", "--target", WASM_TARGET])
            .args(["--profile", WASM_PROFILE, "--", "-D", "warnings"]))
    })?;
    steps.run("test", || {
        // setup() installed chromium and the npm packages: tests that need them must not skip.
        sh(cargo().env("GAMEGEN_REQUIRE_BROWSER", "1").args([
            "test",
            "--workspace",
            "--exclude",
            "gamegen-wasm",
            "--release",
        ]))
    })?;
    steps.run("cuda-build", || {
        sh(cargo().args(["build", "--release", "--features", "cuda"]))
    })?;
    steps.run("wasm-build", build_web)?;
    steps.run("browser", || {
        sh(cargo().args(["build", "--release", "--bin", "gamegen"]))?;
        sh(Command::new("node").arg("tests/browser/run.mjs"))
    })?;
    eprintln!("xtask: step timings:");
    for (name, secs) in &steps.timings {
        eprintln!("xtask:   {name:<11} {:>6.1} min", secs / 60.0);
    }
    let total = t.elapsed().as_secs_f64() / 60.0;
    if !steps.failed.is_empty() {
        bail!(
            "{} step(s) failed after {total:.1} min: {}",
            steps.failed.len(),
            steps.failed.join(", ")
        );
    }
    eprintln!("xtask: all checks passed in {total:.1} min");
    Ok(())
}
