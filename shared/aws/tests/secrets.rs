//! The Secrets Manager secret store against moto in server mode (scripts/test.sh starts it and
//! sets `PAVED_TEST_AWS_ENDPOINT`), and against endpoints that are down: a closed port, a
//! server answering 500, and a proxy that lets the secret be made but loses the answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use paved_aws::secrets::{SecretDeletion, SecretsManagerSecretStore, SecretsSettings};
use paved_core::ports::StoreError;
use paved_core::provisioning::{SecretLabels, SecretStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// moto's endpoint; `None` (the test is skipped, saying so) only outside CI.
fn endpoint() -> Option<String> {
    match std::env::var("PAVED_TEST_AWS_ENDPOINT") {
        Ok(e) if !e.trim().is_empty() => Some(e),
        _ if std::env::var_os("CI").is_some() => panic!(
            "PAVED_TEST_AWS_ENDPOINT is not set: run scripts/test.sh, which starts moto on loopback"
        ),
        _ => {
            eprintln!(
                "skipped: PAVED_TEST_AWS_ENDPOINT is not set (scripts/test.sh starts moto and sets it)"
            );
            None
        }
    }
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

const LABELS: SecretLabels<'static> = SecretLabels {
    owner: "group:default/team-a",
    request_id: "req-0123",
};

/// A store under a prefix of the test's own.
async fn store_at(endpoint: &str, deletion: SecretDeletion) -> SecretsManagerSecretStore {
    let config = paved_aws::config::for_emulator(endpoint).await;
    SecretsManagerSecretStore::new(
        &config,
        SecretsSettings {
            prefix: format!("paved/test-{}", unique()),
            deletion,
        },
    )
}

async fn client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&paved_aws::config::for_emulator(endpoint).await)
}

/// How many secrets Secrets Manager lists under `name`, scheduled for deletion or not.
async fn listed(endpoint: &str, name: &str) -> usize {
    use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
    client(endpoint)
        .await
        .list_secrets()
        .include_planned_deletion(true)
        .filters(
            Filter::builder()
                .key(FilterNameStringType::Name)
                .values(name)
                .build(),
        )
        .send()
        .await
        .expect("list")
        .secret_list()
        .iter()
        .filter(|s| s.name() == Some(name))
        .count()
}

const WEEK: SecretDeletion = SecretDeletion::RecoveryWindow { days: 7 };

#[tokio::test]
async fn put_if_absent_twice_keeps_the_first_value_under_one_arn_tagged_for_its_owner() {
    let Some(endpoint) = endpoint() else { return };
    let store = store_at(&endpoint, WEEK).await;
    let name = "postgres/dev_orders/dev_orders_app/0123456789abcdef";

    let first = store
        .put_if_absent(name, "first", LABELS)
        .await
        .expect("create");
    let again = store
        .put_if_absent(name, "second", LABELS)
        .await
        .expect("found");
    assert_eq!(again.value, "first", "a retry reuses the first value");
    assert_eq!(again.reference, first.reference, "one secret, one ARN");
    assert!(
        first
            .reference
            .starts_with("arn:aws:secretsmanager:us-east-1:")
            && first
                .reference
                .contains(&format!(":secret:{}", store.secret_id(name))),
        "{}",
        first.reference
    );
    assert_eq!(listed(&endpoint, &store.secret_id(name)).await, 1);
    assert_eq!(
        store.reference(name).await.expect("reference"),
        Some(first.reference.clone())
    );
    assert_eq!(store.get(name).await.expect("get"), Some("first".into()));
    assert_eq!(
        store.get(&first.reference).await.expect("get by ARN"),
        Some("first".into())
    );

    let described = client(&endpoint)
        .await
        .describe_secret()
        .secret_id(&first.reference)
        .send()
        .await
        .expect("describe");
    let tags: Vec<(&str, &str)> = described
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    for expected in [
        ("paved:managed", "true"),
        ("paved:owner", "group:default/team-a"),
        ("paved:request-id", "req-0123"),
    ] {
        assert!(tags.contains(&expected), "{expected:?} in {tags:?}");
    }
    assert!(
        !format!("{first:?}").contains("first\""),
        "the value is never printed: {first:?}"
    );
}

#[tokio::test]
async fn a_deleted_secret_is_gone_whether_it_waits_out_its_recovery_window_or_not() {
    let Some(endpoint) = endpoint() else { return };
    for deletion in [WEEK, SecretDeletion::Immediately] {
        let store = store_at(&endpoint, deletion).await;
        let name = "postgres/db/role/t";
        store.put_if_absent(name, "pw", LABELS).await.expect("put");
        store.delete(name).await.expect("delete");
        assert_eq!(store.get(name).await.expect("get"), None, "{deletion:?}");
        assert_eq!(
            store.reference(name).await.expect("ref"),
            None,
            "{deletion:?}"
        );
        store
            .delete(name)
            .await
            .unwrap_or_else(|e| panic!("deleting twice is fine ({deletion:?}): {e}"));
        let left = listed(&endpoint, &store.secret_id(name)).await;
        match deletion {
            // Restorable for a week, then gone.
            SecretDeletion::RecoveryWindow { .. } => assert_eq!(left, 1),
            SecretDeletion::Immediately => assert_eq!(left, 0),
        }
        // What was never there is deleted already.
        store.delete("postgres/never/made/t").await.expect("absent");
        assert_eq!(store.get("postgres/never/made/t").await.expect("get"), None);
    }
}

fn assert_retryable<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Throttled(_))),
        "{what}: an outage is worth a retry: {r:?}"
    );
}

/// Every call of the port, against an endpoint that is down in some way, is retryable.
async fn every_call_is_retryable(endpoint: &str) {
    let store = store_at(endpoint, WEEK).await;
    let started = Instant::now();
    assert_retryable("put", store.put_if_absent("a/b", "pw", LABELS).await);
    assert_retryable("get", store.get("a/b").await);
    assert_retryable("reference", store.reference("a/b").await);
    assert_retryable("delete", store.delete("a/b").await);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bounded by the SDK's retries and timeouts: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn nothing_listening_is_a_retryable_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    every_call_is_retryable(&format!("http://127.0.0.1:{port}")).await;
}

/// One HTTP/1.1 request off `stream`: its head and body (by `Content-Length`).
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((head, buf[head_end..head_end + length].to_vec()))
}

/// What Secrets Manager answers when it fails inside (awsJson 1.1's error shape).
fn internal_error() -> String {
    let body = r#"{"__type":"InternalServiceError","message":"service is down"}"#;
    format!(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/x-amz-json-1.1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Serves on loopback: each request is first passed to `upstream` (if any), and then always
/// answered 500. Returns the endpoint and how many requests it passed on.
async fn failing_server(upstream: Option<String>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let passed = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&passed);
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            let counter = Arc::clone(&counter);
            // One request per connection, answered with `connection: close`.
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut client).await else {
                    return;
                };
                if let Some(up) = &upstream {
                    // The request reaches the service; its answer is lost.
                    let mut server = TcpStream::connect(up).await.expect("upstream");
                    let (line, rest) = head.split_once("\r\n").expect("request line");
                    let request = format!("{line}\r\nconnection: close\r\n{rest}");
                    server.write_all(request.as_bytes()).await.expect("write");
                    server.write_all(&body).await.expect("write body");
                    let mut answer = Vec::new();
                    let _ = server.read_to_end(&mut answer).await;
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                if client.write_all(internal_error().as_bytes()).await.is_ok() {
                    let _ = client.shutdown().await;
                }
            });
        }
    });
    (format!("http://{addr}"), passed)
}

#[tokio::test]
async fn a_service_answering_500_is_a_retryable_error() {
    let (endpoint, _) = failing_server(None).await;
    every_call_is_retryable(&endpoint).await;
    // The service's own answer, not a broken connection, is what was classified.
    let store = store_at(&endpoint, WEEK).await;
    match store.put_if_absent("a/b", "pw", LABELS).await {
        Err(StoreError::Throttled(text)) => {
            assert!(text.contains("service is down"), "{text}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_secret_made_by_a_call_whose_answer_was_lost_is_found_by_the_retry() {
    let Some(endpoint) = endpoint() else { return };
    let upstream = endpoint.trim_start_matches("http://").to_owned();
    let (lossy, passed) = failing_server(Some(upstream)).await;
    let store = store_at(&lossy, WEEK).await;
    let name = "postgres/db/role/lost";

    // Secrets Manager makes the secret; the caller hears only 500s (after the SDK's retries).
    assert_retryable(
        "put through the lossy proxy",
        store.put_if_absent(name, "first", LABELS).await,
    );
    assert!(passed.load(Ordering::SeqCst) >= 1, "the call reached moto");

    // The step's retry (the service is back) finds that secret: no second one, no orphan.
    let healthy = {
        let config = paved_aws::config::for_emulator(&endpoint).await;
        SecretsManagerSecretStore::new(&config, store.settings().clone())
    };
    let retried = healthy
        .put_if_absent(name, "second", LABELS)
        .await
        .expect("retry");
    assert_eq!(retried.value, "first", "the first attempt's value wins");
    assert_eq!(listed(&endpoint, &healthy.secret_id(name)).await, 1);
    // And undoing the step removes it.
    healthy.delete(name).await.expect("delete");
    assert_eq!(healthy.get(name).await.expect("get"), None);
}
