//! The `paved` binary: `paved up` (every function in one process) and the CLI.

/// mimalloc: request handling allocates many small, short-lived objects, where it is
/// markedly cheaper than glibc's allocator (see the catalog benchmark in docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = <paved::cli::Cli as clap::Parser>::parse();
    paved::cli::init_tracing();
    paved::cli::run(cli.command).await
}
