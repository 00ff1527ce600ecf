//! The command line: `paved up`, `paved token`, and client commands for a running paved.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use paved_core::catalog::{EntityRef, RefDefaults};

use crate::client::Client;
use crate::host::HostConfig;

#[derive(Debug, Parser)]
#[command(
    name = "paved",
    version,
    about = "paved: an internal developer platform. `paved up` runs it all locally."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every function of the platform in this process (embedded backend by default).
    Up(UpArgs),
    /// Set up the AWS backend's resources.
    #[command(subcommand)]
    Aws(AwsCommand),
    /// Print a development token signed with the local secret.
    Token(TokenArgs),
    /// Talk to a running paved's catalog.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Reports for leaders, computed from event tables (with `--features analytics`).
    #[cfg(feature = "analytics")]
    #[command(subcommand)]
    Report(crate::analytics::ReportCommand),
    /// Synthetic data for demos and benchmarks (with `--features analytics`).
    #[cfg(feature = "analytics")]
    #[command(subcommand)]
    Generate(crate::analytics::GenerateCommand),
}

#[derive(Debug, Args)]
pub struct DataDir {
    /// Where paved keeps its SQLite file and generated secret.
    #[arg(long = "data", env = "PAVED_DATA_DIR", default_value = ".paved")]
    pub data: PathBuf,
    /// The HS256 secret for tokens (at least 32 characters); generated into the data
    /// directory when unset.
    #[arg(long, env = "PAVED_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
}

/// Where `paved up` keeps state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// One SQLite file in the data directory and the local workflow engine.
    Embedded,
    /// DynamoDB, SQS and Step Functions (`AWS_ENDPOINT_URL` for an emulator); the resources
    /// come from `PAVED_TABLE`, `PAVED_TASK_QUEUE_URL`, ... or `paved aws bootstrap`'s names.
    Aws,
}

#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// Create the stack's table, queues and state machine on an AWS emulator (moto,
    /// LocalStack), from the same definitions as infra/template.yaml. Safe to run again.
    Bootstrap {
        /// The emulator's endpoint, e.g. http://127.0.0.1:5000. Real AWS is deployed with
        /// `sam deploy`, not with this.
        #[arg(long, env = "AWS_ENDPOINT_URL")]
        endpoint: String,
        /// Resource names start with this; `paved up` finds the default `paved` ones by itself.
        #[arg(long, default_value = paved_aws::settings::DEFAULT_PREFIX)]
        prefix: String,
    },
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Recompute the DORA report (`GET /v1/metrics/dora`) at start and then every this many
    /// hours, as the schedule does on AWS; 0 turns it off. Needs a build with
    /// `--features analytics`.
    #[arg(long, env = "PAVED_DORA_EVERY_HOURS", default_value_t = 24)]
    pub dora_every_hours: u64,
    /// Where state lives.
    #[arg(long, env = "PAVED_BACKEND", value_enum, default_value_t = BackendChoice::Embedded)]
    pub backend: BackendChoice,
    /// Address to listen on.
    #[arg(long, env = "PAVED_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub data: DataDir,
    /// Members of this group may change any entity.
    #[arg(long, env = "PAVED_ADMIN_GROUP", default_value = paved_core::auth::DEFAULT_ADMIN_GROUP)]
    pub admin_group: String,
    /// Largest accepted import body, in bytes.
    #[arg(long, env = "PAVED_MAX_IMPORT_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_import_bytes: usize,
    /// PostgreSQL account that may create databases and roles; turns the
    /// `postgres-database` driver on.
    #[arg(long, env = "PAVED_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: Option<String>,
    /// Where new service repositories are created [default: <data>/git].
    #[arg(long, env = "PAVED_GIT_ROOT")]
    pub git_root: Option<PathBuf>,
    /// A directory of `.rego` guardrails (package `paved.guardrails`) added to the default
    /// bundle; a `config.json` there replaces the default `data.paved.config`.
    #[arg(long, env = "PAVED_POLICY_DIR")]
    pub policies: Option<PathBuf>,
    /// Use only the policies of `--policies`, not the default bundle.
    #[arg(long, env = "PAVED_POLICY_REPLACE_DEFAULT", requires = "policies")]
    pub replace_default_policies: bool,
    /// How many task pollers run at once (each handles a batch of up to 10 tasks).
    #[arg(long, env = "PAVED_WORKERS", default_value_t = 4)]
    pub workers: usize,
    /// `full` fsyncs every commit (survives power loss); `normal` survives a crash of paved
    /// but may lose the last commits on power loss, and is faster on slow disks.
    #[arg(long, env = "PAVED_SQLITE_SYNC", default_value = "full")]
    pub sqlite_sync: paved_sqlite::Durability,
    /// Receives before a task message goes to the dead-letter queue.
    #[arg(long, env = "PAVED_MAX_RECEIVES", default_value_t = 5)]
    pub max_receives: u32,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user (`alice` or `user:ns/alice`).
    #[arg(long)]
    pub user: String,
    /// A group the user belongs to; repeat for more.
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// How long the token is valid, in seconds.
    #[arg(long, default_value_t = 12 * 3600)]
    pub ttl: u64,
    #[command(flatten)]
    pub data: DataDir,
}

#[derive(Debug, Args)]
pub struct Remote {
    /// The paved to talk to.
    #[arg(long, env = "PAVED_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A bearer token; when unset, an admin token is minted from the local data directory's
    /// secret (so this works against your own `paved up`).
    #[arg(long, env = "PAVED_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long, env = "PAVED_ADMIN_GROUP", default_value = paved_core::auth::DEFAULT_ADMIN_GROUP)]
    pub admin_group: String,
    #[command(flatten)]
    pub data: DataDir,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Import catalog-info.yaml files, all or nothing per file.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print one entity as JSON, by ref (`component:default/payments`).
    Get {
        entity_ref: String,
        #[command(flatten)]
        remote: Remote,
    },
}

impl UpArgs {
    /// The host's configuration; an unusable `PAVED_SCORECARDS_DIR` stops `paved up`.
    pub fn config(self) -> Result<HostConfig> {
        let limits = catalog_api::Limits {
            import_body: self.max_import_bytes,
            ..Default::default()
        };
        let git_root = self.git_root.unwrap_or_else(|| self.data.data.join("git"));
        Ok(HostConfig {
            bind: self.bind,
            jwt_secret: self.data.jwt_secret,
            admin_group: self.admin_group,
            limits,
            drivers: paved_drivers::config::DriverConfig {
                postgres_url: self.postgres_url.filter(|u| !u.trim().is_empty()),
                git_root: Some(git_root),
                aws_region: paved_drivers::config::DriverConfig::aws_region_from_env(),
            },
            policies: self.policies.map(|dir| crate::host::PolicySource {
                dir,
                replace_default: self.replace_default_policies,
            }),
            workers: self.workers.max(1),
            worker: provision_worker::WorkerConfig {
                max_receives: self.max_receives.max(1),
                reconcile: paved_core::resources::ReconcilerSettings::from_lookup(|k| {
                    std::env::var(k).ok()
                })
                .map_err(anyhow::Error::msg)?,
                ..Default::default()
            },
            retry_after: std::time::Duration::from_secs(2),
            durability: self.sqlite_sync,
            extra_drivers: Vec::new(),
            aws: (self.backend == BackendChoice::Aws).then(paved_aws::AwsSettings::from_env),
            dora_every: (self.dora_every_hours > 0)
                .then(|| std::time::Duration::from_secs(self.dora_every_hours * 3600)),
            slack_signing_secret: chatops::slack::signature::SigningSecret::from_env(),
            slack_targets: paved_chat::notify::SlackTargets::from_env(),
            scorecards: paved_core::scorecards::ScorecardSet::from_env()
                .context("PAVED_SCORECARDS_DIR")?,
            data_dir: self.data.data,
        })
    }
}

impl Remote {
    fn client(self) -> Result<Client> {
        let token = match self.token {
            Some(t) => t,
            None => {
                let secret = crate::secret::load_or_create(&self.data.data, self.data.jwt_secret)?;
                paved_http::mint_token(&secret, "paved-cli", &[self.admin_group], 600)?
            }
        };
        Client::new(&self.url, token)
    }
}

pub fn token(args: TokenArgs) -> Result<String> {
    let secret = crate::secret::load_or_create(&args.data.data, args.data.jwt_secret)?;
    Ok(paved_http::mint_token(
        &secret,
        &args.user,
        &args.groups,
        args.ttl,
    )?)
}

pub async fn catalog(command: CatalogCommand) -> Result<()> {
    match command {
        CatalogCommand::Import { files, remote } => {
            let client = remote.client()?;
            for file in files {
                let yaml = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let outcome = client
                    .import(yaml)
                    .await
                    .with_context(|| format!("importing {}", file.display()))?;
                println!(
                    "{}: {} created, {} updated, {} unchanged",
                    file.display(),
                    outcome["created"],
                    outcome["updated"],
                    outcome["unchanged"]
                );
            }
        }
        CatalogCommand::Get { entity_ref, remote } => {
            let r = EntityRef::parse(
                &entity_ref,
                RefDefaults {
                    kind: Some("component"),
                    namespace: "default",
                },
            )
            .map_err(anyhow::Error::msg)?;
            let entity = remote
                .client()?
                .get(r.kind(), r.namespace(), r.name())
                .await?;
            println!("{}", serde_json::to_string_pretty(&entity)?);
        }
    }
    Ok(())
}

/// `paved aws bootstrap`: prints the environment of the created stack.
pub async fn aws(command: AwsCommand) -> Result<()> {
    match command {
        AwsCommand::Bootstrap { endpoint, prefix } => {
            anyhow::ensure!(
                endpoint.starts_with("http://") || endpoint.starts_with("https://"),
                "--endpoint must be a URL such as http://127.0.0.1:5000, not '{endpoint}'"
            );
            anyhow::ensure!(
                !prefix.is_empty()
                    && prefix
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "--prefix may hold letters, digits and '-' only"
            );
            // First: on moto, turning execution on swaps in another Step Functions backend,
            // so a state machine created before the switch is gone after it.
            if enable_moto_execution(&endpoint).await {
                eprintln!("moto: turned on state machine execution (/moto-api/config)");
            }
            let spec = paved_aws::stack::StackSpec::shipped().map_err(anyhow::Error::msg)?;
            let config = paved_aws::config::for_emulator(&endpoint).await;
            let stack = paved_aws::bootstrap::bootstrap(&config, &spec, &prefix)
                .await
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("bootstrapping on {endpoint}"))?;
            eprintln!("created the paved stack on {endpoint}; run it with:");
            println!("export AWS_ENDPOINT_URL={endpoint}");
            for (k, v) in stack.environment() {
                println!("export {k}={v}");
            }
            eprintln!("paved up");
        }
    }
    Ok(())
}

/// Asks moto to run state machines (`/moto-api/config`); whether it did. Other emulators have
/// no such switch and say no. Posting it again changes nothing.
async fn enable_moto_execution(endpoint: &str) -> bool {
    reqwest::Client::new()
        .post(format!(
            "{}/moto-api/config",
            endpoint.trim_end_matches('/')
        ))
        .json(&serde_json::json!({"stepfunctions": {"execute_state_machine": true}}))
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Runs one command of the CLI.
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Up(args) => crate::host::serve(args.config()?).await,
        Command::Token(args) => {
            println!("{}", token(args)?);
            Ok(())
        }
        Command::Catalog(command) => catalog(command).await,
        Command::Aws(command) => aws(command).await,
        #[cfg(feature = "analytics")]
        Command::Report(command) => crate::analytics::report(command).await,
        #[cfg(feature = "analytics")]
        Command::Generate(command) => crate::analytics::generate_events(command),
    }
}

/// JSON logs, one object per line (`PAVED_LOG_FORMAT=text` for people), filtered by
/// `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let text = match std::env::var("PAVED_LOG_FORMAT").as_deref() {
        Ok("text") => true,
        Ok(_) => false,
        Err(_) => std::io::IsTerminal::is_terminal(&std::io::stderr()),
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
