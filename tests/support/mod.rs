//! Test support: start the platform's routers in-process on a fresh embedded store, and talk
//! HTTP to them (zero2prod's `spawn_app`).

use std::net::SocketAddr;
use std::sync::Arc;

use catalog_api::{CatalogState, Limits};
use paved_core::auth::AccessPolicy;
use paved_core::catalog::CatalogRepository;
use paved_http::{Authenticator, mint_token};
use paved_sqlite::SqliteStore;
use serde_json::{Value, json};

pub const SECRET: &[u8] = b"test-secret-that-is-long-enough-for-hs256";
pub const ADMIN_GROUP: &str = "platform-admins";
/// The golden paths every fresh catalog starts with.
pub const DEFAULT_TEMPLATES: usize = 4;

#[derive(Debug)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub catalog: Arc<CatalogRepository>,
    /// Kept alive for the test's duration; the store lives inside.
    pub dir: tempfile::TempDir,
}

/// Starts the catalog on a random loopback port over a new SQLite file.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Limits::default()).await
}

pub async fn spawn_app_with(limits: Limits) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("paved.db")).expect("open store");
    let catalog = Arc::new(
        CatalogRepository::load(Arc::new(store))
            .await
            .expect("load"),
    );
    catalog_api::install_default_templates(&catalog)
        .await
        .expect("golden paths");
    let state = CatalogState {
        repo: Arc::clone(&catalog),
        policy: Arc::new(AccessPolicy::new(ADMIN_GROUP).expect("policy")),
        limits,
        auth: Arc::new(Authenticator::hs256(SECRET)),
    };
    let router = catalog_api::router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    TestApp {
        addr,
        http: reqwest::Client::new(),
        catalog,
        dir,
    }
}

/// A token for `user` in `groups`.
pub fn token(user: &str, groups: &[&str]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    mint_token(SECRET, user, &groups, 3600).expect("token")
}

pub fn admin() -> String {
    token("root", &[ADMIN_GROUP])
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self.get(path, token).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn import(&self, token: &str, yaml: impl Into<String>) -> (u16, Value) {
        let r = self
            .http
            .post(self.url("/v1/entities/import"))
            .bearer_auth(token)
            .header("content-type", "application/yaml")
            .body(yaml.into())
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

pub fn component(name: &str, owner: &str) -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "description": format!("The {name} service")},
        "spec": {"type": "service", "lifecycle": "production", "owner": owner}
    })
}

pub fn group(name: &str) -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Group",
        "metadata": {"name": name},
        "spec": {"type": "team", "children": []}
    })
}

/// Runs `scripts/gen_catalog.py` (the seeded generator the benchmark uses too).
pub fn generated_catalog(components: usize, groups: usize) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/gen_catalog.py");
    let out = std::process::Command::new("python3")
        .args([
            script,
            "--components",
            &components.to_string(),
            "--groups",
            &groups.to_string(),
            "--seed",
            "7",
        ])
        .output()
        .expect("python3 runs the generator");
    assert!(
        out.status.success(),
        "generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// moto in server mode (the test command starts it), with state machine execution turned on:
/// moto runs state machines only when asked to. Returns the endpoint.
pub async fn moto_with_state_machines() -> String {
    let endpoint = std::env::var("PAVED_TEST_AWS_ENDPOINT").expect(
        "PAVED_TEST_AWS_ENDPOINT is not set: run scripts/test.sh, which starts moto on loopback",
    );
    let r = reqwest::Client::new()
        .post(format!("{endpoint}/moto-api/config"))
        .json(&json!({"stepfunctions": {"execute_state_machine": true}}))
        .send()
        .await
        .expect("moto config");
    assert!(r.status().is_success());
    endpoint
}
