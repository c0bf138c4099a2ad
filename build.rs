//! Stamps `gamegen --version` with the version, the git revision and the compiled-in backends.

use std::process::Command;

fn main() {
    let rev = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    let mut backends = vec!["cpu (ndarray, flex)"];
    if std::env::var_os("CARGO_FEATURE_WGPU").is_some() {
        backends.push("wgpu");
    }
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        backends.push("cuda");
    }
    if std::env::var_os("CARGO_FEATURE_TCH").is_some() {
        backends.push("tch");
        // LibTorch is a set of shared libraries inside the PyTorch install: record where, so
        // the binary finds them without LD_LIBRARY_PATH.
        if let Some(dir) = libtorch_lib_dir() {
            println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
        }
    }
    let version = env!("CARGO_PKG_VERSION");
    let long = format!(
        "{version} (git {rev}{}; backends: {})",
        if dirty { "-dirty" } else { "" },
        backends.join(", ")
    );
    println!("cargo:rustc-env=GAMEGEN_LONG_VERSION={long}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_WGPU");
    println!("cargo:rerun-if-env-changed=LIBTORCH_LIB");
}

/// The directory of LibTorch's libraries: `LIBTORCH_LIB`, else the `lib` folder of the
/// PyTorch that `python3` imports (what torch-sys links against with `LIBTORCH_USE_PYTORCH`).
fn libtorch_lib_dir() -> Option<String> {
    if let Some(dir) = std::env::var_os("LIBTORCH_LIB") {
        return Some(dir.to_string_lossy().into_owned());
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
