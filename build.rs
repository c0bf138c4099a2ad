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
}
