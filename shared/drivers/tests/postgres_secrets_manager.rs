//! The PostgreSQL driver with its passwords in Secrets Manager, as the worker runs it on AWS:
//! against the real server of scripts/test.sh (`PAVED_TEST_POSTGRES_URL`) and moto
//! (`PAVED_TEST_AWS_ENDPOINT`), and with Secrets Manager down. Skipped, saying so, only when
//! the servers are not there and this is not CI.

use std::sync::Arc;

use paved_aws::secrets::{SecretDeletion, SecretsManagerSecretStore, SecretsSettings};
use paved_core::provisioning::{Driver, DriverError, ResourceSpec, SecretStore};
use paved_drivers::postgres::PostgresDriver;
use serde_json::json;

fn env(key: &str, what: &str) -> Option<String> {
    match std::env::var(key) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{key} is not set: run scripts/test.sh, which starts {what} on loopback")
        }
        _ => {
            eprintln!("skipped: {key} is not set (scripts/test.sh starts {what} and sets it)");
            None
        }
    }
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

fn spec(name: &str) -> ResourceSpec {
    let unique = format!("{name}-{}", unique());
    ResourceSpec {
        request_id: format!("req-{unique}"),
        name: unique,
        owner: "group:default/team-a".into(),
        environment: "dev".into(),
        parameters: json!({"storage_gb": 1, "max_connections": 5}),
    }
}

async fn secrets_at(endpoint: &str) -> Arc<dyn SecretStore> {
    let config = paved_aws::config::for_emulator(endpoint).await;
    Arc::new(SecretsManagerSecretStore::new(
        &config,
        SecretsSettings {
            prefix: format!("paved/test-{}", unique()),
            deletion: SecretDeletion::RecoveryWindow { days: 7 },
        },
    ))
}

async fn role_exists(admin_url: &str, role: &str) -> bool {
    let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .expect("admin connects");
    tokio::spawn(conn);
    !client
        .query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
        .await
        .expect("query")
        .is_empty()
}

fn role_of(s: &ResourceSpec) -> String {
    format!("paved_{}_{}_app", s.environment, s.name.replace('-', "_"))
}

#[tokio::test]
async fn outputs_carry_the_secrets_arn_a_retry_reuses_it_and_undo_deletes_it() {
    let (Some(pg), Some(aws)) = (
        env("PAVED_TEST_POSTGRES_URL", "PostgreSQL"),
        env("PAVED_TEST_AWS_ENDPOINT", "moto"),
    ) else {
        return;
    };
    let secrets = secrets_at(&aws).await;
    let driver = PostgresDriver::new(&pg, Arc::clone(&secrets)).expect("driver");
    let s = spec("ledger");

    driver.apply(&s, "database").await.expect("database");
    let role = driver.apply(&s, "role").await.expect("role");
    let arn = role["passwordSecret"]
        .as_str()
        .expect("reference")
        .to_owned();
    assert!(arn.starts_with("arn:aws:secretsmanager:"), "{role}");
    // A retried step finds its secret: the same ARN, and the role keeps the same password.
    let password = secrets.get(&arn).await.expect("get").expect("stored");
    assert_eq!(driver.apply(&s, "role").await.expect("again"), role);
    assert_eq!(
        secrets.get(&arn).await.expect("get"),
        Some(password.clone())
    );
    let outputs = driver.apply(&s, "grants").await.expect("grants");
    assert_eq!(outputs["passwordSecret"], arn, "{outputs}");
    assert!(!outputs.to_string().contains(&password), "{outputs}");
    assert_eq!(
        driver.status(&s).await.expect("status").expect("exists")["passwordSecret"],
        arn
    );

    // Deprovisioning (and a failed request's compensation) undoes `role`: the secret goes.
    driver.delete(&s).await.expect("delete");
    assert_eq!(secrets.get(&arn).await.expect("get"), None);
    driver.delete(&s).await.expect("deleting twice is fine");
    assert!(!role_exists(&pg, &role_of(&s)).await);
}

#[tokio::test]
async fn a_secrets_manager_outage_fails_the_role_step_retryably_with_nothing_created() {
    let Some(pg) = env("PAVED_TEST_POSTGRES_URL", "PostgreSQL") else {
        return;
    };
    // Secrets Manager is down: nothing listens where the client calls.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let secrets = secrets_at(&format!("http://127.0.0.1:{port}")).await;
    let driver = PostgresDriver::new(&pg, secrets).expect("driver");
    let s = spec("outage");

    driver.apply(&s, "database").await.expect("database");
    let err = driver.apply(&s, "role").await.expect_err("no secret store");
    assert!(
        matches!(
            err,
            DriverError::Retryable {
                code: "Retryable.SecretStore",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        !role_exists(&pg, &role_of(&s)).await,
        "the role is not created without its secret"
    );
    // The state machine compensates: undoing `role` needs the store too, and says so.
    let undo = driver.undo(&s, "role").await.expect_err("store still down");
    assert_eq!(undo.code(), "Retryable.SecretStore");
    driver.undo(&s, "database").await.expect("undo database");
}
