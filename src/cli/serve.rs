//! `gamegen serve`: the demo pages over HTTP.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args as ClapArgs;
use gamegen_native::serve::Server;

#[derive(ClapArgs, Debug)]
#[command(
    after_help = "Examples:\n  gamegen serve\n  gamegen serve --port 0 --dir www   \
                        # any free port; the URL is printed\n  \
                        gamegen serve --host 0.0.0.0     # expose on the network (explicit only)"
)]
pub struct Args {
    /// TCP port; 0 picks a free one.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Directory to serve.
    #[arg(long, default_value = "www")]
    pub dir: PathBuf,
    /// Address to bind. Loopback by default; anything else must be asked for.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let server = Server::bind(&args.dir, args.host, args.port)?;
    let addr = server.local_addr()?;
    println!("http://{addr}/");
    if !args.host.is_loopback() {
        eprintln!("warning: serving on {addr}, reachable from other machines");
    }
    server.run()?;
    Ok(())
}
