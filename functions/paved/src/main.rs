use std::io::IsTerminal;

use clap::Parser;
use paved::cli::{Cli, Command};

/// mimalloc: request handling allocates many small, short-lived objects, where it is
/// markedly cheaper than glibc's allocator (see the catalog benchmark in docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Up(args) => paved::host::serve(args.config()?).await,
        Command::Token(args) => {
            println!("{}", paved::cli::token(args)?);
            Ok(())
        }
        Command::Catalog(command) => paved::cli::catalog(command).await,
        Command::Aws(command) => paved::cli::aws(command).await,
        #[cfg(feature = "analytics")]
        Command::Report(command) => paved::analytics::report(command).await,
        #[cfg(feature = "analytics")]
        Command::Generate(command) => paved::analytics::generate_events(command),
    }
}

/// JSON logs, one object per line (`PAVED_LOG_FORMAT=text` for people), filtered by
/// `RUST_LOG` (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let text = match std::env::var("PAVED_LOG_FORMAT").as_deref() {
        Ok("text") => true,
        Ok(_) => false,
        Err(_) => std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if text {
        builder.init();
    } else {
        builder.json().init();
    }
}
