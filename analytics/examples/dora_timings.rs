//! The DORA report over a folder, with each stage's time (for tuning the computation):
//! `cargo run --profile profiling -p paved-analytics --example dora_timings -- DIR FROM TO [OUT]`,
//! OUT receiving the JSON report (to compare with `scripts/bench/dora/compare.py`).
use paved_analytics::dora::{self, DoraSettings};
use paved_analytics::input;
use paved_analytics::window::ReportWindow;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter("paved_analytics=debug")
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let (dir, from, to, out) = match args.as_slice() {
        [_, dir, from, to] => (dir, from, to, None),
        [_, dir, from, to, out] => (dir, from, to, Some(out)),
        _ => return Err("usage: dora_timings DIR FROM TO [OUT]".into()),
    };
    let window = ReportWindow::parse(Some(from), Some(to), None, chrono::Utc::now())?;
    let started = std::time::Instant::now();
    let tables = input::read_dir(std::path::Path::new(dir))?;
    let report = dora::compute(&tables, &DoraSettings::new(window))?;
    eprintln!(
        "{} deployments, {} services in {:.2} s",
        report.org.deployments,
        report.services.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(out) = out {
        std::fs::write(out, serde_json::to_vec(&report)?)?;
    }
    Ok(())
}
