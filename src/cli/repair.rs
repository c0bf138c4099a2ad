//! `gamegen repair`: fix the length field and frame count of SWF files in place.

use anyhow::bail;
use clap::Args as ClapArgs;
use gamegen_core::swf::repair::repair;
use std::path::PathBuf;

#[derive(ClapArgs, Debug)]
#[command(after_help = "\
Rewrites each file (atomically: temporary file + rename) with its header's length field set to
the real uncompressed size and its frame count set to the main timeline's ShowFrame count. Tags
are not touched. FWS and CWS files (CWS is recompressed); ZWS is not supported yet. Files whose
header does not parse (verdict broken) cannot be repaired.

Exit status: 0 when every file was repaired or already consistent, 1 otherwise.

Examples:
  gamegen repair out/000.swf
  gamegen repair generated/*.swf --dry-run")]
pub struct Args {
    /// SWF files to repair.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Report what would change without writing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object per file.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut failed = 0;
    for path in &args.files {
        let shown = path.display().to_string();
        let result = std::fs::read(path)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|bytes| repair(&bytes, 64 << 20).map_err(|e| e.to_string()))
            .and_then(|r| {
                if !r.changes.is_empty() && !args.dry_run {
                    gamegen_native::fsutil::write_atomic(path, &r.bytes)
                        .map_err(|e| format!("cannot write: {e}"))?;
                }
                Ok(r.changes)
            });
        let (status, detail, changes) = match &result {
            Ok(c) if c.is_empty() => ("ok", "nothing to fix".to_string(), c.clone()),
            Ok(c) => (
                if args.dry_run { "would-fix" } else { "fixed" },
                c.join(", "),
                c.clone(),
            ),
            Err(e) => {
                failed += 1;
                ("error", e.clone(), Vec::new())
            }
        };
        if args.json {
            let v = serde_json::json!({"path": shown, "status": status, "changes": changes,
                "error": result.as_ref().err()});
            println!("{v}");
        } else {
            println!("{status:<9} {shown}  {detail}");
        }
    }
    if failed > 0 {
        bail!("{failed} file(s) could not be repaired");
    }
    Ok(())
}
