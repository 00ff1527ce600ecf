//! The end-to-end provisioning scenario: a request through the requests API → the
//! provisioning state machine → a task on the task queue → the provision worker, invoked with
//! SQS batch events the way Lambda's event source mapping invokes it (delete what succeeded,
//! leave `batchItemFailures` for redelivery) → the PostgreSQL driver → READY; and a permanent
//! failure at the third step, compensated in reverse so that nothing is left. The AWS run
//! creates its stack with `paved aws bootstrap`'s code, from the SAM template.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use catalog_api::{CatalogState, Limits};
use paved_aws::AwsSettings;
use paved_core::auth::AccessPolicy;
use paved_core::catalog::CatalogRepository;
use paved_core::policy::PolicyEngine;
use paved_core::provisioning::TableSecretStore;
use paved_core::services::RequestsService;
use paved_drivers::config::DriverConfig;
use paved_wiring::{Backend, BackendConfig, WorkflowUse};
use provision_worker::lambda::handle_event;
use provision_worker::{ProvisionWorker, WorkerConfig};
use requests_api::RequestsState;
use serde_json::{Value, json};
use tower::ServiceExt;

const SECRET: &[u8] = b"conformance-secret-that-is-long-enough";

struct Stack {
    backend: Backend,
    router: Router,
    requests: Arc<RequestsService>,
    worker: Arc<ProvisionWorker>,
    _dir: tempfile::TempDir,
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn postgres_url() -> String {
    std::env::var("PAVED_TEST_POSTGRES_URL").expect(
        "PAVED_TEST_POSTGRES_URL is not set: run scripts/test.sh, which starts PostgreSQL on loopback",
    )
}

async fn embedded_stack() -> Stack {
    let dir = tempfile::tempdir().expect("dir");
    let config = BackendConfig::Embedded {
        data_dir: dir.path().to_owned(),
        durability: paved_sqlite::Durability::Normal,
    };
    stack_on(config, dir).await
}

async fn aws_stack() -> Stack {
    let endpoint = paved_tests::moto_with_state_machines().await;
    let sdk = paved_aws::config::for_emulator(&endpoint).await;
    let spec = paved_aws::stack::StackSpec::shipped().expect("the template");
    let stack = paved_aws::bootstrap::bootstrap(&sdk, &spec, &unique("conf"))
        .await
        .expect("bootstrap");
    let environment: HashMap<&str, String> = stack.environment().into_iter().collect();
    let settings = AwsSettings::from_lookup(|k| match k {
        "AWS_ENDPOINT_URL" => Some(endpoint.clone()),
        _ => environment.get(k).cloned(),
    });
    stack_on(
        BackendConfig::Aws(settings),
        tempfile::tempdir().expect("dir"),
    )
    .await
}

/// The platform's functions over one backend, wired as their Lambda entry points wire them.
async fn stack_on(config: BackendConfig, dir: tempfile::TempDir) -> Stack {
    let backend = Backend::open(&config, WorkflowUse::StartsExecutions)
        .await
        .expect("open the backend");
    let catalog = Arc::new(
        CatalogRepository::load(Arc::clone(&backend.table))
            .await
            .expect("catalog"),
    );
    catalog_api::install_default_templates(&catalog)
        .await
        .expect("templates");
    let drivers_config = DriverConfig {
        postgres_url: Some(postgres_url()),
        ..DriverConfig::default()
    };
    let drivers = drivers_config
        .build(
            Arc::new(TableSecretStore::new(Arc::clone(&backend.table))),
            None,
        )
        .await
        .expect("drivers");
    let access = Arc::new(AccessPolicy::new("platform-admins").expect("access"));
    let auth = Arc::new(paved_http::Authenticator::hs256(SECRET));
    let requests = Arc::new(RequestsService::new(
        backend.requests_ports(),
        Arc::clone(&catalog),
        PolicyEngine::default_bundle().expect("guardrails"),
        Arc::clone(&access),
        &paved_core::provisioning::planners_of(&drivers),
        HashMap::new(),
    ));
    let router = Router::new()
        .merge(catalog_api::router(CatalogState {
            repo: catalog,
            policy: access,
            limits: Limits::default(),
            auth: Arc::clone(&auth),
        }))
        .merge(requests_api::router(RequestsState {
            service: Arc::clone(&requests),
            auth,
        }));
    let worker = Arc::new(ProvisionWorker::on_backend(
        &backend,
        drivers,
        WorkerConfig::default(),
        None,
    ));
    Stack {
        backend,
        router,
        requests,
        worker,
        _dir: dir,
    }
}

fn token(user: &str, groups: &[&str]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    paved_http::mint_token(SECRET, user, &groups, 600).expect("token")
}

async fn call(
    s: &Stack,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    if body.is_some() {
        request = request.header("content-type", "application/yaml");
    }
    let response = s
        .router
        .clone()
        .oneshot(
            request
                .body(Body::from(body.unwrap_or_default().to_owned()))
                .expect("request"),
        )
        .await
        .expect("infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// One invocation of the worker by the event source mapping of `queue`: a batch of up to 10
/// messages as an SQS event; the messages not reported as failures are deleted.
async fn invoke_from(s: &Stack, queue: &str) -> usize {
    let received = s
        .backend
        .queue
        .receive(queue, 10, Duration::from_secs(60))
        .await
        .expect("receive");
    if received.is_empty() {
        return 0;
    }
    let records: Vec<Value> = received
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": m.receive_count.to_string(),
                    "SentTimestamp": "1700000000000",
                    "SenderId": "AROAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1700000000000"
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:paved-task-queue",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    let event: SqsEvent =
        serde_json::from_value(json!({ "Records": records })).expect("an SQS event");
    let response = handle_event(&s.worker, event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let done: Vec<String> = received
        .iter()
        .filter(|m| !failed.contains(&m.message_id.as_str()))
        .map(|m| m.receipt_handle.clone())
        .collect();
    s.backend
        .queue
        .delete_batch(queue, &done)
        .await
        .expect("delete");
    received.len()
}

/// Drives both queues until the request settles.
async fn until_settled(s: &Stack, id: &str, alice: &str) -> Value {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(90) {
        let tasks = invoke_from(s, &s.backend.queues.tasks).await;
        let notes = invoke_from(s, &s.backend.queues.notifications).await;
        let (status, r) = call(s, "GET", &format!("/v1/requests/{id}"), alice, None).await;
        assert_eq!(status, 200, "{r}");
        if matches!(r["status"].as_str(), Some("READY" | "FAILED")) {
            return r;
        }
        if tasks + notes == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("request {id} did not settle in 90 s");
}

async fn submit(s: &Stack, alice: &str, body: Value) -> String {
    let response = s
        .router
        .clone()
        .oneshot(
            Request::builder()
                .method("POST")
                .uri("/v1/requests")
                .header("authorization", format!("Bearer {alice}"))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .expect("request"),
        )
        .await
        .expect("infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let r: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(status, 202, "{r}");
    r["id"].as_str().expect("id").to_owned()
}

/// `(step id, status)` of a request view.
fn step_statuses(r: &Value) -> Vec<(&str, &str)> {
    r["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|st| {
            (
                st["id"].as_str().unwrap_or(""),
                st["status"].as_str().unwrap_or(""),
            )
        })
        .collect()
}

async fn pg_has(sql: &str, name: &str) -> bool {
    let (client, conn) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    !client.query(sql, &[&name]).await.expect("query").is_empty()
}

async fn a_request_is_provisioned_then_a_failing_one_is_compensated(s: Stack) {
    let admin = token("admin", &["platform-admins"]);
    let (status, r) = call(
        &s,
        "POST",
        "/v1/entities/import",
        &admin,
        Some("apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-a}\nspec: {type: team, children: []}\n"),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let alice = token("alice", &["team-a"]);

    let good = unique("ok-");
    let id = submit(
        &s,
        &alice,
        json!({"template": "postgres-database", "name": good, "owner": "team-a",
               "environment": "development", "parameters": {"storage_gb": 5}}),
    )
    .await;
    let r = until_settled(&s, &id, &alice).await;
    assert_eq!(r["status"], "READY", "{r:#}");
    let steps = step_statuses(&r);
    assert_eq!(
        steps,
        [
            ("database", "SUCCEEDED"),
            ("role", "SUCCEEDED"),
            ("grants", "SUCCEEDED")
        ]
    );
    let database = r["outputs"]["database"].as_str().expect("database");
    assert!(pg_has("SELECT 1 FROM pg_database WHERE datname = $1", database).await);

    // The third step fails for good: it and the applied steps are undone in reverse (a step
    // may have half-applied before failing).
    let doomed = unique("no-");
    let id = submit(
        &s,
        &alice,
        json!({"template": "postgres-database", "name": doomed, "owner": "team-a",
               "environment": "development", "parameters": {"extensions": ["no_such_extension_here"]}}),
    )
    .await;
    let r = until_settled(&s, &id, &alice).await;
    assert_eq!(r["status"], "FAILED", "{r:#}");
    assert_eq!(
        r["failure"]["code"], "NonRetryable.PostgresRefused",
        "{r:#}"
    );
    let steps = step_statuses(&r);
    assert_eq!(
        steps,
        [
            ("database", "UNDONE"),
            ("role", "UNDONE"),
            ("grants", "UNDONE")
        ]
    );
    let db_name = format!("paved_development_{}", doomed.replace('-', "_"));
    assert!(!pg_has("SELECT 1 FROM pg_database WHERE datname = $1", &db_name).await);
    assert!(
        !pg_has(
            "SELECT 1 FROM pg_roles WHERE rolname = $1",
            &format!("{db_name}_app")
        )
        .await
    );
    // Nothing is left on the queues.
    for queue in [&s.backend.queues.tasks, &s.backend.queues.notifications] {
        assert_eq!(invoke_from(&s, queue).await, 0, "{queue} is drained");
    }
}

/// A request recorded QUEUED whose execution never started (StartExecution failed after the
/// record was written) is started by the sweeper: `paved up`'s background loop locally, the
/// `requests-sweeper` function's schedule on AWS; both call `resume_queued`.
async fn a_request_left_queued_is_started_by_the_sweeper(s: Stack) {
    let admin = token("admin", &["platform-admins"]);
    let (status, r) = call(
        &s,
        "POST",
        "/v1/entities/import",
        &admin,
        Some("apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-a}\nspec: {type: team, children: []}\n"),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let alice = token("alice", &["team-a"]);
    let id = format!("req-{}", uuid::Uuid::new_v4().simple());
    s.requests
        .repository()
        .create(paved_core::requests::NewRequest {
            id: id.clone(),
            template: "postgres-database".into(),
            resource_type: "postgres-database".into(),
            name: unique("swept-"),
            owner: "group:default/team-a".into(),
            environment: "development".into(),
            parameters: json!({"storage_gb": 5}),
            requester: "user:default/alice".into(),
            steps: vec!["database".into(), "role".into(), "grants".into()],
            needs_approval: false,
            reconcile: Default::default(),
        })
        .await
        .expect("recorded");
    s.requests
        .repository()
        .transition(
            &id,
            paved_core::requests::RequestStatus::Queued,
            "no approval needed",
        )
        .await
        .expect("queued");
    // Nothing runs it: no execution was started.
    assert_eq!(invoke_from(&s, &s.backend.queues.tasks).await, 0);

    let started = s.requests.resume_queued().await.expect("sweep");
    assert!(started >= 1, "{started}");
    let r = until_settled(&s, &id, &alice).await;
    assert_eq!(r["status"], "READY", "{r:#}");
    // A second sweep finds nothing QUEUED and starts nothing twice.
    s.requests.resume_queued().await.expect("sweep");
    assert_eq!(invoke_from(&s, &s.backend.queues.tasks).await, 0);
}

mod embedded {
    #[tokio::test]
    async fn a_request_left_queued_is_started_by_the_sweeper() {
        super::a_request_left_queued_is_started_by_the_sweeper(super::embedded_stack().await).await;
    }

    #[tokio::test]
    async fn a_request_is_provisioned_then_a_failing_one_is_compensated() {
        super::a_request_is_provisioned_then_a_failing_one_is_compensated(
            super::embedded_stack().await,
        )
        .await;
    }
}

mod aws {
    #[tokio::test]
    async fn a_request_left_queued_is_started_by_the_sweeper() {
        super::a_request_left_queued_is_started_by_the_sweeper(super::aws_stack().await).await;
    }

    #[tokio::test]
    async fn a_request_is_provisioned_then_a_failing_one_is_compensated() {
        super::a_request_is_provisioned_then_a_failing_one_is_compensated(super::aws_stack().await)
            .await;
    }
}
