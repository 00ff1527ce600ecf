//! The postgres-database path on the real PostgreSQL the test command starts.

use std::time::Duration;

use paved_core::provisioning::{SecretStore, TableSecretStore};
use serde_json::json;

use crate::harness::{alice, config, start_with};

fn url() -> String {
    std::env::var("PAVED_TEST_POSTGRES_URL").expect(
        "PAVED_TEST_POSTGRES_URL is not set: run scripts/test.sh, which starts PostgreSQL on loopback",
    )
}

async fn admin_client() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

async fn exists(client: &tokio_postgres::Client, sql: &str, name: &str) -> bool {
    !client.query(sql, &[&name]).await.expect("query").is_empty()
}

#[tokio::test]
async fn a_database_is_provisioned_and_a_failure_at_step_three_leaves_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = config(dir.path());
    c.drivers.postgres_url = Some(url());
    let app = start_with(dir, c, true).await;
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let pg = admin_client().await;

    let good = format!("ok-{suffix}");
    let id = app
        .submit(json!({"template": "postgres-database", "name": good, "owner": "team-a", "environment": "development",
                       "parameters": {"storage_gb": 5}}))
        .await;
    let r = app
        .wait_for(&id, &["READY", "FAILED"], Duration::from_secs(60))
        .await;
    assert_eq!(r["status"], "READY", "{r:#}");
    let outputs = &r["outputs"];
    let database = outputs["database"].as_str().expect("database").to_owned();
    let user = outputs["user"].as_str().expect("user").to_owned();
    assert!(
        outputs["passwordSecret"]
            .as_str()
            .expect("ref")
            .starts_with("secret:")
    );
    let secrets = TableSecretStore::new(std::sync::Arc::clone(&app.platform.backend.table));
    let name = outputs["passwordSecret"]
        .as_str()
        .expect("ref")
        .trim_start_matches("secret:")
        .to_owned();
    let password = secrets
        .get(&name)
        .await
        .expect("get")
        .expect("the secret exists");
    let (_, listed) = app.get("/v1/requests", &alice()).await;
    assert!(
        !listed.to_string().contains(&password),
        "the password never leaves the secret store"
    );
    assert!(!r.to_string().contains(&password));
    // The role can log in with it, to its database only.
    let login = format!(
        "host={} port={} user={user} password={password} dbname={database}",
        outputs["host"].as_str().expect("host"),
        outputs["port"]
    );
    let (own, conn) = tokio_postgres::connect(&login, tokio_postgres::NoTls)
        .await
        .expect("the role logs in");
    tokio::spawn(conn);
    own.batch_execute("CREATE TABLE orders (id int)")
        .await
        .expect("may create in its schema");

    // A permanent failure at the third step (an extension the server does not have).
    let doomed = format!("no-{suffix}");
    let id = app
        .submit(json!({"template": "postgres-database", "name": doomed, "owner": "team-a", "environment": "development",
                       "parameters": {"extensions": ["no_such_extension_here"]}}))
        .await;
    let r = app
        .wait_for(&id, &["READY", "FAILED"], Duration::from_secs(60))
        .await;
    assert_eq!(r["status"], "FAILED", "{r:#}");
    assert_eq!(
        r["failure"]["code"], "NonRetryable.PostgresRefused",
        "{r:#}"
    );
    assert!(
        r["failure"]["message"]
            .as_str()
            .expect("message")
            .contains("no_such_extension_here")
    );
    let db_name = format!("paved_development_{}", doomed.replace('-', "_"));
    let role_name = format!("{db_name}_app");
    assert!(
        !exists(
            &pg,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &db_name
        )
        .await,
        "no database left"
    );
    assert!(
        !exists(&pg, "SELECT 1 FROM pg_roles WHERE rolname = $1", &role_name).await,
        "no role left"
    );
    assert!(
        exists(
            &pg,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &database
        )
        .await,
        "the good one stays"
    );
}
