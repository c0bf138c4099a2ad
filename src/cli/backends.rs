//! `gamegen backends`: what can compute here, now.

use clap::Args as ClapArgs;

#[derive(ClapArgs, Debug)]
#[command(after_help = "Examples:\n  gamegen backends\n  gamegen backends --json")]
pub struct Args {
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let found = gamegen_native::backend::probe_all();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    for b in &found {
        let state = if b.usable { "usable" } else { "unavailable" };
        println!("{:<6} {:<11} {}", b.name, state, b.detail);
        for d in &b.devices {
            println!("         - {d}");
        }
    }
    Ok(())
}
