//! The command line: `paved up`, `paved token`, and client commands for a running paved (its
//! catalog, and the live resources the reconciliation loop watches).

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
    /// List the live resources you may see, with their Synced and Ready conditions and drift.
    Resources(ResourcesArgs),
    /// Print one live resource's status as JSON (conditions, drift, history); with
    /// `--policy`, `--ignore-field` or `--clear-ignore-fields`, change how it is managed first
    /// (its owners and platform admins).
    Resource(ResourceArgs),
    /// Observe a live resource now (and repair its drift under `enforce`); the result appears
    /// in `paved resource <id>`.
    Reconcile(ReconcileArgs),
    /// Act on a leak `paved resources --leaked` lists (platform admins): adopt it, or delete it.
    #[command(subcommand)]
    Leak(LeakCommand),
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

/// `--synced`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncedFilter {
    True,
    False,
    Unknown,
}

impl SyncedFilter {
    fn as_str(self) -> &'static str {
        match self {
            Self::True => "true",
            Self::False => "false",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Args)]
pub struct ResourcesArgs {
    /// Only this owner's (`team-a` or `group:default/team-a`).
    #[arg(long)]
    pub owner: Option<String>,
    /// Only this resource type (`postgres`, `service`, `sqs-queue`, `dynamodb-table`).
    #[arg(long = "type")]
    pub resource_type: Option<String>,
    /// Only this environment.
    #[arg(long)]
    pub environment: Option<String>,
    /// Only those whose Synced condition reads this (`unknown`: not observed lately).
    #[arg(long, value_enum, conflicts_with = "drifted")]
    pub synced: Option<SyncedFilter>,
    /// Only those drifted now (the same as `--synced false`).
    #[arg(long)]
    pub drifted: bool,
    /// The leaks instead: what carries paved's marker but no live request holds.
    #[arg(long, conflicts_with_all = ["synced", "drifted"])]
    pub leaked: bool,
    /// Print the resources as one JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub remote: Remote,
}

/// `--policy`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyChoice {
    /// Report drift; never change the resource.
    Observe,
    /// Repair drift by re-applying the request's steps.
    Enforce,
}

#[derive(Debug, Args)]
pub struct ResourceArgs {
    /// The request id (`req-…`).
    pub id: String,
    /// Set its management policy; the next observation applies it.
    #[arg(long, value_enum)]
    pub policy: Option<PolicyChoice>,
    /// A field path never reported as drift (`queue.VisibilityTimeout`, `tags.*`); repeat for
    /// more. Replaces the resource's list.
    #[arg(long = "ignore-field", value_name = "PATH")]
    pub ignore_fields: Vec<String>,
    /// Ignore no field any more (empties the list).
    #[arg(long, conflicts_with = "ignore_fields")]
    pub clear_ignore_fields: bool,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Subcommand)]
pub enum LeakCommand {
    /// Make the leak's request READY again (it holds its name again and is reconciled).
    Adopt(LeakArgs),
    /// Delete the leaked thing on its provider (only while its marker still names the request).
    Delete(LeakArgs),
}

#[derive(Debug, Args)]
pub struct LeakArgs {
    /// The leak's id (`leak-…`).
    pub id: String,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The request id (`req-…`).
    pub id: String,
    #[command(flatten)]
    pub remote: Remote,
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

/// The most pages `paved resources` reads (of 500 each): far more than any platform holds,
/// and a bound should a server hand back cursors without end.
const MAX_RESOURCE_PAGES: usize = 1000;

/// `paved resources`: every page of the listing, as a table (or JSON).
pub async fn resources(args: ResourcesArgs) -> Result<()> {
    let mut query: Vec<(&str, String)> = Vec::new();
    for (name, value) in [
        ("owner", args.owner),
        ("type", args.resource_type),
        ("environment", args.environment),
        ("synced", args.synced.map(|s| s.as_str().to_owned())),
        ("drifted", args.drifted.then(|| "true".to_owned())),
        ("leaked", args.leaked.then(|| "true".to_owned())),
    ] {
        if let Some(v) = value {
            query.push((name, v));
        }
    }
    query.push(("limit", "500".to_owned()));
    let client = args.remote.client()?;
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_RESOURCE_PAGES {
        let mut page_query = query.clone();
        if let Some(c) = &cursor {
            page_query.push(("cursor", c.clone()));
        }
        let page = client.resources(&page_query).await?;
        items.extend(
            page.get("items")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .cloned(),
        );
        let next = page
            .get("nextCursor")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        if next.is_none() || next == cursor {
            cursor = None;
            break;
        }
        cursor = next;
    }
    anyhow::ensure!(
        cursor.is_none(),
        "the listing did not end after {MAX_RESOURCE_PAGES} pages"
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else if items.is_empty() && args.leaked {
        println!("no leaks match");
    } else if items.is_empty() {
        println!("no live resources match");
    } else if args.leaked {
        print!("{}", leak_table(&items));
    } else {
        print!("{}", resource_table(&items));
    }
    Ok(())
}

/// The leaks as aligned columns, a header first.
pub fn leak_table(items: &[serde_json::Value]) -> String {
    let text = |r: &serde_json::Value, key: &str| {
        r.get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("-")
            .to_owned()
    };
    let mut rows =
        vec![["ID", "TYPE", "KIND", "NAME", "REQUEST", "REASON", "OWNER"].map(str::to_owned)];
    rows.extend(items.iter().map(|r| {
        [
            text(r, "id"),
            text(r, "resourceType"),
            text(r, "kind"),
            text(r, "name"),
            text(r, "requestId"),
            text(r, "reason"),
            text(r, "owner"),
        ]
    }));
    columns(&rows)
}

/// Rows as aligned columns (the last one unpadded).
fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `paved leak adopt|delete <id>`.
pub async fn leak(command: LeakCommand) -> Result<()> {
    match command {
        LeakCommand::Adopt(args) => {
            let view = args.remote.client()?.adopt_leak(&args.id).await?;
            let id = view
                .get("id")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?");
            println!("adopted: request {id} is READY again (`paved resource {id}`)");
        }
        LeakCommand::Delete(args) => {
            args.remote.client()?.delete_resource(&args.id).await?;
            println!(
                "deletion of {} queued; it leaves `paved resources --leaked` once it is gone",
                args.id
            );
        }
    }
    Ok(())
}

/// A condition's status in a resource's view: `True`, `False` or `Unknown`.
fn condition_status<'a>(resource: &'a serde_json::Value, kind: &str) -> &'a str {
    resource
        .get("conditions")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("type").and_then(serde_json::Value::as_str) == Some(kind))
        .and_then(|c| c.get("status"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("Unknown")
}

/// The resources as aligned columns, a header first; the drift's paths last.
pub fn resource_table(items: &[serde_json::Value]) -> String {
    let text = |r: &serde_json::Value, key: &str| {
        r.get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    let mut rows = vec![
        [
            "ID",
            "TYPE",
            "NAME",
            "OWNER",
            "ENVIRONMENT",
            "POLICY",
            "SYNCED",
            "READY",
            "DRIFT",
        ]
        .map(str::to_owned),
    ];
    rows.extend(items.iter().map(|r| {
        let drift: Vec<&str> = r
            .get("drift")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| d.get("path").and_then(serde_json::Value::as_str))
            .collect();
        [
            text(r, "id"),
            text(r, "type"),
            text(r, "name"),
            text(r, "owner"),
            text(r, "environment"),
            text(r, "managementPolicy"),
            condition_status(r, "Synced").to_owned(),
            condition_status(r, "Ready").to_owned(),
            if drift.is_empty() {
                "-".to_owned()
            } else {
                drift.join(",")
            },
        ]
    }));
    columns(&rows)
}

/// `paved resource <id>`: its status, after the policy change if one is asked for.
pub async fn resource(args: ResourceArgs) -> Result<()> {
    let mut patch = serde_json::Map::new();
    if let Some(p) = args.policy {
        let policy = match p {
            PolicyChoice::Observe => "observe",
            PolicyChoice::Enforce => "enforce",
        };
        patch.insert("managementPolicy".into(), policy.into());
    }
    if args.clear_ignore_fields {
        patch.insert("ignoreFields".into(), serde_json::json!([]));
    } else if !args.ignore_fields.is_empty() {
        patch.insert("ignoreFields".into(), serde_json::json!(args.ignore_fields));
    }
    let client = args.remote.client()?;
    let view = if patch.is_empty() {
        client.resource(&args.id).await?
    } else {
        client
            .patch_resource(&args.id, &serde_json::Value::Object(patch))
            .await?
    };
    println!("{}", serde_json::to_string_pretty(&view)?);
    Ok(())
}

/// `paved reconcile <id>`: queues an observation now.
pub async fn reconcile(args: ReconcileArgs) -> Result<()> {
    let view = args.remote.client()?.reconcile(&args.id).await?;
    let id = view
        .get("id")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(&args.id);
    println!(
        "observation of {id} queued; the result appears in its status (`paved resource {id}`)"
    );
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
        Command::Resources(args) => resources(args).await,
        Command::Resource(args) => resource(args).await,
        Command::Reconcile(args) => reconcile(args).await,
        Command::Leak(command) => leak(command).await,
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
