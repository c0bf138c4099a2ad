//! The `gamegen` command line. Each subcommand lives in its own file under `src/cli/`; the work
//! itself is done by `gamegen-native` and `gamegen-core`.

mod cli;

use clap::Parser;

fn main() {
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
