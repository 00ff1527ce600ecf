//! Leaks with the real drivers: PostgreSQL (the server the test command starts), SQS and
//! DynamoDB on moto, and the git service driver. Each test provisions through the API, ends
//! the request in the platform's records only (what it made stays on the provider, marked),
//! runs a scan, and checks that the leak is reported (and that what paved cannot prove it
//! made is not), then adopts or deletes it as an admin and checks the provider itself.
//!
//! The servers are shared by the whole test run: other tests' resources are there too, and
//! to this platform they are another installation's (`unknownRequest`), so each test looks
//! at its own names only.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{App, admin, config, start_with};
use crate::leaks::{act, end_without_undo, named, pump_for, scan};
use crate::reconcile::{condition, reconcile};
use crate::reconcile_real::{
    Moto, admin_client, deprovision, endpoint, exists, provisioned_database, provisioned_queue,
    provisioned_table, ready, unique, url,
};

/// The platform with the real drivers on, scanned at a rate that keeps the test short.
async fn platform() -> App {
    endpoint();
    let dir = tempfile::tempdir().expect("dir");
    let mut c = config(dir.path());
    c.drivers.postgres_url = Some(url());
    c.drivers.aws_region = Some("us-east-1".into());
    c.worker.reconcile.default_rate = 500.0;
    start_with(dir, c, false).await
}

fn id_of(leak: &Value) -> String {
    leak["id"].as_str().expect("id").to_owned()
}

async fn adopt(app: &App, leak: &Value) -> Value {
    let (status, body) = act(app, "adopt", &id_of(leak), &admin()).await;
    assert_eq!(status, 200, "{body}");
    pump_for(app, Duration::from_millis(500)).await;
    body
}

async fn delete(app: &App, leak: &Value) {
    let (status, body) = act(app, "delete", &id_of(leak), &admin()).await;
    assert_eq!(status, 202, "{body}");
}

/// What a scan reports under `name`: `(kind, reason)` pairs, sorted.
fn reported(leaks: &[Value], name: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = named(leaks, name)
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().expect("kind").to_owned(),
                l["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

const DATABASE: &str = "SELECT 1 FROM pg_database WHERE datname = $1";
const ROLE: &str = "SELECT 1 FROM pg_roles WHERE rolname = $1";

#[tokio::test]
async fn postgres_a_finished_requests_database_and_role_are_leaks_deleted_or_adopted_by_an_admin() {
    let app = platform().await;
    let pg = admin_client().await;
    let left = provisioned_database(&app, "leak").await;
    let kept = provisioned_database(&app, "adopt").await;
    end_without_undo(&app, &left.id).await;
    end_without_undo(&app, &kept.id).await;
    // A pending name only paved makes, never marked (a crash between CREATE and COMMENT), and
    // a database under paved's naming made by hand without a marker.
    let pending = format!(
        "pavedtmp_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    let by_hand = unique("paved_development_byhand").replace('-', "_");
    for db in [&pending, &by_hand] {
        pg.batch_execute(&format!("CREATE DATABASE \"{db}\""))
            .await
            .expect("create by hand");
    }

    let leaks = scan(&app, "postgres-database").await;
    let finished = vec![("database".to_owned(), "requestFinished".to_owned())];
    assert_eq!(reported(&leaks, &left.database), finished, "{leaks:#?}");
    assert_eq!(
        reported(&leaks, &left.user),
        [("role".to_owned(), "requestFinished".to_owned())]
    );
    assert_eq!(
        reported(&leaks, &pending),
        [("database".to_owned(), "unmarked".to_owned())]
    );
    assert!(
        named(&leaks, &by_hand).is_empty(),
        "unmarked under a real name: paved cannot tell it from a hand-made one"
    );
    let pending_leak = named(&leaks, &pending)[0].clone();
    let (status, body) = act(&app, "delete", &id_of(&pending_leak), &admin()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("leak_not_actionable")),
        "{body}"
    );

    // Deleted: the role (with its stored password) and the database are gone on the server.
    for leak in named(&leaks, &left.database)
        .into_iter()
        .chain(named(&leaks, &left.user))
    {
        delete(&app, leak).await;
    }
    pump_for(&app, Duration::from_secs(1)).await;
    assert!(
        !exists(&pg, DATABASE, &left.database).await,
        "database dropped"
    );
    assert!(!exists(&pg, ROLE, &left.user).await, "role dropped");
    assert!(
        exists(&pg, DATABASE, &pending).await,
        "the unmarked one is left alone"
    );
    assert!(exists(&pg, DATABASE, &by_hand).await);

    // Adopted: READY, observed in sync, and its role logs in with the stored password again.
    let database_leak = named(&leaks, &kept.database)[0].clone();
    let view = adopt(&app, &database_leak).await;
    assert_eq!(view["id"], kept.id.as_str());
    let r = reconcile(&app, &kept.id).await;
    assert_eq!(condition(&r, "Synced")["status"], "True", "{r:#}");
    kept.assert_accepts_stored_credentials().await;
    let after = scan(&app, "postgres-database").await;
    assert!(named(&after, &kept.database).is_empty(), "{after:#?}");
    assert!(named(&after, &kept.user).is_empty(), "{after:#?}");
    assert!(named(&after, &left.database).is_empty(), "{after:#?}");
    deprovision(&app, &kept.id).await;
    assert!(!exists(&pg, DATABASE, &kept.database).await);
    for db in [&pending, &by_hand] {
        pg.batch_execute(&format!("DROP DATABASE \"{db}\""))
            .await
            .expect("drop by hand");
    }
}

#[tokio::test]
async fn sqs_and_dynamodb_leaks_are_reported_and_deleted_or_adopted_on_moto() {
    let app = platform().await;
    let moto = Moto::new();
    let (queue_id, url, dlq) = provisioned_queue(&app).await;
    let queue = url.rsplit('/').next().expect("name").to_owned();
    let (table_id, table) = provisioned_table(&app).await;
    end_without_undo(&app, &queue_id).await;
    end_without_undo(&app, &table_id).await;
    // A queue under paved's naming, made by hand without the tag: not reported.
    let by_hand = unique("paved-development-byhand");
    moto.sqs_ok("CreateQueue", json!({"QueueName": by_hand}))
        .await;

    let queues = scan(&app, "sqs-queue").await;
    let finished = [("queue".to_owned(), "requestFinished".to_owned())];
    assert_eq!(reported(&queues, &queue), finished, "{queues:#?}");
    assert_eq!(reported(&queues, &dlq), finished, "{queues:#?}");
    assert!(named(&queues, &by_hand).is_empty());
    let tables = scan(&app, "dynamodb-table").await;
    assert_eq!(
        reported(&tables, &table),
        [("table".to_owned(), "requestFinished".to_owned())],
        "{tables:#?}"
    );

    for leak in named(&queues, &queue)
        .into_iter()
        .chain(named(&queues, &dlq))
    {
        delete(&app, leak).await;
    }
    pump_for(&app, Duration::from_secs(1)).await;
    assert_eq!(moto.queue_url(&queue).await, None, "the queue is deleted");
    assert_eq!(
        moto.queue_url(&dlq).await,
        None,
        "and its dead-letter queue"
    );
    assert!(moto.queue_url(&by_hand).await.is_some(), "left alone");

    let view = adopt(&app, named(&tables, &table)[0]).await;
    assert_eq!(view["id"], table_id.as_str());
    let r = reconcile(&app, &table_id).await;
    assert_eq!(condition(&r, "Synced")["status"], "True", "{r:#}");
    assert!(moto.table(&table).await.is_some());
    deprovision(&app, &table_id).await;
    moto.sqs_ok(
        "DeleteQueue",
        json!({"QueueUrl": moto.queue_url(&by_hand).await.expect("url")}),
    )
    .await;
}

#[tokio::test]
async fn git_a_finished_requests_repository_is_a_leak_and_an_unmarked_pending_one_too() {
    let app = platform().await;
    let name = unique("billing");
    let (id, outputs) = ready(
        &app,
        json!({"template": "service", "name": name, "owner": "team-a",
               "environment": "development", "parameters": {"language": "python-fastapi"}}),
    )
    .await;
    let repository = outputs["repository"]
        .as_str()
        .expect("repository")
        .to_owned();
    let bare = Path::new(&repository);
    let root = bare.parent().expect("the git root");
    end_without_undo(&app, &id).await;
    // A pending repository a crash left before its marker, and a bare repository made by hand.
    let pending = root
        .join(".staging")
        .join(format!("{name}.0123456789abcdef.git"));
    std::fs::create_dir_all(&pending).expect("pending");
    let by_hand = root.join("handmade.git");
    std::fs::create_dir_all(&by_hand).expect("by hand");

    let leaks = scan(&app, "service").await;
    let repo_name = format!("{name}.git");
    assert_eq!(
        reported(&leaks, &repo_name),
        [("repository".to_owned(), "requestFinished".to_owned())],
        "{leaks:#?}"
    );
    let pending_name = format!(".staging/{name}.0123456789abcdef.git");
    assert_eq!(
        reported(&leaks, &pending_name),
        [("repository".to_owned(), "unmarked".to_owned())]
    );
    assert!(named(&leaks, "handmade.git").is_empty());

    delete(&app, named(&leaks, &repo_name)[0]).await;
    pump_for(&app, Duration::from_millis(500)).await;
    assert!(!bare.exists(), "the repository is deleted");
    assert!(
        pending.exists() && by_hand.exists(),
        "the others are left alone"
    );
    let after = scan(&app, "service").await;
    assert!(named(&after, &repo_name).is_empty(), "{after:#?}");
}
