//! The `postgres-database` driver: a database and a login role with least-privilege grants on
//! the server `PAVED_POSTGRES_URL` names (an account that may create databases and roles).
//!
//! Steps: `database` (CREATE DATABASE, CONNECT revoked from PUBLIC), `role` (a LOGIN role whose
//! generated password goes to the secret store, never into outputs), `grants` (CONNECT and
//! TEMPORARY on the database, USAGE and CREATE on its `public` schema, nothing else; then the
//! requested extensions, created by the admin account).
//!
//! SQL never carries input as text: PostgreSQL cannot bind identifiers or utility-statement
//! literals, so identifiers are built by [`names::identifier`] (only `[a-z0-9_]`) and quoted, and
//! the password is generated from `[A-Za-z0-9]`; lookups use bound parameters.

use std::sync::Arc;

use async_trait::async_trait;
use paved_core::provisioning::{
    Driver, DriverError, PlannedStep, Planner, ResourceSpec, SecretStore,
};
use rand::Rng;
use serde_json::{Value, json};
use tokio_postgres::{Client, Config, NoTls};

use crate::names;

pub const RESOURCE_TYPE: &str = "postgres-database";
const STEPS: [&str; 3] = ["database", "role", "grants"];
const DEFAULT_CONNECTION_LIMIT: i64 = 20;

/// What a request would create, and where: needs the server's address only, never a
/// connection.
pub struct PostgresPlanner {
    host: String,
    port: u16,
}

impl PostgresPlanner {
    /// `url` as for [`PostgresDriver::new`]; only its host and port are kept.
    pub fn new(url: &str) -> Result<Self, String> {
        Ok(Self::of(&parse_url(url)?))
    }

    fn of(admin: &Config) -> Self {
        let host = match admin.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "localhost".to_owned(),
        };
        let port = admin.get_ports().first().copied().unwrap_or(5432);
        Self { host, port }
    }
}

fn parse_url(url: &str) -> Result<Config, String> {
    url.parse()
        .map_err(|e| format!("PAVED_POSTGRES_URL is not a PostgreSQL connection string: {e}"))
}

pub struct PostgresDriver {
    /// The admin account's settings, to derive per-database admin connections.
    admin: Config,
    planner: PostgresPlanner,
    secrets: Arc<dyn SecretStore>,
}

/// The names one request maps to.
struct Names {
    database: String,
    role: String,
    secret: String,
}

fn names_of(spec: &ResourceSpec) -> Names {
    let database = names::identifier(&spec.environment, &spec.name, 63);
    let role = names::identifier(&spec.environment, &format!("{}-app", spec.name), 63);
    Names {
        secret: format!("postgres/{database}/{role}"),
        database,
        role,
    }
}

fn retryable(e: &tokio_postgres::Error) -> DriverError {
    DriverError::Retryable {
        code: "Retryable.PostgresUnavailable",
        message: e.to_string(),
    }
}

/// The extensions the request asks for, each a plain lower-case identifier (the template's
/// schema says so; this re-checks, since the name goes into SQL as an identifier).
fn extensions(spec: &ResourceSpec) -> Result<Vec<String>, DriverError> {
    let names: Vec<String> = spec
        .parameters
        .get("extensions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    for name in &names {
        let ok = name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(DriverError::NonRetryable {
                code: "NonRetryable.InvalidParameters",
                message: format!("extension {name:?} is not a plain identifier"),
            });
        }
    }
    Ok(names)
}

/// Maps a failed statement: connection trouble is worth a retry, a refusal is not (syntax or
/// access rule, authorisation, or a feature/extension the server does not have).
fn classify(e: tokio_postgres::Error) -> DriverError {
    match e.as_db_error() {
        Some(db)
            if ["42", "28", "0A", "58P01"]
                .iter()
                .any(|p| db.code().code().starts_with(p)) =>
        {
            DriverError::NonRetryable {
                code: "NonRetryable.PostgresRefused",
                message: db.message().to_owned(),
            }
        }
        _ => retryable(&e),
    }
}

fn quote(identifier: &str) -> String {
    debug_assert!(
        identifier
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    );
    format!("\"{identifier}\"")
}

fn password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl PostgresDriver {
    /// `url` is a `postgresql://` URL or key=value string for an account that may create
    /// databases and roles.
    pub fn new(url: &str, secrets: Arc<dyn SecretStore>) -> Result<Self, String> {
        let admin = parse_url(url)?;
        Ok(Self {
            planner: PostgresPlanner::of(&admin),
            admin,
            secrets,
        })
    }

    async fn connect(&self, database: Option<&str>) -> Result<Client, DriverError> {
        let mut config = self.admin.clone();
        if let Some(db) = database {
            config.dbname(db);
        }
        let (client, connection) = config.connect(NoTls).await.map_err(|e| retryable(&e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "postgres connection closed");
            }
        });
        Ok(client)
    }

    async fn database_exists(&self, client: &Client, name: &str) -> Result<bool, DriverError> {
        let rows = client
            .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(classify)?;
        Ok(!rows.is_empty())
    }

    async fn role_exists(&self, client: &Client, name: &str) -> Result<bool, DriverError> {
        let rows = client
            .query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
            .await
            .map_err(classify)?;
        Ok(!rows.is_empty())
    }

    fn outputs(&self, n: &Names) -> Value {
        json!({
            "host": self.planner.host, "port": self.planner.port, "database": n.database, "user": n.role,
            "passwordSecret": format!("secret:{}", n.secret),
        })
    }
}

impl Planner for PostgresPlanner {
    fn resource_type(&self) -> &'static str {
        RESOURCE_TYPE
    }

    fn plan(&self, spec: &ResourceSpec) -> Result<Vec<PlannedStep>, DriverError> {
        let n = names_of(spec);
        Ok(vec![
            PlannedStep {
                step: "database".into(),
                action: format!(
                    "create database {} on {}:{}",
                    n.database, self.host, self.port
                ),
            },
            PlannedStep {
                step: "role".into(),
                action: format!(
                    "create login role {} (password in the secret store)",
                    n.role
                ),
            },
            PlannedStep {
                step: "grants".into(),
                action: format!(
                    "grant {} CONNECT, TEMPORARY on {} and USAGE, CREATE on its public schema",
                    n.role, n.database
                ),
            },
        ])
    }
}

impl Planner for PostgresDriver {
    fn resource_type(&self) -> &'static str {
        RESOURCE_TYPE
    }

    fn plan(&self, spec: &ResourceSpec) -> Result<Vec<PlannedStep>, DriverError> {
        self.planner.plan(spec)
    }
}

#[async_trait]
impl Driver for PostgresDriver {
    async fn apply(&self, spec: &ResourceSpec, step: &str) -> Result<Value, DriverError> {
        let n = names_of(spec);
        match step {
            "database" => {
                let client = self.connect(None).await?;
                if !self.database_exists(&client, &n.database).await? {
                    // CREATE DATABASE takes no IF NOT EXISTS; a concurrent twin loses with 42P04.
                    match client
                        .batch_execute(&format!("CREATE DATABASE {}", quote(&n.database)))
                        .await
                    {
                        Ok(()) => {}
                        Err(e) if e.code().is_some_and(|c| c.code() == "42P04") => {}
                        Err(e) => return Err(classify(e)),
                    }
                }
                client
                    .batch_execute(&format!(
                        "REVOKE ALL ON DATABASE {} FROM PUBLIC",
                        quote(&n.database)
                    ))
                    .await
                    .map_err(classify)?;
                Ok(json!({"database": n.database}))
            }
            "role" => {
                let client = self.connect(None).await?;
                // The first attempt's password wins; a retry reuses it.
                let password = self
                    .secrets
                    .put_if_absent(&n.secret, &password())
                    .await
                    .map_err(|e| DriverError::Retryable {
                        code: "Retryable.SecretStore",
                        message: e.to_string(),
                    })?;
                let limit = spec
                    .parameters
                    .get("max_connections")
                    .and_then(Value::as_i64)
                    .unwrap_or(DEFAULT_CONNECTION_LIMIT);
                let verb = if self.role_exists(&client, &n.role).await? {
                    "ALTER"
                } else {
                    "CREATE"
                };
                let sql = format!(
                    "{verb} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT {limit} PASSWORD '{password}'",
                    quote(&n.role)
                );
                match client.batch_execute(&sql).await {
                    Ok(()) => {}
                    Err(e) if e.code().is_some_and(|c| c.code() == "42710") => {
                        // Created concurrently: set the password the secret holds.
                        let sql = sql.replacen("CREATE ROLE", "ALTER ROLE", 1);
                        client.batch_execute(&sql).await.map_err(classify)?;
                    }
                    Err(e) => return Err(classify(e)),
                }
                Ok(json!({"user": n.role, "passwordSecret": format!("secret:{}", n.secret)}))
            }
            "grants" => {
                let client = self.connect(Some(&n.database)).await?;
                client
                    .batch_execute(&format!(
                        "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}; \
                         REVOKE ALL ON SCHEMA public FROM PUBLIC; \
                         GRANT USAGE, CREATE ON SCHEMA public TO {role};",
                        db = quote(&n.database),
                        role = quote(&n.role)
                    ))
                    .await
                    .map_err(classify)?;
                for extension in extensions(spec)? {
                    client
                        .batch_execute(&format!(
                            "CREATE EXTENSION IF NOT EXISTS {}",
                            quote(&extension)
                        ))
                        .await
                        .map_err(classify)?;
                }
                Ok(self.outputs(&n))
            }
            other => Err(DriverError::NonRetryable {
                code: "NonRetryable.UnknownStep",
                message: format!(
                    "{RESOURCE_TYPE} has no step '{other}'; its steps are {}",
                    STEPS.join(", ")
                ),
            }),
        }
    }

    async fn undo(&self, spec: &ResourceSpec, step: &str) -> Result<(), DriverError> {
        let n = names_of(spec);
        match step {
            // The grants go with the database and the role.
            "grants" => Ok(()),
            "role" => {
                let client = self.connect(None).await?;
                if self.role_exists(&client, &n.role).await? {
                    // What the role owns in its database must go before the role can.
                    if let Ok(db) = self.connect(Some(&n.database)).await {
                        db.batch_execute(&format!("DROP OWNED BY {}", quote(&n.role)))
                            .await
                            .map_err(classify)?;
                    }
                    client
                        .batch_execute(&format!("DROP ROLE IF EXISTS {}", quote(&n.role)))
                        .await
                        .map_err(classify)?;
                }
                self.secrets
                    .delete(&n.secret)
                    .await
                    .map_err(|e| DriverError::Retryable {
                        code: "Retryable.SecretStore",
                        message: e.to_string(),
                    })
            }
            "database" => {
                let client = self.connect(None).await?;
                client
                    .batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        quote(&n.database)
                    ))
                    .await
                    .map_err(classify)
            }
            other => Err(DriverError::NonRetryable {
                code: "NonRetryable.UnknownStep",
                message: format!("no step '{other}' to undo"),
            }),
        }
    }

    async fn status(&self, spec: &ResourceSpec) -> Result<Option<Value>, DriverError> {
        let n = names_of(spec);
        let client = self.connect(None).await?;
        let exists = self.database_exists(&client, &n.database).await?
            && self.role_exists(&client, &n.role).await?;
        Ok(exists.then(|| self.outputs(&n)))
    }

    async fn delete(&self, spec: &ResourceSpec) -> Result<(), DriverError> {
        for step in STEPS.iter().rev() {
            self.undo(spec, step).await?;
        }
        Ok(())
    }
}
