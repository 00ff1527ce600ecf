//! The PostgreSQL driver against a real server. `scripts/test.sh` starts one on loopback and
//! sets `PAVED_TEST_POSTGRES_URL`.

use std::sync::Arc;

use std::time::{Duration, Instant};

use paved_core::provisioning::{
    Driver, DriverError, Planner, ResourceSpec, SecretStore, TableSecretStore,
};
use paved_drivers::postgres::{PostgresDriver, Timeouts};
use paved_sqlite::SqliteStore;
use serde_json::json;
use tokio_postgres::NoTls;

fn admin_url() -> String {
    std::env::var("PAVED_TEST_POSTGRES_URL").expect(
        "PAVED_TEST_POSTGRES_URL is not set: run scripts/test.sh, which starts PostgreSQL on loopback",
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    secrets: Arc<dyn SecretStore>,
    driver: PostgresDriver,
}

fn fixture() -> Fixture {
    fixture_at(&admin_url())
}

fn fixture_at(url: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("paved.db")).expect("open"));
    let secrets: Arc<dyn SecretStore> = Arc::new(TableSecretStore::new(store));
    let driver = PostgresDriver::new(url, Arc::clone(&secrets)).expect("driver");
    Fixture {
        _dir: dir,
        secrets,
        driver,
    }
}

fn spec(name: &str) -> ResourceSpec {
    let unique = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    ResourceSpec {
        request_id: format!("req-{unique}"),
        name: unique,
        owner: "group:default/team-a".into(),
        environment: "dev".into(),
        parameters: json!({"storage_gb": 1, "max_connections": 5}),
    }
}

async fn admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&admin_url(), NoTls)
        .await
        .expect("admin connects");
    tokio::spawn(conn);
    client
}

async fn exists(sql: &str, name: &str) -> bool {
    !admin()
        .await
        .query(sql, &[&name])
        .await
        .expect("query")
        .is_empty()
}

#[tokio::test]
async fn provisions_once_however_often_it_is_applied_and_deletes_cleanly() {
    let f = fixture();
    let s = spec("orders");
    let plan = f.driver.plan(&s).expect("plan");
    assert_eq!(
        plan.iter().map(|p| p.step.as_str()).collect::<Vec<_>>(),
        ["database", "role", "grants"]
    );
    assert!(
        f.driver.status(&s).await.expect("status").is_none(),
        "planning has no side effect"
    );

    let mut outputs = Vec::new();
    for _attempt in 0..2 {
        for step in ["database", "role", "grants"] {
            outputs.push(f.driver.apply(&s, step).await.expect("apply"));
        }
    }
    assert_eq!(
        outputs[2], outputs[5],
        "a repeated apply gives the same outputs"
    );
    let out = &outputs[2];
    let (db, user) = (
        out["database"].as_str().expect("db"),
        out["user"].as_str().expect("user"),
    );
    assert!(
        !out.to_string().contains("password\":"),
        "no password in outputs: {out}"
    );
    assert!(exists("SELECT 1 FROM pg_database WHERE datname = $1", db).await);

    // The role logs in with the stored password and may build tables in its own database...
    let secret = out["passwordSecret"]
        .as_str()
        .expect("ref")
        .trim_start_matches("secret:");
    let password = f.secrets.get(secret).await.expect("get").expect("stored");
    let url = format!(
        "{} dbname={db} user={user} password={password}",
        base_conninfo()
    );
    let (app, conn) = tokio_postgres::connect(&url, NoTls)
        .await
        .expect("the role logs in");
    tokio::spawn(conn);
    app.batch_execute("CREATE TABLE orders (id int primary key); INSERT INTO orders VALUES (1);")
        .await
        .expect("owns its schema");
    // ...and nothing more.
    assert!(
        app.batch_execute("CREATE DATABASE sneaky").await.is_err(),
        "cannot create databases"
    );
    assert!(
        app.batch_execute("CREATE ROLE sneaky").await.is_err(),
        "cannot create roles"
    );

    f.driver.delete(&s).await.expect("delete");
    f.driver.delete(&s).await.expect("deleting twice is fine");
    assert!(
        !exists("SELECT 1 FROM pg_database WHERE datname = $1", db).await,
        "no database left"
    );
    assert!(
        !exists("SELECT 1 FROM pg_roles WHERE rolname = $1", user).await,
        "no role left"
    );
    assert!(
        f.secrets.get(secret).await.expect("get").is_none(),
        "no secret left"
    );
}

#[tokio::test]
async fn compensation_after_a_partial_apply_leaves_nothing_behind() {
    let f = fixture();
    let s = spec("halfway");
    f.driver.apply(&s, "database").await.expect("database");
    let role = f.driver.apply(&s, "role").await.expect("role");
    let user = role["user"].as_str().expect("user").to_owned();
    // Step 3 fails permanently (here: a step the driver does not have).
    let err = f.driver.apply(&s, "no-such-step").await.expect_err("fails");
    assert_eq!(err.code(), "NonRetryable.UnknownStep");
    for step in ["role", "database"] {
        f.driver.undo(&s, step).await.expect("undo");
    }
    assert!(!exists("SELECT 1 FROM pg_roles WHERE rolname = $1", &user).await);
    assert!(f.driver.status(&s).await.expect("status").is_none());
}

/// The admin URL's host and port as a key=value connection string.
fn base_conninfo() -> String {
    let config: tokio_postgres::Config = admin_url().parse().expect("url");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    format!(
        "host={host} port={}",
        config.get_ports().first().copied().unwrap_or(5432)
    )
}

fn database_of(s: &ResourceSpec) -> String {
    format!("paved_{}_{}", s.environment, s.name.replace('-', "_"))
}

fn role_of(s: &ResourceSpec) -> String {
    format!("{}_app", database_of(s))
}

const DB: &str = "SELECT 1 FROM pg_database WHERE datname = $1";
const ROLE: &str = "SELECT 1 FROM pg_roles WHERE rolname = $1";

async fn comment_of_database(name: &str) -> Option<String> {
    admin()
        .await
        .query_one(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .expect("query")
        .get(0)
}

async fn provisioned(f: &Fixture, s: &ResourceSpec) {
    for step in ["database", "role", "grants"] {
        f.driver
            .apply(s, step)
            .await
            .unwrap_or_else(|e| panic!("{step}: {e}"));
    }
}

#[tokio::test]
async fn what_another_request_made_under_the_same_name_is_never_undone_or_deleted() {
    let f = fixture();
    // B holds the name now (A was cancelled or deleted, and freed it).
    let b = spec("shared");
    let mut a = b.clone();
    a.request_id = format!("{}-earlier", b.request_id);
    provisioned(&f, &b).await;
    let (db, role) = (database_of(&b), role_of(&b));
    assert_eq!(
        comment_of_database(&db).await.as_deref(),
        Some(format!("paved:request-id={}", b.request_id).as_str()),
        "the database names the request that made it"
    );

    // A's late compensation and a late delete of A's: refused, nothing touched.
    for step in ["database", "role"] {
        let err = f.driver.undo(&a, step).await.expect_err("not A's");
        assert_eq!(err.code(), "NonRetryable.NotOwned", "{step}: {err}");
        assert!(err.to_string().contains(&b.request_id), "{err}");
    }
    assert_eq!(
        f.driver.delete(&a).await.expect_err("not A's").code(),
        "NonRetryable.NotOwned"
    );
    // A create under the name is refused too, and A sees nothing of its own.
    for step in ["database", "role"] {
        let err = f.driver.apply(&a, step).await.expect_err("taken");
        assert_eq!(err.code(), "NonRetryable.NameTaken", "{step}: {err}");
    }
    assert!(f.driver.status(&a).await.expect("status").is_none());
    assert!(exists(DB, &db).await, "B's database survives");
    assert!(exists(ROLE, &role).await, "B's role survives");
    assert!(f.driver.status(&b).await.expect("status").is_some());

    f.driver.delete(&b).await.expect("B deletes its own");
    assert!(!exists(DB, &db).await && !exists(ROLE, &role).await);
}

#[tokio::test]
async fn a_database_and_a_role_paved_did_not_make_are_name_taken_and_left_alone() {
    let f = fixture();
    let s = spec("byhand");
    let (db, role) = (database_of(&s), role_of(&s));
    let pg = admin().await;
    pg.batch_execute(&format!("CREATE DATABASE \"{db}\"; "))
        .await
        .expect("a database made by hand");
    let err = f.driver.apply(&s, "database").await.expect_err("taken");
    assert_eq!(err.code(), "NonRetryable.NameTaken");
    assert!(err.to_string().contains("no paved marker"), "{err}");
    let err = f.driver.undo(&s, "database").await.expect_err("not ours");
    assert_eq!(err.code(), "NonRetryable.NotOwned");
    assert!(exists(DB, &db).await, "the hand-made database is untouched");
    assert_eq!(comment_of_database(&db).await, None, "and unmarked");

    pg.batch_execute(&format!("CREATE ROLE \"{role}\""))
        .await
        .expect("a role made by hand");
    assert_eq!(
        f.driver.apply(&s, "role").await.expect_err("taken").code(),
        "NonRetryable.NameTaken"
    );
    assert_eq!(
        f.driver
            .undo(&s, "role")
            .await
            .expect_err("not ours")
            .code(),
        "NonRetryable.NotOwned"
    );
    assert!(exists(ROLE, &role).await, "the hand-made role is untouched");
    for sql in [
        format!("DROP DATABASE \"{db}\""),
        format!("DROP ROLE \"{role}\""),
    ] {
        pg.batch_execute(&sql).await.expect("clean up");
    }
}

#[tokio::test]
async fn a_crash_between_create_and_marker_is_finished_by_the_retry() {
    let f = fixture();
    let s = spec("crashed");
    // The earlier attempt made the pending database and died before marking it.
    let pending = format!(
        "pavedtmp_{}",
        paved_drivers::ownership::request_token(&s.request_id)
    );
    admin()
        .await
        .batch_execute(&format!("CREATE DATABASE \"{pending}\""))
        .await
        .expect("pending");
    provisioned(&f, &s).await;
    assert!(!exists(DB, &pending).await, "the pending name is gone");
    assert!(exists(DB, &database_of(&s)).await);
    assert!(f.driver.status(&s).await.expect("status").is_some());
    f.driver.delete(&s).await.expect("delete");
    assert!(!exists(DB, &database_of(&s)).await);
}

fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

fn ca() -> String {
    std::env::var("PAVED_TEST_POSTGRES_CA").expect(
        "PAVED_TEST_POSTGRES_CA is not set: run scripts/test.sh, which starts PostgreSQL with a test CA",
    )
}

/// The server refuses this account without TLS (scripts/postgres.sh's pg_hba), so what it
/// does it did over TLS.
async fn tls_only_url(query: &str) -> String {
    let pg = admin().await;
    pg.batch_execute(
        "DO $$ BEGIN CREATE ROLE paved_tls_only LOGIN SUPERUSER; \
         EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    )
    .await
    .expect("the TLS-only admin");
    let url = admin_url().replacen("postgres@", "paved_tls_only@", 1);
    with_query(&url, query)
}

#[tokio::test]
async fn sslmode_require_and_verify_full_provision_over_tls() {
    let plain = tls_only_url("sslmode=disable").await;
    let err = fixture_at(&plain)
        .driver
        .status(&spec("x"))
        .await
        .expect_err("refused without TLS");
    assert!(err.to_string().contains("no encryption"), "{err}");

    for query in [
        "sslmode=require".to_owned(),
        format!("sslmode=verify-full&sslrootcert={}", ca()),
        format!("sslmode=verify-ca&sslrootcert={}", ca()),
    ] {
        let f = fixture_at(&tls_only_url(&query).await);
        let s = spec("tls");
        provisioned(&f, &s).await;
        assert!(
            f.driver.status(&s).await.expect("status").is_some(),
            "{query}"
        );
        f.driver.delete(&s).await.expect("delete");
        assert!(!exists(DB, &database_of(&s)).await, "{query}");
    }
}

#[tokio::test]
async fn verify_full_without_the_ca_and_require_without_tls_are_refused_clearly() {
    // No CA named: refused when the driver is built.
    let err = PostgresDriver::new(
        &with_query(&admin_url(), "sslmode=verify-full"),
        Arc::clone(&fixture().secrets),
    )
    .expect_err("no CA");
    assert!(err.contains("needs sslrootcert"), "{err}");

    // The machine's trust store does not know the test CA: the handshake is refused.
    let f = fixture_at(&with_query(
        &admin_url(),
        "sslmode=verify-full&sslrootcert=system",
    ));
    let err = f
        .driver
        .apply(&spec("x"), "database")
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err,
            DriverError::NonRetryable {
                code: "NonRetryable.PostgresTls",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("certificate"), "{err}");

    // sslmode=require against a server that offers no TLS.
    let plain = std::env::var("PAVED_TEST_POSTGRES_PLAIN_URL").expect(
        "PAVED_TEST_POSTGRES_PLAIN_URL is not set: run scripts/test.sh, which starts a server without TLS",
    );
    let f = fixture_at(&with_query(&plain, "sslmode=require"));
    let err = f.driver.status(&spec("x")).await.expect_err("refused");
    assert_eq!(err.code(), "NonRetryable.PostgresTls", "{err}");
    assert!(err.to_string().contains("does not support TLS"), "{err}");
    // And the same server with the default (prefer) still works, without TLS.
    assert!(
        fixture_at(&plain)
            .driver
            .status(&spec("x"))
            .await
            .expect("prefer falls back")
            .is_none()
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_bounded_retryable_failure() {
    // Accepts the TCP connection (the kernel's backlog) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "postgresql://postgres@127.0.0.1:{}/postgres",
        silent.local_addr().expect("addr").port()
    );
    let f = fixture_at(&url);
    let driver = f.driver.with_timeouts(Timeouts {
        connect: Duration::from_millis(300),
        statement: Duration::from_secs(30),
    });
    let started = Instant::now();
    let err = driver
        .apply(&spec("x"), "database")
        .await
        .expect_err("timeout");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.code(), "Retryable.PostgresUnavailable", "{err}");
    assert!(err.to_string().contains("did not finish within"), "{err}");
}

#[tokio::test]
async fn a_statement_stuck_on_a_lock_is_cancelled_by_the_statement_timeout() {
    let f = fixture();
    let s = spec("locked");
    f.driver.apply(&s, "database").await.expect("database");
    let driver = fixture().driver.with_timeouts(Timeouts {
        connect: Duration::from_secs(5),
        statement: Duration::from_millis(300),
    });
    // Another session holds the database's catalog row (an open transaction changing it).
    let (holder, conn) = tokio_postgres::connect(&admin_url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    holder
        .batch_execute(&format!(
            "BEGIN; GRANT TEMPORARY ON DATABASE \"{}\" TO PUBLIC",
            database_of(&s)
        ))
        .await
        .expect("lock");
    let started = Instant::now();
    let err = driver.apply(&s, "database").await.expect_err("timed out");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.code(), "Retryable.PostgresUnavailable", "{err}");
    assert!(err.to_string().contains("statement timeout"), "{err}");
    holder.batch_execute("ROLLBACK").await.expect("rollback");
    f.driver
        .apply(&s, "database")
        .await
        .expect("then it goes through");
    f.driver.undo(&s, "database").await.expect("undo");
}

/// The paths of an observation's drift, sorted.
fn drift_paths(o: &paved_core::observation::Observation) -> Vec<String> {
    let mut paths: Vec<String> = o.drift.iter().map(|d| d.path.clone()).collect();
    paths.sort();
    paths
}

#[tokio::test]
async fn an_observed_database_reports_revoked_grants_a_dropped_role_and_a_dropped_database() {
    let f = fixture();
    let s = spec("observed");
    provisioned(&f, &s).await;
    let fresh = f.driver.observe(&s).await.expect("observe");
    assert!(fresh.is_synced(), "as provisioned: {:?}", fresh.drift);

    // Hand edits, each seen as drift and none changed by observing.
    let (db, role) = (database_of(&s), role_of(&s));
    admin()
        .await
        .batch_execute(&format!(
            "REVOKE TEMPORARY ON DATABASE \"{db}\" FROM \"{role}\"; ALTER ROLE \"{role}\" CONNECTION LIMIT 1"
        ))
        .await
        .expect("hand edits");
    let edited = f.driver.observe(&s).await.expect("observe");
    assert_eq!(
        drift_paths(&edited),
        ["grants.database.TEMPORARY", "role.connectionLimit"],
        "{:?}",
        edited.drift
    );
    let again = f.driver.observe(&s).await.expect("observe");
    assert_eq!(again.drift, edited.drift, "observing repaired nothing");

    // The role's grants live in its database: revoke them there, then drop it.
    let url = admin_url();
    let (url, query) = url.split_once('?').unwrap_or((&url, ""));
    let (base, _) = url.rsplit_once('/').expect("a database in the URL");
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let (in_db, conn) = tokio_postgres::connect(&format!("{base}/{db}{query}"), NoTls)
        .await
        .expect("connect to the database");
    tokio::spawn(conn);
    in_db
        .batch_execute(&format!("DROP OWNED BY \"{role}\""))
        .await
        .expect("drop owned");
    drop(in_db);
    admin()
        .await
        .batch_execute(&format!("DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\""))
        .await
        .expect("drop role");
    let no_role = f.driver.observe(&s).await.expect("observe");
    assert!(no_role.exists, "the database is still there");
    assert_eq!(drift_paths(&no_role), ["role"]);

    admin()
        .await
        .batch_execute(&format!("DROP DATABASE \"{db}\" WITH (FORCE)"))
        .await
        .expect("drop database");
    let gone = f.driver.observe(&s).await.expect("observe");
    assert!(!gone.exists);
    assert_eq!(drift_paths(&gone), ["database", "role"]);
}

// Enforcement: after a hand change, applying every step of the plan again, in plan order,
// brings the database and its role back to what was provisioned (the reconciliation loop's
// `enforce`), and the role accepts the password the secret store already holds.

/// An admin session in `db` (grants on the `public` schema, and what a role owns, live there).
async fn admin_in(db: &str) -> tokio_postgres::Client {
    let url = admin_url();
    let (url, query) = url.split_once('?').unwrap_or((&url, ""));
    let (base, _) = url.rsplit_once('/').expect("a database in the URL");
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let (client, conn) = tokio_postgres::connect(&format!("{base}/{db}{query}"), NoTls)
        .await
        .expect("connect to the database");
    tokio::spawn(conn);
    client
}

/// A fresh request, provisioned and observed in sync.
async fn provisioned_and_synced(name: &str) -> (Fixture, ResourceSpec) {
    let f = fixture();
    let s = spec(name);
    provisioned(&f, &s).await;
    let fresh = f.driver.observe(&s).await.expect("observe");
    assert!(fresh.is_synced(), "as provisioned: {:?}", fresh.drift);
    assert_eq!(
        fresh.calls, 5,
        "two marker lookups, the role, its grants, extensions"
    );
    (f, s)
}

/// The role's password as the secret store holds it.
async fn stored_password(f: &Fixture, s: &ResourceSpec) -> String {
    let status = f.driver.status(s).await.expect("status").expect("ours");
    let reference = status["passwordSecret"].as_str().expect("a reference");
    f.secrets
        .get(reference)
        .await
        .expect("get")
        .expect("stored")
}

/// What observe reports now: whether the resource exists, and exactly these drift paths.
async fn assert_drift(f: &Fixture, s: &ResourceSpec, exists: bool, paths: &[&str]) {
    let seen = f.driver.observe(s).await.expect("observe");
    assert_eq!(seen.exists, exists, "{:?}", seen.drift);
    assert_eq!(drift_paths(&seen), paths, "{:?}", seen.drift);
}

/// Every step of the plan again, in plan order; then observe sees it in sync.
async fn apply_all_again(f: &Fixture, s: &ResourceSpec) {
    for step in f.driver.plan(s).expect("plan") {
        f.driver
            .apply(s, &step.step)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", step.step));
    }
    let repaired = f.driver.observe(s).await.expect("observe");
    assert!(repaired.is_synced(), "repaired: {repaired:?}");
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Whether the role's SCRAM verifier in `pg_authid` was made from `password` (RFC 5802:
/// StoredKey = H(HMAC(PBKDF2(password, salt, i), "Client Key"))). The test server trusts
/// loopback connections, so logging in alone would not prove which password the role has.
async fn verifier_matches(role: &str, password: &str) -> bool {
    let row = admin()
        .await
        .query_one(
            "SELECT rolpassword LIKE 'SCRAM-SHA-256$%', \
                    split_part(split_part(rolpassword, '$', 2), ':', 1)::int, \
                    decode(split_part(split_part(rolpassword, '$', 2), ':', 2), 'base64'), \
                    decode(split_part(split_part(rolpassword, '$', 3), ':', 1), 'base64') \
             FROM pg_authid WHERE rolname = $1",
            &[&role],
        )
        .await
        .expect("the role's verifier");
    assert!(row.get::<_, bool>(0), "a SCRAM-SHA-256 verifier");
    let iterations: i32 = row.get(1);
    let salt: Vec<u8> = row.get(2);
    let stored_key: Vec<u8> = row.get(3);
    let mut u = hmac_sha256(
        password.as_bytes(),
        &[salt.as_slice(), &[0, 0, 0, 1]].concat(),
    );
    let mut salted = u;
    for _ in 1..iterations {
        u = hmac_sha256(password.as_bytes(), &u);
        for (s, b) in salted.iter_mut().zip(u) {
            *s ^= b;
        }
    }
    let client_key = hmac_sha256(&salted, b"Client Key");
    <sha2::Sha256 as sha2::Digest>::digest(client_key).as_slice() == stored_key.as_slice()
}

/// The role has the stored password, logs in with it to its database, and may build tables
/// in its `public` schema.
async fn assert_logs_in_with_stored_password(f: &Fixture, s: &ResourceSpec) {
    let (db, role) = (database_of(s), role_of(s));
    let password = stored_password(f, s).await;
    assert!(
        verifier_matches(&role, &password).await,
        "the role has the stored password"
    );
    let url = format!(
        "{} dbname={db} user={role} password={password}",
        base_conninfo()
    );
    let (app, conn) = tokio_postgres::connect(&url, NoTls)
        .await
        .expect("the role logs in");
    tokio::spawn(conn);
    let who: String = app
        .query_one("SELECT current_user::text", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(who, role);
    app.batch_execute("CREATE TABLE IF NOT EXISTS repaired (id int)")
        .await
        .expect("creates in public");
}

#[tokio::test]
async fn apply_again_repairs_a_revoked_connect_grant() {
    let (f, s) = provisioned_and_synced("noconnect").await;
    let (db, role) = (database_of(&s), role_of(&s));
    admin()
        .await
        .batch_execute(&format!(
            "REVOKE CONNECT ON DATABASE \"{db}\" FROM \"{role}\""
        ))
        .await
        .expect("revoke");
    assert_drift(&f, &s, true, &["grants.database.CONNECT"]).await;
    apply_all_again(&f, &s).await;
    assert_logs_in_with_stored_password(&f, &s).await;
    f.driver.delete(&s).await.expect("delete");
}

#[tokio::test]
async fn apply_again_repairs_a_revoked_create_on_public() {
    let (f, s) = provisioned_and_synced("nocreate").await;
    let (db, role) = (database_of(&s), role_of(&s));
    admin_in(&db)
        .await
        .batch_execute(&format!("REVOKE CREATE ON SCHEMA public FROM \"{role}\""))
        .await
        .expect("revoke");
    assert_drift(&f, &s, true, &["grants.schema.public.CREATE"]).await;
    apply_all_again(&f, &s).await;
    assert_logs_in_with_stored_password(&f, &s).await;
    f.driver.delete(&s).await.expect("delete");
}

#[tokio::test]
async fn apply_again_recreates_a_dropped_role_with_the_stored_password() {
    let (f, s) = provisioned_and_synced("norole").await;
    let (db, role) = (database_of(&s), role_of(&s));
    let before = stored_password(&f, &s).await;
    // The role's grants live in its database: revoke them there, then drop it.
    admin_in(&db)
        .await
        .batch_execute(&format!("DROP OWNED BY \"{role}\""))
        .await
        .expect("drop owned");
    admin()
        .await
        .batch_execute(&format!("DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\""))
        .await
        .expect("drop role");
    assert_drift(&f, &s, true, &["role"]).await;
    apply_all_again(&f, &s).await;
    assert_eq!(
        stored_password(&f, &s).await,
        before,
        "the secret is the one stored first, not a new one"
    );
    assert_logs_in_with_stored_password(&f, &s).await;
    f.driver.delete(&s).await.expect("delete");
}

#[tokio::test]
async fn apply_again_recreates_a_dropped_database_under_its_name() {
    let (f, s) = provisioned_and_synced("nodb").await;
    let db = database_of(&s);
    admin()
        .await
        .batch_execute(&format!("DROP DATABASE \"{db}\" WITH (FORCE)"))
        .await
        .expect("drop database");
    assert_drift(&f, &s, false, &["database"]).await;
    apply_all_again(&f, &s).await;
    assert_eq!(
        comment_of_database(&db).await.as_deref(),
        Some(format!("paved:request-id={}", s.request_id).as_str()),
        "re-created under its name, marked"
    );
    assert_logs_in_with_stored_password(&f, &s).await;
    f.driver.delete(&s).await.expect("delete");
}

#[tokio::test]
async fn apply_again_restores_login_and_the_stored_password() {
    let (f, s) = provisioned_and_synced("nologin").await;
    let role = role_of(&s);
    // The password is not observed (PostgreSQL keeps only a salted verifier), but apply sets
    // the stored one again all the same.
    admin()
        .await
        .batch_execute(&format!(
            "ALTER ROLE \"{role}\" NOLOGIN PASSWORD 'changed-by-hand'"
        ))
        .await
        .expect("alter");
    assert!(!verifier_matches(&role, &stored_password(&f, &s).await).await);
    assert_drift(&f, &s, true, &["role.canLogin"]).await;
    apply_all_again(&f, &s).await;
    assert_logs_in_with_stored_password(&f, &s).await;
    f.driver.delete(&s).await.expect("delete");
}

#[tokio::test]
async fn apply_again_restores_the_connection_limit() {
    let (f, s) = provisioned_and_synced("connlimit").await;
    let role = role_of(&s);
    admin()
        .await
        .batch_execute(&format!("ALTER ROLE \"{role}\" CONNECTION LIMIT 0"))
        .await
        .expect("alter");
    assert_drift(&f, &s, true, &["role.connectionLimit"]).await;
    apply_all_again(&f, &s).await;
    assert_logs_in_with_stored_password(&f, &s).await;
    f.driver.delete(&s).await.expect("delete");
}

#[tokio::test]
async fn a_stored_password_is_set_as_a_quoted_literal() {
    let f = fixture();
    let s = spec("quoted");
    let (db, role) = (database_of(&s), role_of(&s));
    // A value paved did not generate, already in the store under the request's secret name.
    let odd = "it's'; ALTER ROLE postgres NOLOGIN; --";
    let name = format!(
        "postgres/{db}/{role}/{}",
        paved_drivers::ownership::request_token(&s.request_id)
    );
    f.secrets
        .put_if_absent(&name, odd, paved_core::provisioning::SecretLabels::of(&s))
        .await
        .expect("stored");
    provisioned(&f, &s).await;
    assert!(
        verifier_matches(&role, odd).await,
        "the role has it verbatim"
    );
    assert_drift(&f, &s, true, &[]).await;
    f.driver.delete(&s).await.expect("delete");
}
