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

/// Whether task message `body` is one of request `id`'s.
fn of_request(body: &serde_json::Value, id: &str) -> bool {
    body["spec"]["request_id"] == id
}

fn has_event(r: &serde_json::Value, event: &str) -> bool {
    r["events"]
        .as_array()
        .is_some_and(|e| e.iter().any(|e| e["event"] == event))
}

#[tokio::test]
async fn a_request_cancelled_while_queued_compensates_without_touching_the_next_holders_database() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = config(dir.path());
    c.drivers.postgres_url = Some(url());
    // The worker is driven by hand, to order the two requests' tasks as the race does.
    let app = start_with(dir, c, false).await;
    let pg = admin_client().await;
    let name = format!("race-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let body = json!({"template": "postgres-database", "name": name, "owner": "team-a",
                      "environment": "development", "parameters": {}});

    // A is queued (its first task is on the queue) and cancelled: its name is free again.
    let a = app.submit(body.clone()).await;
    let (status, r) = app
        .post(
            &format!("/v1/requests/{a}/cancel"),
            &alice(),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(
        (status, r["status"].as_str()),
        (200, Some("CANCELLED")),
        "{r}"
    );
    // B takes the name and is provisioned before A's execution gets to run.
    let b = app.submit(body).await;
    let r = app
        .pump_only(
            |m| of_request(m, &b),
            &b,
            |r| r["status"] != "QUEUED" && r["status"] != "PROVISIONING",
        )
        .await;
    assert_eq!(r["status"], "READY", "{r:#}");
    let database = r["outputs"]["database"]
        .as_str()
        .expect("database")
        .to_owned();
    let user = r["outputs"]["user"].as_str().expect("user").to_owned();

    // A's execution runs late: its step is refused (cancelled) and it compensates by name.
    let r = app
        .pump_only(|m| of_request(m, &a), &a, |r| has_event(r, "undo_skipped"))
        .await;
    assert_eq!(r["status"], "CANCELLED", "{r:#}");
    let skipped = r["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["event"] == "undo_skipped")
        .expect("skipped");
    assert!(
        skipped["message"].as_str().expect("message").contains(&b),
        "{skipped}"
    );
    assert!(
        exists(
            &pg,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &database
        )
        .await,
        "B's database survives A's compensation"
    );
    assert!(
        exists(&pg, "SELECT 1 FROM pg_roles WHERE rolname = $1", &user).await,
        "and B's role"
    );
    let (_, r) = app.get(&format!("/v1/requests/{b}"), &alice()).await;
    assert_eq!(r["status"], "READY", "{r:#}");

    // B deprovisions normally.
    let (status, r) = app.delete(&format!("/v1/resources/{b}"), &alice()).await;
    assert_eq!(status, 202, "{r}");
    let r = app
        .pump_only(
            |m| of_request(m, &b),
            &b,
            |r| r["status"] == "DELETED" || r["status"] == "DELETE_FAILED",
        )
        .await;
    assert_eq!(r["status"], "DELETED", "{r:#}");
    assert!(
        !exists(
            &pg,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &database
        )
        .await
    );
}

#[tokio::test]
async fn a_late_delete_of_a_deleted_request_leaves_the_next_holders_database_alone() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = config(dir.path());
    c.drivers.postgres_url = Some(url());
    let app = start_with(dir, c, true).await;
    let pg = admin_client().await;
    let name = format!("late-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let body = json!({"template": "postgres-database", "name": name, "owner": "team-a",
                      "environment": "development", "parameters": {}});
    let a = app.submit(body.clone()).await;
    let r = app
        .wait_for(&a, &["READY", "FAILED"], Duration::from_secs(60))
        .await;
    assert_eq!(r["status"], "READY", "{r:#}");
    let (status, _) = app.delete(&format!("/v1/resources/{a}"), &alice()).await;
    assert_eq!(status, 202);
    app.wait_for(&a, &["DELETED"], Duration::from_secs(60))
        .await;
    let b = app.submit(body).await;
    let r = app
        .wait_for(&b, &["READY", "FAILED"], Duration::from_secs(60))
        .await;
    assert_eq!(r["status"], "READY", "{r:#}");
    let database = r["outputs"]["database"]
        .as_str()
        .expect("database")
        .to_owned();

    // A delete of A's that never ran before (redriven from the DLQ, say) arrives now.
    let late = paved_core::tasks::TaskMessage {
        task_token: None,
        task_id: paved_core::tasks::TaskMessage::task_id_for(
            &a,
            "resource-0",
            paved_core::tasks::TaskAction::Delete,
        ),
        resource_type: "postgres-database".into(),
        step: "delete".into(),
        action: paved_core::tasks::TaskAction::Delete,
        spec: paved_core::provisioning::ResourceSpec {
            request_id: a.clone(),
            name: name.clone(),
            owner: "team-a".into(),
            environment: "development".into(),
            parameters: json!({}),
        },
    };
    app.queue()
        .send(
            paved_workflow::TASK_QUEUE,
            paved_core::ports::QueueMessage::new(serde_json::to_string(&late).expect("json")),
        )
        .await
        .expect("send");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let r = loop {
        let (_, r) = app.get(&format!("/v1/requests/{a}"), &alice()).await;
        if has_event(&r, "delete_refused") {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "not refused: {r:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(r["status"], "DELETED", "{r:#}");
    assert!(
        exists(
            &pg,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &database
        )
        .await,
        "B's database survives A's late delete"
    );
    let (_, r) = app.get(&format!("/v1/requests/{b}"), &alice()).await;
    assert_eq!(r["status"], "READY", "{r:#}");
}
