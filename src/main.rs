//! The `gamegen` command line. Each subcommand lives in its own file under `src/cli/`; the work
//! itself is done by `gamegen-native` and `gamegen-core`.

mod cli;

use clap::Parser;

fn main() {
    init_logging();
    let args = cli::Cli::parse();
    if let Err(err) = cli::run(args) {
        // One clear line, never a panic: the chain of causes joined on one line.
        let msg = err
            .chain()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
}

/// Sends the libraries' log records (Burn, cubecl, wgpu, tokenizers, ...) to stderr, filtered
/// by `RUST_LOG` (`RUST_LOG=warn`, `RUST_LOG=wgpu_core=info,cubecl=debug`, ...).
///
/// Without `RUST_LOG` nothing is logged: the CLI's own output (progress bars, summaries, the
/// one error line) is the user interface, and library chatter such as wgpu's adapter probing
/// would only bury it. An unparsable `RUST_LOG` is reported once and otherwise ignored, so a
/// typo in a debugging aid never stops a command.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(spec) if !spec.trim().is_empty() => match EnvFilter::try_new(&spec) {
            Ok(filter) => filter,
            Err(err) => {
                eprintln!("warning: ignoring RUST_LOG={spec:?}: {err}");
                EnvFilter::new("off")
            }
        },
        _ => EnvFilter::new("off"),
    };
    // Fails only when a logger is already installed, which cannot happen this early.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
