//! The reconciliation loop end to end with the real drivers, through the HTTP API on the
//! embedded backend (`paved up` built in-process, the worker pumped by hand): PostgreSQL (the
//! server the test command starts), SQS and DynamoDB on moto, and the git service driver.
//!
//! Each test provisions a resource through `POST /v1/requests`, sees it in sync, changes it by
//! hand behind paved's back, and then:
//! - under `observe` (the golden paths' default), one `POST /v1/resources/{id}/reconcile`
//!   reports exactly that change as drift (`Synced=False`, `Ready=False` when the resource
//!   itself is gone), and the change is still there afterwards: observing repaired nothing;
//! - `PATCH`ed to `enforce`, one reconcile repairs it (`Synced=True`, reason `Repaired`),
//!   which the test checks on the provider itself, not only through paved;
//! - back under `observe`, a fresh observation agrees, and deprovisioning removes the
//!   repaired resource (what the repair made carries paved's ownership marker).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use paved_core::provisioning::{SecretStore, TableSecretStore};
use serde_json::{Value, json};
use tokio_postgres::error::SqlState;

use crate::harness::{App, admin, alice, config, start_with};
use crate::reconcile::{condition, drift_paths, reconcile, resource};

pub(crate) fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Submits `body` as alice and pumps the worker until the request is READY: its id and
/// outputs.
pub(crate) async fn ready(app: &App, body: Value) -> (String, Value) {
    let id = app.submit(body).await;
    for _ in 0..500 {
        app.pump_once().await;
        let (_, r) = app.get(&format!("/v1/requests/{id}"), &admin()).await;
        if r["status"] == "READY" {
            return (id, r["outputs"].clone());
        }
        assert_ne!(r["status"], "FAILED", "{r:#}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} did not become READY");
}

/// Deprovisions the resource and pumps until its request is DELETED.
pub(crate) async fn deprovision(app: &App, id: &str) {
    let (status, body) = app.delete(&format!("/v1/resources/{id}"), &alice()).await;
    assert_eq!(status, 202, "{body}");
    for _ in 0..500 {
        app.pump_once().await;
        let (_, r) = app.get(&format!("/v1/requests/{id}"), &admin()).await;
        if r["status"] == "DELETED" {
            return;
        }
        assert_ne!(r["status"], "DELETE_FAILED", "{r:#}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} was not deleted");
}

async fn set_policy(app: &App, id: &str, policy: &str) {
    let (status, r) = app
        .patch(
            &format!("/v1/resources/{id}"),
            &alice(),
            &json!({"managementPolicy": policy}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["managementPolicy"], policy, "{r:#}");
}

fn history(r: &Value) -> Vec<String> {
    r["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| e["event"].as_str().expect("event").to_owned())
        .collect()
}

fn sorted_drift(r: &Value) -> Vec<String> {
    let mut paths = drift_paths(r);
    paths.sort();
    paths
}

/// The drift entry at `path`.
fn drift_at<'a>(r: &'a Value, path: &str) -> &'a Value {
    r["drift"]
        .as_array()
        .expect("drift")
        .iter()
        .find(|d| d["path"] == path)
        .unwrap_or_else(|| panic!("no drift at {path}: {r:#}"))
}

/// Observed as provisioned: the real driver reads back what it made, with no false drift.
pub(crate) async fn assert_in_sync(app: &App, id: &str) {
    let r = reconcile(app, id).await;
    assert_eq!(
        r["managementPolicy"], "observe",
        "the golden path's default"
    );
    let synced = condition(&r, "Synced");
    assert_eq!(
        (synced["status"].as_str(), synced["reason"].as_str()),
        (Some("True"), Some("Observed")),
        "{r:#}"
    );
    assert_eq!(condition(&r, "Ready")["status"], "True", "{r:#}");
    assert!(drift_paths(&r).is_empty(), "{r:#}");
    assert!(r["lastObservedAt"].is_string(), "{r:#}");
    assert!(history(&r).is_empty(), "{r:#}");
}

/// One reconcile under `observe` reports exactly `paths` as drift; `exists` is whether the
/// resource itself is still there (`Ready`).
async fn assert_drifted(app: &App, id: &str, paths: &[&str], exists: bool) -> Value {
    let r = reconcile(app, id).await;
    let synced = condition(&r, "Synced");
    assert_eq!(
        (synced["status"].as_str(), synced["reason"].as_str()),
        (Some("False"), Some("Drifted")),
        "{r:#}"
    );
    assert_eq!(sorted_drift(&r), paths, "{r:#}");
    for path in paths {
        assert!(
            synced["message"].as_str().expect("message").contains(path),
            "{r:#}"
        );
    }
    let ready = condition(&r, "Ready");
    let expected = if exists {
        ("True", "Exists")
    } else {
        ("False", "Missing")
    };
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some(expected.0), Some(expected.1)),
        "{r:#}"
    );
    assert!(r["driftedSince"].is_string(), "{r:#}");
    assert_eq!(history(&r), ["drift_detected"], "{r:#}");
    // Listed among the drifted resources.
    let (status, list) = app.get("/v1/resources?drifted=true", &alice()).await;
    assert_eq!(status, 200, "{list}");
    assert!(
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|i| i["id"] == id),
        "{list:#}"
    );
    r
}

/// PATCHed to `enforce`, one reconcile repairs the drift (`event`: `repaired`, or `recreated`
/// for a resource that was gone), and the request's log says so; then, back under `observe`,
/// a fresh observation finds it in sync. Only paved's view: the caller checks the provider.
async fn assert_repaired(app: &App, id: &str, event: &str) {
    set_policy(app, id, "enforce").await;
    let r = reconcile(app, id).await;
    let synced = condition(&r, "Synced");
    assert_eq!(
        (synced["status"].as_str(), synced["reason"].as_str()),
        (Some("True"), Some("Repaired")),
        "{r:#}"
    );
    let ready = condition(&r, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("True"), Some("Exists")),
        "{r:#}"
    );
    assert!(drift_paths(&r).is_empty(), "{r:#}");
    assert!(r["driftedSince"].is_null(), "{r:#}");
    assert_eq!(
        history(&r),
        ["drift_detected", "policy_changed", event],
        "{r:#}"
    );
    let repair = r["history"]
        .as_array()
        .expect("history")
        .last()
        .expect("the repair");
    assert!(
        !repair["drift"].as_array().expect("drift").is_empty(),
        "the repair names what it repaired: {r:#}"
    );
    let (_, req) = app.get(&format!("/v1/requests/{id}"), &admin()).await;
    assert_eq!(req["status"], "READY", "{req:#}");
    let logged = req["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event"] == "repaired")
        .count();
    assert_eq!(logged, 1, "one repair in the request's log: {req:#}");

    set_policy(app, id, "observe").await;
    let r = reconcile(app, id).await;
    let synced = condition(&r, "Synced");
    assert_eq!(
        (synced["status"].as_str(), synced["reason"].as_str()),
        (Some("True"), Some("Observed")),
        "the repair holds: {r:#}"
    );
    assert!(drift_paths(&r).is_empty(), "{r:#}");
    assert_eq!(
        history(&r),
        ["drift_detected", "policy_changed", event, "policy_changed"],
        "{r:#}"
    );
    let again = resource(app, id).await;
    assert_eq!(condition(&again, "Synced")["status"], "True", "{again:#}");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

pub(crate) fn url() -> String {
    std::env::var("PAVED_TEST_POSTGRES_URL").expect(
        "PAVED_TEST_POSTGRES_URL is not set: run scripts/test.sh, which starts PostgreSQL on loopback",
    )
}

pub(crate) async fn admin_client() -> tokio_postgres::Client {
    admin_in(None).await
}

/// A superuser session, in `db` or in the URL's database.
async fn admin_in(db: Option<&str>) -> tokio_postgres::Client {
    let url = url();
    let target = match db {
        None => url,
        Some(db) => {
            let (url, query) = url.split_once('?').unwrap_or((&url, ""));
            let (base, _) = url.rsplit_once('/').expect("a database in the URL");
            if query.is_empty() {
                format!("{base}/{db}")
            } else {
                format!("{base}/{db}?{query}")
            }
        }
    };
    let (client, conn) = tokio_postgres::connect(&target, tokio_postgres::NoTls)
        .await
        .expect("connect as the superuser");
    tokio::spawn(conn);
    client
}

pub(crate) async fn exists(client: &tokio_postgres::Client, sql: &str, name: &str) -> bool {
    !client.query(sql, &[&name]).await.expect("query").is_empty()
}

/// A provisioned database, as its outputs and the secret store describe it.
pub(crate) struct Database {
    pub id: String,
    host: String,
    port: u64,
    pub database: String,
    pub user: String,
    password: String,
}

impl Database {
    /// Logs in as the role, with the stored password, to its database.
    async fn login(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let login = format!(
            "host={} port={} user={} password={} dbname={}",
            self.host, self.port, self.user, self.password, self.database
        );
        let (client, conn) = tokio_postgres::connect(&login, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        Ok(client)
    }

    /// Why the role's login to its database is refused.
    async fn login_refused(&self) -> SqlState {
        let Err(e) = self.login().await else {
            panic!("{} logged in to {}", self.user, self.database);
        };
        e.code()
            .cloned()
            .unwrap_or_else(|| panic!("not a refusal: {e:?}"))
    }

    /// The role has the stored password (the test server trusts loopback, so a login alone
    /// would not prove it), logs in with it to its database and may build tables in `public`.
    pub(crate) async fn assert_accepts_stored_credentials(&self) {
        assert!(
            verifier_matches(&self.user, &self.password).await,
            "{} has the password the secret store holds",
            self.user
        );
        let own = self.login().await.expect("the role logs in");
        let who: String = own
            .query_one("SELECT current_user::text", &[])
            .await
            .expect("query")
            .get(0);
        assert_eq!(who, self.user);
        own.batch_execute(
            "CREATE TABLE IF NOT EXISTS orders (id int); INSERT INTO orders VALUES (1)",
        )
        .await
        .expect("creates and writes in its schema");
        let rows: i64 = own
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .expect("reads")
            .get(0);
        assert!(rows >= 1);
    }
}

async fn postgres_platform() -> App {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = config(dir.path());
    c.drivers.postgres_url = Some(url());
    start_with(dir, c, false).await
}

/// A database provisioned through the API, observed in sync, its role accepting the stored
/// password.
pub(crate) async fn provisioned_database(app: &App, prefix: &str) -> Database {
    let name = unique(prefix);
    let (id, outputs) = ready(
        app,
        json!({"template": "postgres-database", "name": name, "owner": "team-a",
               "environment": "development", "parameters": {}}),
    )
    .await;
    let secret = outputs["passwordSecret"]
        .as_str()
        .expect("ref")
        .trim_start_matches("secret:")
        .to_owned();
    let password = TableSecretStore::new(Arc::clone(&app.platform.backend.table))
        .get(&secret)
        .await
        .expect("get")
        .expect("the secret exists");
    let db = Database {
        id,
        host: outputs["host"].as_str().expect("host").to_owned(),
        port: outputs["port"].as_u64().expect("port"),
        database: outputs["database"].as_str().expect("database").to_owned(),
        user: outputs["user"].as_str().expect("user").to_owned(),
        password,
    };
    assert_in_sync(app, &db.id).await;
    db.assert_accepts_stored_credentials().await;
    db
}

/// Deprovisions it: the database and the role (the repaired ones too) are gone.
async fn deprovision_database(app: &App, db: &Database) {
    deprovision(app, &db.id).await;
    let pg = admin_client().await;
    assert!(
        !exists(
            &pg,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &db.database
        )
        .await,
        "the database went with its request"
    );
    assert!(
        !exists(&pg, "SELECT 1 FROM pg_roles WHERE rolname = $1", &db.user).await,
        "and the role"
    );
}

#[tokio::test]
async fn postgres_a_revoked_grant_is_drift_under_observe_and_granted_again_under_enforce() {
    let app = postgres_platform().await;
    let db = provisioned_database(&app, "grant").await;

    admin_client()
        .await
        .batch_execute(&format!(
            "REVOKE CONNECT ON DATABASE \"{}\" FROM \"{}\"",
            db.database, db.user
        ))
        .await
        .expect("revoke by hand");
    let r = assert_drifted(&app, &db.id, &["grants.database.CONNECT"], true).await;
    let d = drift_at(&r, "grants.database.CONNECT");
    assert_eq!((&d["desired"], &d["actual"]), (&json!(true), &json!(false)));
    assert_eq!(
        db.login_refused().await,
        SqlState::INSUFFICIENT_PRIVILEGE,
        "observe granted nothing back"
    );

    assert_repaired(&app, &db.id, "repaired").await;
    db.assert_accepts_stored_credentials().await;
    deprovision_database(&app, &db).await;
}

#[tokio::test]
async fn postgres_a_dropped_role_is_drift_under_observe_and_created_again_under_enforce() {
    let app = postgres_platform().await;
    let db = provisioned_database(&app, "role").await;

    // The role's grants live in its database: revoke them there, then drop it.
    admin_in(Some(&db.database))
        .await
        .batch_execute(&format!("DROP OWNED BY \"{}\"", db.user))
        .await
        .expect("drop what it owns");
    admin_client()
        .await
        .batch_execute(&format!(
            "DROP OWNED BY \"{0}\"; DROP ROLE \"{0}\"",
            db.user
        ))
        .await
        .expect("drop the role by hand");
    let r = assert_drifted(&app, &db.id, &["role"], true).await;
    let d = drift_at(&r, "role");
    assert_eq!(
        (&d["desired"], &d["actual"]),
        (&json!(db.user), &Value::Null)
    );
    assert!(
        !exists(
            &admin_client().await,
            "SELECT 1 FROM pg_roles WHERE rolname = $1",
            &db.user
        )
        .await,
        "observe created nothing"
    );
    assert_eq!(
        db.login_refused().await,
        SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
        "no such role"
    );

    assert_repaired(&app, &db.id, "repaired").await;
    // Created again with the password the secret store already hands out.
    db.assert_accepts_stored_credentials().await;
    deprovision_database(&app, &db).await;
}

#[tokio::test]
async fn postgres_a_dropped_database_is_missing_under_observe_and_recreated_under_enforce() {
    let app = postgres_platform().await;
    let db = provisioned_database(&app, "db").await;

    admin_client()
        .await
        .batch_execute(&format!("DROP DATABASE \"{}\" WITH (FORCE)", db.database))
        .await
        .expect("drop the database by hand");
    let r = assert_drifted(&app, &db.id, &["database"], false).await;
    let d = drift_at(&r, "database");
    assert_eq!(
        (&d["desired"], &d["actual"]),
        (&json!(db.database), &Value::Null)
    );
    assert_eq!(
        db.login_refused().await,
        SqlState::INVALID_CATALOG_NAME,
        "observe created nothing"
    );

    assert_repaired(&app, &db.id, "recreated").await;
    // Under its own name, marked as this request's, and the role's grants are back in it.
    let marker: Option<String> = admin_client()
        .await
        .query_one(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&db.database],
        )
        .await
        .expect("the database is back")
        .get(0);
    assert!(
        marker.as_deref().is_some_and(|m| m.contains(&db.id)),
        "{marker:?}"
    );
    db.assert_accepts_stored_credentials().await;
    deprovision_database(&app, &db).await;
}

// SCRAM-SHA-256 (RFC 5802, RFC 7677): whether a role's verifier was made from a password. The
// provisioning test binary has no hash crate of its own, so SHA-256 (FIPS 180-4) is here.

fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for (k, wi) in K.iter().zip(w) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(*k)
                .wrapping_add(wi);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (bytes, word) in out.chunks_exact_mut(4).zip(h) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = sha256(&[&block.map(|b| b ^ 0x36)[..], message].concat());
    sha256(&[&block.map(|b| b ^ 0x5c)[..], &inner[..]].concat())
}

/// Whether the role's SCRAM verifier in `pg_authid` was made from `password`: StoredKey =
/// H(HMAC(PBKDF2(password, salt, i), "Client Key")).
async fn verifier_matches(role: &str, password: &str) -> bool {
    let row = admin_client()
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
    sha256(&hmac_sha256(&salted, b"Client Key")).as_slice() == stored_key.as_slice()
}

#[test]
fn the_verifier_check_hashes_as_the_standards_say() {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(
        hex(&sha256(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex(&sha256(
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        )),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    // RFC 4231, test case 2.
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

// ---------------------------------------------------------------------------------------------
// SQS and DynamoDB on moto

pub(crate) fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run scripts/test.sh, which starts moto")
}

/// The platform with the `sqs-queue` and `dynamodb-table` drivers on, pointed at moto by the
/// SDK's own environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...), as `paved up` is.
async fn aws_platform() -> App {
    endpoint();
    let dir = tempfile::tempdir().expect("dir");
    let mut c = config(dir.path());
    c.drivers.aws_region = Some("us-east-1".into());
    start_with(dir, c, false).await
}

/// moto's wire protocol (AWS JSON 1.0), for the hand changes and the checks behind paved's
/// back: this test binary has no AWS SDK client of its own, and moto checks no signatures.
pub(crate) struct Moto {
    endpoint: String,
    http: reqwest::Client,
}

impl Moto {
    pub(crate) fn new() -> Self {
        Self {
            endpoint: endpoint(),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, service: &str, target: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(&self.endpoint)
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=00"
                ),
            )
            .header("x-amz-target", target)
            .header("content-type", "application/x-amz-json-1.0")
            .body(body.to_string())
            .send()
            .await
            .expect("moto answers");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn sqs(&self, action: &str, body: Value) -> (u16, Value) {
        self.call("sqs", &format!("AmazonSQS.{action}"), body).await
    }

    pub(crate) async fn sqs_ok(&self, action: &str, body: Value) -> Value {
        let (status, r) = self.sqs(action, body).await;
        assert_eq!(status, 200, "{action}: {r}");
        r
    }

    async fn dynamodb(&self, action: &str, body: Value) -> (u16, Value) {
        self.call("dynamodb", &format!("DynamoDB_20120810.{action}"), body)
            .await
    }

    pub(crate) async fn dynamodb_ok(&self, action: &str, body: Value) -> Value {
        let (status, r) = self.dynamodb(action, body).await;
        assert_eq!(status, 200, "{action}: {r}");
        r
    }

    pub(crate) async fn queue_url(&self, name: &str) -> Option<String> {
        let (status, r) = self.sqs("GetQueueUrl", json!({"QueueName": name})).await;
        (status == 200).then(|| r["QueueUrl"].as_str().expect("url").to_owned())
    }

    async fn queue_attributes(&self, url: &str) -> Value {
        self.sqs_ok(
            "GetQueueAttributes",
            json!({"QueueUrl": url, "AttributeNames": ["All"]}),
        )
        .await["Attributes"]
            .clone()
    }

    async fn pitr(&self, table: &str) -> String {
        self.dynamodb_ok("DescribeContinuousBackups", json!({"TableName": table}))
            .await["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
            ["PointInTimeRecoveryStatus"]
            .as_str()
            .expect("status")
            .to_owned()
    }

    pub(crate) async fn table(&self, table: &str) -> Option<Value> {
        let (status, r) = self
            .dynamodb("DescribeTable", json!({"TableName": table}))
            .await;
        (status == 200).then(|| r["Table"].clone())
    }
}

/// A queue (and its dead-letter queue) provisioned through the API and observed in sync: its
/// id, its URL and its dead-letter queue's name.
pub(crate) async fn provisioned_queue(app: &App) -> (String, String, String) {
    let (id, outputs) = ready(
        app,
        json!({"template": "sqs-queue", "name": unique("events"), "owner": "team-a",
               "environment": "development",
               "parameters": {"visibility_timeout_seconds": 45, "max_receive_count": 3}}),
    )
    .await;
    let url = outputs["queueUrl"].as_str().expect("url").to_owned();
    let name = url.rsplit('/').next().expect("name");
    let dlq = format!("{name}-dlq");
    assert_in_sync(app, &id).await;
    (id, url, dlq)
}

/// Deprovisions the queue: both queues are gone.
async fn deprovision_queue(app: &App, moto: &Moto, id: &str, url: &str, dlq: &str) {
    deprovision(app, id).await;
    let name = url.rsplit('/').next().expect("name");
    assert_eq!(moto.queue_url(name).await, None, "the queue is gone");
    assert_eq!(moto.queue_url(dlq).await, None, "and its dead-letter queue");
}

#[tokio::test]
async fn sqs_an_edited_visibility_timeout_is_drift_under_observe_and_restored_under_enforce() {
    let app = aws_platform().await;
    let moto = Moto::new();
    let (id, url, dlq) = provisioned_queue(&app).await;

    moto.sqs_ok(
        "SetQueueAttributes",
        json!({"QueueUrl": url, "Attributes": {"VisibilityTimeout": "99"}}),
    )
    .await;
    let r = assert_drifted(&app, &id, &["queue.VisibilityTimeout"], true).await;
    let d = drift_at(&r, "queue.VisibilityTimeout");
    assert_eq!((&d["desired"], &d["actual"]), (&json!("45"), &json!("99")));
    assert_eq!(
        moto.queue_attributes(&url).await["VisibilityTimeout"],
        "99",
        "observe changed nothing"
    );

    assert_repaired(&app, &id, "repaired").await;
    let attrs = moto.queue_attributes(&url).await;
    assert_eq!(attrs["VisibilityTimeout"], "45", "{attrs:#}");
    deprovision_queue(&app, &moto, &id, &url, &dlq).await;
}

#[tokio::test]
async fn sqs_a_deleted_dead_letter_queue_is_drift_under_observe_and_recreated_under_enforce() {
    let app = aws_platform().await;
    let moto = Moto::new();
    let (id, url, dlq) = provisioned_queue(&app).await;
    let dlq_url = moto.queue_url(&dlq).await.expect("the dead-letter queue");

    moto.sqs_ok("DeleteQueue", json!({"QueueUrl": dlq_url}))
        .await;
    let r = assert_drifted(&app, &id, &["deadLetterQueue"], true).await;
    let d = drift_at(&r, "deadLetterQueue");
    assert_eq!((&d["desired"], &d["actual"]), (&json!(dlq), &Value::Null));
    assert_eq!(moto.queue_url(&dlq).await, None, "observe created nothing");

    assert_repaired(&app, &id, "repaired").await;
    // Back under its name, this request's by its tag, and the queue's redrive names it.
    let dlq_url = moto
        .queue_url(&dlq)
        .await
        .expect("the dead-letter queue is back");
    let tags = moto
        .sqs_ok("ListQueueTags", json!({"QueueUrl": dlq_url}))
        .await;
    assert_eq!(tags["Tags"]["paved:request-id"], json!(id), "{tags:#}");
    let dlq_arn = moto.queue_attributes(&dlq_url).await["QueueArn"].clone();
    let redrive: Value = serde_json::from_str(
        moto.queue_attributes(&url).await["RedrivePolicy"]
            .as_str()
            .expect("a redrive policy"),
    )
    .expect("json");
    assert_eq!(redrive["deadLetterTargetArn"], dlq_arn, "{redrive:#}");
    deprovision_queue(&app, &moto, &id, &url, &dlq).await;
}

/// A table provisioned through the API and observed in sync: its id and name.
pub(crate) async fn provisioned_table(app: &App) -> (String, String) {
    let (id, outputs) = ready(
        app,
        json!({"template": "dynamodb-table", "name": unique("ledger"), "owner": "team-a",
               "environment": "development", "parameters": {"partition_key": "id"}}),
    )
    .await;
    assert_eq!(outputs["pointInTimeRecovery"], true, "{outputs:#}");
    let table = outputs["tableName"].as_str().expect("table").to_owned();
    assert_in_sync(app, &id).await;
    (id, table)
}

async fn pitr_off(moto: &Moto, table: &str) {
    moto.dynamodb_ok(
        "UpdateContinuousBackups",
        json!({"TableName": table,
               "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": false}}),
    )
    .await;
}

#[tokio::test]
async fn dynamodb_point_in_time_recovery_turned_off_is_drift_under_observe_and_on_again_under_enforce()
 {
    let app = aws_platform().await;
    let moto = Moto::new();
    let (id, table) = provisioned_table(&app).await;

    pitr_off(&moto, &table).await;
    let r = assert_drifted(&app, &id, &["table.pointInTimeRecovery"], true).await;
    let d = drift_at(&r, "table.pointInTimeRecovery");
    assert_eq!((&d["desired"], &d["actual"]), (&json!(true), &json!(false)));
    assert_eq!(
        moto.pitr(&table).await,
        "DISABLED",
        "observe changed nothing"
    );

    assert_repaired(&app, &id, "repaired").await;
    assert_eq!(moto.pitr(&table).await, "ENABLED");
    deprovision(&app, &id).await;
    assert!(moto.table(&table).await.is_none(), "the table is gone");
}

#[tokio::test]
async fn dynamodb_a_deleted_table_is_missing_under_observe_and_recreated_under_enforce() {
    let app = aws_platform().await;
    let moto = Moto::new();
    let (id, table) = provisioned_table(&app).await;

    moto.dynamodb_ok("DeleteTable", json!({"TableName": table}))
        .await;
    let r = assert_drifted(&app, &id, &["table"], false).await;
    let d = drift_at(&r, "table");
    assert_eq!((&d["desired"], &d["actual"]), (&json!(table), &Value::Null));
    assert!(
        moto.table(&table).await.is_none(),
        "observe created nothing"
    );

    assert_repaired(&app, &id, "recreated").await;
    // Under its name, with its key, this request's by its tag, recovery on.
    let described = moto.table(&table).await.expect("the table is back");
    assert_eq!(described["TableStatus"], "ACTIVE", "{described:#}");
    assert_eq!(
        described["KeySchema"],
        json!([{"AttributeName": "id", "KeyType": "HASH"}]),
        "{described:#}"
    );
    let tags = moto
        .dynamodb_ok(
            "ListTagsOfResource",
            json!({"ResourceArn": described["TableArn"]}),
        )
        .await;
    assert!(
        tags["Tags"]
            .as_array()
            .expect("tags")
            .iter()
            .any(|t| t["Key"] == "paved:request-id" && t["Value"] == json!(id)),
        "{tags:#}"
    );
    assert_eq!(moto.pitr(&table).await, "ENABLED");
    deprovision(&app, &id).await;
    assert!(moto.table(&table).await.is_none(), "the table is gone");
}

// ---------------------------------------------------------------------------------------------
// git: the service driver, always on in the harness

fn git(args: &[&str]) -> std::process::Output {
    std::process::Command::new("git")
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git runs")
}

fn git_text(args: &[&str]) -> String {
    let out = git(args);
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn git_a_deleted_service_repository_is_missing_under_observe_and_rendered_again_under_enforce()
 {
    let dir = tempfile::tempdir().expect("dir");
    let c = config(dir.path());
    let app = start_with(dir, c, false).await;
    let name = unique("orders");
    let (id, outputs) = ready(
        &app,
        json!({"template": "service", "name": name, "owner": "team-a",
               "environment": "development", "parameters": {"language": "rust-axum"}}),
    )
    .await;
    let repository = outputs["repository"]
        .as_str()
        .expect("repository")
        .to_owned();
    let bare = Path::new(&repository);
    assert!(bare.is_dir(), "{repository}");
    assert_in_sync(&app, &id).await;

    std::fs::remove_dir_all(bare).expect("delete the repository by hand");
    let r = assert_drifted(&app, &id, &["repository"], false).await;
    let d = drift_at(&r, "repository");
    assert_eq!(
        (&d["desired"], &d["actual"]),
        (&json!(repository), &Value::Null)
    );
    assert!(!bare.exists(), "observe created nothing");

    assert_repaired(&app, &id, "recreated").await;
    // The skeleton rendered and pushed again, under the same path, marked as this request's.
    let git_dir = format!("--git-dir={repository}");
    git_text(&[&git_dir, "rev-parse", "--verify", "refs/heads/main"]);
    let catalog_info = git_text(&[&git_dir, "show", "main:catalog-info.yaml"]);
    assert!(catalog_info.contains(&name), "{catalog_info}");
    assert!(catalog_info.contains(&id), "{catalog_info}");
    let config_file = bare.join("config");
    assert_eq!(
        git_text(&[
            "config",
            "--file",
            config_file.to_str().expect("utf-8"),
            "--get",
            "paved.requestId"
        ]),
        id
    );
    // Its catalog Component is still the one this request registered.
    let (status, entity) = app
        .get(
            &format!("/api/catalog/entities/by-name/component/default/{name}"),
            &alice(),
        )
        .await;
    assert_eq!(status, 200, "{entity}");
    assert_eq!(
        entity["metadata"]["annotations"]["paved.dev/request-id"],
        json!(id),
        "{entity:#}"
    );
    deprovision(&app, &id).await;
    assert!(!bare.exists(), "the repository went with its request");
}
