//! `paved report dora` and `paved generate events`: the analytics on the command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use paved_analytics::dora::{self, DoraSettings};
use paved_analytics::generate::{GeneratorSettings, generate};
use paved_analytics::input::{self, EventTables, TableFormat};
use paved_analytics::render::{self, Format};
use paved_analytics::window::ReportWindow;

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// DORA metrics for the org, every team and every service (metrics spec version 1).
    Dora(DoraArgs),
}

#[derive(Debug, Args)]
pub struct DoraArgs {
    /// A folder with deployments, changes and incidents (and optionally services) as
    /// `<table>.parquet` or `<table>.ndjson`.
    #[arg(long, required_unless_present = "store", conflicts_with = "store")]
    pub input: Option<PathBuf>,
    /// Read the platform's store instead (`PAVED_BACKEND`; the embedded one in `--data`), with
    /// each catalog Component's owning Group as its team.
    #[arg(long)]
    pub store: bool,
    /// The embedded store's data directory, for `--store`.
    #[arg(long = "data", env = "PAVED_DATA_DIR", default_value = ".paved")]
    pub data: PathBuf,
    /// The window's first instant: a date (local midnight) or an RFC 3339 instant. Default: 90
    /// days before --to.
    #[arg(long)]
    pub from: Option<String>,
    /// The window's end, excluded. Default: today's midnight.
    #[arg(long)]
    pub to: Option<String>,
    /// The IANA time zone days, weeks and months are taken in.
    #[arg(long, default_value = "UTC")]
    pub timezone: String,
    #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
    pub format: ReportFormat,
    /// Where to write the report; standard output when absent.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// The spec's JSON output.
    Json,
    /// One self-contained page with charts, for leaders.
    Html,
    /// A summary for a chat post or a pull request.
    Md,
    /// One row per org, team and service, for spreadsheets.
    Csv,
}

impl From<ReportFormat> for Format {
    fn from(format: ReportFormat) -> Self {
        match format {
            ReportFormat::Json => Self::Json,
            ReportFormat::Html => Self::Html,
            ReportFormat::Md => Self::Markdown,
            ReportFormat::Csv => Self::Csv,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// A seeded, realistic synthetic dataset of the spec's event tables.
    Events(GenerateEventsArgs),
}

#[derive(Debug, Args)]
pub struct GenerateEventsArgs {
    #[arg(long, default_value_t = 200)]
    pub services: usize,
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// Deployment rows per day across the organisation (every environment and status).
    #[arg(long, default_value_t = 1000.0)]
    pub deploys_per_day: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The folder to write `deployments`, `changes`, `incidents` and `services` to.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = DataFormat::Parquet)]
    pub format: DataFormat,
    /// The day after the last generated day (default: today, UTC).
    #[arg(long)]
    pub end: Option<chrono::NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataFormat {
    Parquet,
    Ndjson,
}

/// A progress bar on a terminal; nothing under CI or when output is redirected.
fn progress(len: u64, what: &str) -> ProgressBar {
    let interactive = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    if !interactive {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len).with_message(what.to_owned());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

pub async fn report(command: ReportCommand) -> Result<()> {
    let ReportCommand::Dora(args) = command;
    let window = ReportWindow::parse(
        args.from.as_deref(),
        args.to.as_deref(),
        Some(&args.timezone),
        chrono::Utc::now(),
    )?;
    let bar = progress(3, "reading the event tables");
    let records = match &args.input {
        Some(_) => None,
        None => {
            let data = args.data.to_string_lossy().into_owned();
            let config = paved_wiring::BackendConfig::from_lookup(|key| match key {
                "PAVED_DATA_DIR" => Some(data.clone()),
                _ => std::env::var(key).ok(),
            })
            .map_err(anyhow::Error::msg)?;
            let backend =
                paved_wiring::Backend::open(&config, paved_wiring::WorkflowUse::AnswersTokens)
                    .await
                    .map_err(anyhow::Error::msg)?;
            let job = paved_analytics::job::DoraJob::new(
                backend.table,
                paved_analytics::job::DoraJobConfig::from_env()?,
            );
            let catalog = job.load_catalog().await?;
            let records = job.load_records(&catalog).await?;
            let platform = job
                .platform_inputs(&records, catalog, chrono::Utc::now())
                .await?;
            Some((records, platform))
        }
    };
    // polars works on its own threads and blocks: keep it off the async runtime.
    let input = args.input.clone();
    let format = args.format;
    let progress_bar = bar.clone();
    let rendered = tokio::task::spawn_blocking(move || -> Result<String> {
        let (tables, platform) = match (input, records) {
            (Some(dir), _) => (input::read_dir(&dir)?, None),
            (None, Some((records, platform))) => {
                (EventTables::from_records(&records)?, Some(platform))
            }
            (None, None) => anyhow::bail!("--input DIR or --store"),
        };
        progress_bar.inc(1);
        progress_bar.set_message("computing DORA metrics");
        let mut analysis = dora::analyse(&tables, &DoraSettings::new(window))?;
        // Over the store: the scorecards and the adoption figures too.
        if let Some(platform) = platform {
            analysis.platform = Some(platform.section(&analysis.report)?);
        }
        progress_bar.inc(1);
        progress_bar.set_message("rendering");
        Ok(render::render(&analysis, format.into())?)
    })
    .await??;
    bar.inc(1);
    bar.finish_and_clear();
    match &args.out {
        Some(path) => {
            std::fs::write(path, rendered).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{rendered}"),
    }
    Ok(())
}

pub fn generate_events(command: GenerateCommand) -> Result<()> {
    let GenerateCommand::Events(args) = command;
    anyhow::ensure!(args.services > 0, "--services must be at least 1");
    anyhow::ensure!(args.days > 0, "--days must be at least 1");
    anyhow::ensure!(
        args.deploys_per_day.is_finite() && args.deploys_per_day > 0.0,
        "--deploys-per-day must be a positive number"
    );
    let settings = GeneratorSettings {
        services: args.services,
        days: args.days,
        deploys_per_day: args.deploys_per_day,
        seed: args.seed,
        end: args.end.unwrap_or_else(|| chrono::Utc::now().date_naive()),
    };
    let bar = progress(args.services as u64, "generating services");
    let records = generate(&settings, |n| bar.inc(n));
    bar.set_message(format!("writing {}", args.out.display()));
    let format = match args.format {
        DataFormat::Parquet => TableFormat::Parquet,
        DataFormat::Ndjson => TableFormat::Ndjson,
    };
    input::write_dir(&records, &args.out, format)?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {} deployments, {} changes, {} incidents and {} services to {}",
        records.deployments.len(),
        records.changes.len(),
        records.incidents.len(),
        records.services.as_ref().map_or(0, Vec::len),
        args.out.display()
    );
    Ok(())
}
