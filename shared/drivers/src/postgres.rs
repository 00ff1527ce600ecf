//! The `postgres-database` driver: a database and a login role with least-privilege grants on
//! the server `PAVED_POSTGRES_URL` names (an account that may create databases and roles).
//!
//! Steps: `database` (CREATE DATABASE, CONNECT revoked from PUBLIC), `role` (a LOGIN role whose
//! generated password goes to the secret store, never into outputs: they carry the secret's
//! reference, its ARN on Secrets Manager), `grants` (CONNECT and
//! TEMPORARY on the database, USAGE and CREATE on its `public` schema, nothing else; then the
//! requested extensions, created by the admin account).
//!
//! Ownership ([`crate::ownership`]): the database and the role carry a comment naming the
//! request that made them, and are adopted, undone or deleted only by that request. The role
//! is created with its comment in one transaction; CREATE DATABASE cannot run in one, so the
//! database is made under a name of the request's own (`pavedtmp_<token>`), commented, and
//! only then renamed to its real name: nothing under a real name is ever unmarked.
//!
//! SQL never carries input as text: PostgreSQL cannot bind identifiers or utility-statement
//! literals, so identifiers are built by [`names::identifier`] (only `[a-z0-9_]`) and quoted,
//! the password (generated from `[A-Za-z0-9]`, but read back from the secret store) and the
//! ownership comment are quoted by postgres-protocol's literal escaping; lookups use bound
//! parameters.
//!
//! Applying every step again, in plan order, repairs what was changed by hand (the
//! reconciliation loop's `enforce`): each step re-applies all it provisions to what is already
//! this request's, not only to what it creates. `database` re-creates a dropped database (under
//! the same name, marked as above) and revokes PUBLIC's access again; `role` re-creates a
//! dropped role, or sets LOGIN, the connection limit and the stored password on the existing
//! one; `grants` grants again what was revoked. Nothing unmarked or another request's is
//! adopted on the way.
//!
//! The secret is named per request and stored before the role is created, so a retried `role`
//! step finds the first attempt's secret (and password) whatever failed after it, a secret
//! store that is down fails the step with `Retryable.SecretStore` before anything is created,
//! and undoing `role` (compensation, deprovisioning) deletes the secret.
//!
//! The connection honours `sslmode`/`sslrootcert` ([`tls`]), and every connection and statement
//! is bounded ([`Timeouts`]): `statement_timeout` on the server, and the same bound (plus a
//! margin) on the client, for a server that stops answering altogether.

mod inventory;
mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use paved_core::observation::{Found, InventoryPage, Observation};
use paved_core::provisioning::{
    Driver, DriverError, PlannedStep, Planner, ResourceSpec, SecretLabels, SecretStore,
};
use postgres_protocol::escape::escape_literal;
use rand::Rng;
use serde_json::{Value, json};
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::names;
use crate::ownership::{self, Holder};

pub use tls::{Roots, TlsSettings, Verify};

pub const RESOURCE_TYPE: &str = "postgres-database";
const STEPS: [&str; 3] = ["database", "role", "grants"];
const DEFAULT_CONNECTION_LIMIT: i64 = 20;

/// How long the driver waits on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting: TCP, TLS and authentication together.
    pub connect: Duration,
    /// One statement (`statement_timeout` on the server, and on the client with a margin).
    pub statement: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            statement: Duration::from_secs(30),
        }
    }
}

/// What a request would create, and where: needs the server's address only, never a
/// connection.
#[derive(Debug)]
pub struct PostgresPlanner {
    host: String,
    port: u16,
}

impl PostgresPlanner {
    /// `url` as for [`PostgresDriver::new`]; only its host and port are kept.
    pub fn new(url: &str) -> Result<Self, String> {
        Ok(Self::of(&tls::parse(url)?.0))
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

pub struct PostgresDriver {
    /// The admin account's settings, to derive per-database admin connections.
    admin: Config,
    tls: MakeRustlsConnect,
    timeouts: Timeouts,
    planner: PostgresPlanner,
    secrets: Arc<dyn SecretStore>,
}

impl std::fmt::Debug for PostgresDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDriver").finish_non_exhaustive()
    }
}

/// The names one request maps to.
struct Names {
    database: String,
    role: String,
    /// Where the database is made and marked before it takes its real name: this request's
    /// alone (no real name starts with `pavedtmp_`).
    pending: String,
    /// Per request: a later request with the same name never reads or removes this one's.
    secret: String,
}

fn names_of(spec: &ResourceSpec) -> Names {
    let database = names::identifier(&spec.environment, &spec.name, 63);
    let role = names::identifier(&spec.environment, &format!("{}-app", spec.name), 63);
    Names {
        secret: format!(
            "postgres/{database}/{role}/{}",
            ownership::request_token(&spec.request_id)
        ),
        pending: format!("pavedtmp_{}", ownership::request_token(&spec.request_id)),
        database,
        role,
    }
}

fn retryable(e: &tokio_postgres::Error) -> DriverError {
    DriverError::Retryable {
        code: "Retryable.PostgresUnavailable",
        message: describe(e),
    }
}

/// The error with its causes ("db error" alone says nothing: the server's message, or the
/// TLS handshake's reason, is in its source).
fn describe(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
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

/// The comment that marks what this request made.
fn marker_sql(object: &str, identifier: &str, request_id: &str) -> String {
    format!(
        "COMMENT ON {object} {} IS {}",
        quote(identifier),
        escape_literal(&ownership::marker(request_id))
    )
}

fn secret_error(e: paved_core::ports::StoreError) -> DriverError {
    DriverError::Retryable {
        code: "Retryable.SecretStore",
        message: e.to_string(),
    }
}

impl PostgresDriver {
    /// `url` is a `postgresql://` URL or key=value string for an account that may create
    /// databases and roles, with libpq's `sslmode` and `sslrootcert` ([`tls`]).
    pub fn new(url: &str, secrets: Arc<dyn SecretStore>) -> Result<Self, String> {
        let (admin, settings) = tls::parse(url)?;
        Ok(Self {
            planner: PostgresPlanner::of(&admin),
            tls: tls::connector(&settings)?,
            admin,
            timeouts: Timeouts::default(),
            secrets,
        })
    }

    /// Other bounds than [`Timeouts::default`].
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    async fn connect(&self, database: Option<&str>) -> Result<Client, DriverError> {
        let mut config = self.admin.clone();
        if let Some(db) = database {
            config.dbname(db);
        }
        config.connect_timeout(self.timeouts.connect);
        let options = config.get_options().unwrap_or_default().to_owned();
        if !options.contains("statement_timeout") {
            config.options(format!(
                "{options} -c statement_timeout={}",
                self.timeouts.statement.as_millis()
            ));
        }
        let where_ = format!("{}:{}", self.planner.host, self.planner.port);
        let (client, connection) =
            match tokio::time::timeout(self.timeouts.connect, config.connect(self.tls.clone()))
                .await
            {
                Ok(Ok(connected)) => connected,
                Ok(Err(e)) if tls::is_tls_refusal(&e) => {
                    return Err(DriverError::NonRetryable {
                        code: "NonRetryable.PostgresTls",
                        message: format!("PostgreSQL at {where_}: {}", describe(&e)),
                    });
                }
                Ok(Err(e)) => return Err(retryable(&e)),
                Err(_) => {
                    return Err(DriverError::Retryable {
                        code: "Retryable.PostgresUnavailable",
                        message: format!(
                            "connecting to PostgreSQL at {where_} did not finish within {:?}",
                            self.timeouts.connect
                        ),
                    });
                }
            };
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "postgres connection closed");
            }
        });
        Ok(client)
    }

    /// A statement's future, bounded on the client too (the server's `statement_timeout`
    /// cannot fire when the server or the network is gone).
    async fn bounded<T>(
        &self,
        what: &str,
        statement: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<Result<T, tokio_postgres::Error>, DriverError> {
        let limit = self.timeouts.statement + Duration::from_secs(5);
        tokio::time::timeout(limit, statement)
            .await
            .map_err(|_| DriverError::Retryable {
                code: "Retryable.PostgresUnavailable",
                message: format!("{what}: PostgreSQL did not answer within {limit:?}"),
            })
    }

    async fn execute(&self, client: &Client, sql: &str) -> Result<(), DriverError> {
        self.bounded(sql, client.batch_execute(sql))
            .await?
            .map_err(classify)
    }

    /// `ALTER <settings>` for the role; `settings` carries the password, so errors name the
    /// statement by its kind only.
    async fn alter_role(&self, client: &Client, settings: &str) -> Result<(), DriverError> {
        self.bounded(
            "ALTER ROLE",
            client.batch_execute(&format!("ALTER {settings}")),
        )
        .await?
        .map_err(classify)
    }

    /// Whether the database exists, and the request its comment names.
    async fn database_marker(
        &self,
        client: &Client,
        name: &str,
    ) -> Result<Option<Option<String>>, DriverError> {
        self.marker(
            client,
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            name,
        )
        .await
    }

    /// Whether the role exists, and the request its comment names.
    async fn role_marker(
        &self,
        client: &Client,
        name: &str,
    ) -> Result<Option<Option<String>>, DriverError> {
        self.marker(
            client,
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
            name,
        )
        .await
    }

    async fn marker(
        &self,
        client: &Client,
        sql: &str,
        name: &str,
    ) -> Result<Option<Option<String>>, DriverError> {
        let rows = self
            .bounded(sql, client.query(sql, &[&name]))
            .await?
            .map_err(classify)?;
        Ok(rows.first().map(|row| {
            row.get::<_, Option<String>>(0)
                .and_then(|text| ownership::parse(&text).map(str::to_owned))
        }))
    }

    async fn database_holder(
        &self,
        client: &Client,
        spec: &ResourceSpec,
        n: &Names,
    ) -> Result<Holder, DriverError> {
        Ok(Holder::of(
            self.database_marker(client, &n.database).await?,
            &spec.request_id,
        ))
    }

    async fn role_holder(
        &self,
        client: &Client,
        spec: &ResourceSpec,
        n: &Names,
    ) -> Result<Holder, DriverError> {
        Ok(Holder::of(
            self.role_marker(client, &n.role).await?,
            &spec.request_id,
        ))
    }

    /// What exists of the database and its role, and how they differ from what `spec`
    /// provisions, field by field: both exist with paved's marker; the role can log in, with
    /// its connection limit; its grants (CONNECT and TEMPORARY on the database, USAGE and
    /// CREATE on `public`); the requested extensions. Read-only, every query parameterised.
    async fn observation(&self, spec: &ResourceSpec) -> Result<Observation, DriverError> {
        let n = names_of(spec);
        let mut seen = Observation::default();
        let client = self.connect(None).await?;
        seen.calls += 2;
        let database = self.database_holder(&client, spec, &n).await?;
        let role = self.role_holder(&client, spec, &n).await?;
        for (label, name, holder) in [
            ("database", &n.database, &database),
            ("role", &n.role, &role),
        ] {
            match holder {
                Holder::Ours => {}
                Holder::Absent => seen.compare(label, json!(name), Value::Null),
                Holder::Other(tag) => seen.compare(
                    &format!("{label}.marker"),
                    json!(spec.request_id),
                    tag.clone().map_or(Value::Null, Value::String),
                ),
            }
        }
        if role == Holder::Ours {
            seen.calls += 1;
            let sql = "SELECT rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname = $1";
            let row = self
                .bounded(sql, client.query_opt(sql, &[&n.role]))
                .await?
                .map_err(classify)?;
            if let Some(row) = row {
                let limit = spec
                    .parameters
                    .get("max_connections")
                    .and_then(Value::as_i64)
                    .unwrap_or(DEFAULT_CONNECTION_LIMIT);
                seen.compare("role.canLogin", json!(true), json!(row.get::<_, bool>(0)));
                seen.compare(
                    "role.connectionLimit",
                    json!(limit),
                    json!(i64::from(row.get::<_, i32>(1))),
                );
            }
        }
        if database != Holder::Ours {
            return Ok(seen);
        }
        seen.exists = true;
        if role != Holder::Ours {
            return Ok(seen);
        }
        let db = self.connect(Some(&n.database)).await?;
        seen.calls += 2;
        let sql = "SELECT has_database_privilege($1, $2, 'CONNECT'), \
                          has_database_privilege($1, $2, 'TEMPORARY'), \
                          has_schema_privilege($1, 'public', 'USAGE'), \
                          has_schema_privilege($1, 'public', 'CREATE')";
        let row = self
            .bounded(sql, db.query_one(sql, &[&n.role, &n.database]))
            .await?
            .map_err(classify)?;
        for (i, grant) in [
            "database.CONNECT",
            "database.TEMPORARY",
            "schema.public.USAGE",
            "schema.public.CREATE",
        ]
        .into_iter()
        .enumerate()
        {
            seen.compare(
                &format!("grants.{grant}"),
                json!(true),
                json!(row.get::<_, bool>(i)),
            );
        }
        let sql = "SELECT extname FROM pg_extension";
        let installed: Vec<String> = self
            .bounded(sql, db.query(sql, &[]))
            .await?
            .map_err(classify)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for extension in extensions(spec)? {
            seen.compare(
                &format!("extensions.{extension}"),
                json!(true),
                json!(installed.contains(&extension)),
            );
        }
        Ok(seen)
    }

    /// `secret` is the password's reference in the secret store.
    fn outputs(&self, n: &Names, secret: Option<String>) -> Value {
        json!({
            "host": self.planner.host, "port": self.planner.port, "database": n.database, "user": n.role,
            "passwordSecret": secret,
        })
    }

    /// The reference of the role's password secret, which the `role` step stored.
    async fn secret_reference(&self, n: &Names) -> Result<Option<String>, DriverError> {
        self.secrets
            .reference(&n.secret)
            .await
            .map_err(secret_error)
    }

    /// The database under its real name, made and marked under the pending name first.
    async fn create_database(
        &self,
        client: &Client,
        spec: &ResourceSpec,
        n: &Names,
    ) -> Result<(), DriverError> {
        let what = format!("the database {}", n.database);
        if self
            .database_holder(client, spec, n)
            .await?
            .for_create(&what)?
        {
            return Ok(());
        }
        if self.database_marker(client, &n.pending).await?.is_none() {
            // CREATE DATABASE takes no IF NOT EXISTS; a concurrent twin loses with 42P04.
            let sql = format!("CREATE DATABASE {}", quote(&n.pending));
            match self.bounded(&sql, client.batch_execute(&sql)).await? {
                Ok(()) => {}
                Err(e) if e.code().is_some_and(|c| c.code() == "42P04") => {}
                Err(e) => return Err(classify(e)),
            }
        }
        // The pending name is this request's own: marking it again is harmless.
        self.execute(
            client,
            &marker_sql("DATABASE", &n.pending, &spec.request_id),
        )
        .await?;
        let sql = format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote(&n.pending),
            quote(&n.database)
        );
        match self.bounded(&sql, client.batch_execute(&sql)).await? {
            Ok(()) => Ok(()),
            // The real name appeared meanwhile: ours (a twin attempt) or someone else's.
            Err(e) if e.code().is_some_and(|c| c.code() == "42P04") => {
                self.drop_pending(client, spec, n).await?;
                self.database_holder(client, spec, n)
                    .await?
                    .for_create(&what)
                    .map(|_| ())
            }
            Err(e) => Err(classify(e)),
        }
    }

    /// Removes this request's pending database, if one is left (a crashed attempt). Its name
    /// is the request's own, so one without a comment (the crash fell between CREATE and
    /// COMMENT) is this request's too.
    async fn drop_pending(
        &self,
        client: &Client,
        spec: &ResourceSpec,
        n: &Names,
    ) -> Result<(), DriverError> {
        match self.database_marker(client, &n.pending).await? {
            None => Ok(()),
            Some(Some(id)) if id != spec.request_id => Err(ownership::not_owned(format!(
                "the database {} was made by request {id}; it is left alone",
                n.pending
            ))),
            Some(_) => {
                self.execute(
                    client,
                    &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(&n.pending)),
                )
                .await
            }
        }
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
                self.create_database(&client, spec, &n).await?;
                self.execute(
                    &client,
                    &format!("REVOKE ALL ON DATABASE {} FROM PUBLIC", quote(&n.database)),
                )
                .await?;
                Ok(json!({"database": n.database}))
            }
            "role" => {
                let client = self.connect(None).await?;
                let what = format!("the role {}", n.role);
                let ours = self
                    .role_holder(&client, spec, &n)
                    .await?
                    .for_create(&what)?;
                // The first attempt's password wins; a retry reuses it. Stored before the role
                // exists: a store that is down fails the step with nothing created.
                let stored = self
                    .secrets
                    .put_if_absent(&n.secret, &password(), SecretLabels::of(spec))
                    .await
                    .map_err(secret_error)?;
                let limit = spec
                    .parameters
                    .get("max_connections")
                    .and_then(Value::as_i64)
                    .unwrap_or(DEFAULT_CONNECTION_LIMIT);
                // Every setting the role is provisioned with, the stored password included:
                // re-applied to a role that exists, so a repeated step repairs LOGIN, the
                // connection limit or the password changed by hand, and a role re-created
                // after a hand DROP takes the password the secret store already hands out.
                // The stored value is quoted as a literal (the store may hold a value paved did
                // not generate), and the statement, which carries it, is never an error's text.
                let settings = format!(
                    "ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT {limit} PASSWORD {}",
                    quote(&n.role),
                    escape_literal(&stored.value)
                );
                if ours {
                    self.alter_role(&client, &settings).await?;
                } else {
                    // One implicit transaction: the role never exists without its marker.
                    let sql = format!(
                        "CREATE {settings}; {}",
                        marker_sql("ROLE", &n.role, &spec.request_id)
                    );
                    match self
                        .bounded("CREATE ROLE", client.batch_execute(&sql))
                        .await?
                    {
                        Ok(()) => {}
                        Err(e) if e.code().is_some_and(|c| c.code() == "42710") => {
                            // Created concurrently: by a twin attempt (set the password the
                            // secret holds) or by someone else (left alone).
                            self.role_holder(&client, spec, &n)
                                .await?
                                .for_create(&what)?;
                            self.alter_role(&client, &settings).await?;
                        }
                        Err(e) => return Err(classify(e)),
                    }
                }
                Ok(json!({"user": n.role, "passwordSecret": stored.reference}))
            }
            "grants" => {
                let client = self.connect(Some(&n.database)).await?;
                for (holder, what) in [
                    (
                        self.database_holder(&client, spec, &n).await?,
                        format!("the database {}", n.database),
                    ),
                    (
                        self.role_holder(&client, spec, &n).await?,
                        format!("the role {}", n.role),
                    ),
                ] {
                    if !holder.for_create(&what)? {
                        return Err(DriverError::NonRetryable {
                            code: "NonRetryable.MissingDependency",
                            message: format!("{what} does not exist; its step must run first"),
                        });
                    }
                }
                self.execute(
                    &client,
                    &format!(
                        "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}; \
                         REVOKE ALL ON SCHEMA public FROM PUBLIC; \
                         GRANT USAGE, CREATE ON SCHEMA public TO {role};",
                        db = quote(&n.database),
                        role = quote(&n.role)
                    ),
                )
                .await?;
                for extension in extensions(spec)? {
                    self.execute(
                        &client,
                        &format!("CREATE EXTENSION IF NOT EXISTS {}", quote(&extension)),
                    )
                    .await?;
                }
                let Some(secret) = self.secret_reference(&n).await? else {
                    return Err(DriverError::NonRetryable {
                        code: "NonRetryable.MissingDependency",
                        message: format!(
                            "the password of {} is not in the secret store; the role step must run first",
                            n.role
                        ),
                    });
                };
                Ok(self.outputs(&n, Some(secret)))
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
                // The secret is this request's alone, whoever holds the role's name.
                let role = self.role_holder(&client, spec, &n).await;
                self.secrets.delete(&n.secret).await.map_err(secret_error)?;
                if !role?.for_removal(&format!("the role {}", n.role))? {
                    return Ok(());
                }
                // What the role owns in its database must go before the role can; only in
                // this request's own database.
                if self.database_holder(&client, spec, &n).await? == Holder::Ours {
                    let db = self.connect(Some(&n.database)).await?;
                    self.execute(&db, &format!("DROP OWNED BY {}", quote(&n.role)))
                        .await?;
                }
                self.execute(&client, &format!("DROP ROLE IF EXISTS {}", quote(&n.role)))
                    .await
            }
            "database" => {
                let client = self.connect(None).await?;
                self.drop_pending(&client, spec, &n).await?;
                if !self
                    .database_holder(&client, spec, &n)
                    .await?
                    .for_removal(&format!("the database {}", n.database))?
                {
                    return Ok(());
                }
                self.execute(
                    &client,
                    &format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        quote(&n.database)
                    ),
                )
                .await
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
        let ours = self.database_holder(&client, spec, &n).await? == Holder::Ours
            && self.role_holder(&client, spec, &n).await? == Holder::Ours;
        if !ours {
            return Ok(None);
        }
        let secret = self.secret_reference(&n).await?;
        Ok(Some(self.outputs(&n, secret)))
    }

    async fn observe(&self, spec: &ResourceSpec) -> Result<Observation, DriverError> {
        self.observation(spec).await
    }

    async fn inventory(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<InventoryPage, DriverError> {
        self.inventory_page(after, limit).await
    }

    async fn remove_found(&self, spec: &ResourceSpec, found: &Found) -> Result<(), DriverError> {
        self.remove(spec, found).await
    }

    async fn delete(&self, spec: &ResourceSpec) -> Result<(), DriverError> {
        for step in STEPS.iter().rev() {
            self.undo(spec, step).await?;
        }
        Ok(())
    }
}
