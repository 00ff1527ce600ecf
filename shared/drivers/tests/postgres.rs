//! The PostgreSQL driver against a real server. `scripts/test.sh` starts one on loopback and
//! sets `PAVED_TEST_POSTGRES_URL`.

use std::sync::Arc;

use paved_core::provisioning::{Driver, Planner, ResourceSpec, SecretStore, TableSecretStore};
use paved_drivers::postgres::PostgresDriver;
use paved_embedded::SqliteStore;
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
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("paved.db")).expect("open"));
    let secrets: Arc<dyn SecretStore> = Arc::new(TableSecretStore::new(store));
    let driver = PostgresDriver::new(&admin_url(), Arc::clone(&secrets)).expect("driver");
    Fixture {
        _dir: dir,
        secrets,
        driver,
    }
}

fn spec(name: &str) -> ResourceSpec {
    let unique = format!("{name}-{}", std::process::id());
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
