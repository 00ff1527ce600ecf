//! Two `paved up --backend aws` processes on one fresh moto stand in for two warm Lambda
//! containers: what one writes to the catalog, the other honours within the staleness bound
//! (1 s), without a reload: a Group becomes a usable owner, a removed membership stops
//! authorizing a Slack user. And an import of 2,000 entities killed with SIGKILL in the
//! middle leaves the catalog all or nothing as the other process and a restart see it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chatops::slack::signature::SigningSecret;
use serde_json::{Value, json};

mod common;
use common::{Moto, REPO, free_port};

const PAVED: &str = env!("CARGO_BIN_EXE_paved");
const SLACK_SECRET: &str = "slack-signing-secret-for-tests-0123";
/// The default bound (`CatalogOptions::max_staleness`), with room for the machine's noise:
/// after this long a write is in every read model that is asked.
const PAST_THE_BOUND: Duration = Duration::from_millis(2_000);

fn paved(moto: &Moto, dir: &Path) -> Command {
    let mut cmd = Command::new(PAVED);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("PAVED_SLACK_SIGNING_SECRET", SLACK_SECRET)
        // Two containers share the signing key, not a data directory.
        .env(
            "PAVED_JWT_SECRET",
            "two-containers-share-this-secret-0123456789",
        )
        .env("RUST_LOG", "warn");
    cmd
}

/// One `paved up --backend aws`, killed when dropped.
struct Container {
    child: Child,
    url: String,
}

impl Container {
    async fn start(moto: &Moto, dir: &Path, name: &str) -> Self {
        let port = free_port();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log");
        let child = paved(moto, dir)
            .args(["up", "--backend", "aws", "--data"])
            .arg(dir.join(format!("data-{name}")))
            .env("PAVED_BIND", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("paved up");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(120);
        let http = reqwest::Client::new();
        loop {
            if http
                .get(format!("{url}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not come up: {}",
                std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Self { child, url }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.kill();
    }
}

fn token(moto: &Moto, dir: &Path, user: &str, group: &str) -> String {
    let out = paved(moto, dir)
        .args(["token", "--user", user, "--group", group, "--data"])
        .arg(dir.join("data-tokens"))
        .output()
        .expect("paved token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

async fn import(url: &str, token: &str, yaml: String) -> reqwest::Result<(u16, Value)> {
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/entities/import"))
        .bearer_auth(token)
        .header("content-type", "application/yaml")
        .body(yaml)
        .timeout(Duration::from_secs(300))
        .send()
        .await?;
    Ok((r.status().as_u16(), r.json().await.unwrap_or(Value::Null)))
}

async fn submit(url: &str, token: &str, name: &str, owner: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/requests"))
        .bearer_auth(token)
        .json(
            &json!({"template": "sqs-queue", "name": name, "owner": owner,
                      "environment": "development"}),
        )
        .send()
        .await
        .expect("submit");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn slack(url: &str, user: &str, text: &str) -> String {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("team_id", "T0001")
        .append_pair("channel_id", "C0001")
        .append_pair("user_id", user)
        .append_pair("command", "/paved")
        .append_pair("text", text)
        .append_pair(
            "response_url",
            "https://hooks.slack.com/commands/T0001/1/abc",
        )
        .append_pair("trigger_id", &format!("trigger.{text}"))
        .finish();
    let signature = SigningSecret::new(SLACK_SECRET)
        .expect("secret")
        .sign(&ts, body.as_bytes());
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/chatops/slack"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(body)
        .send()
        .await
        .expect("slack");
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.expect("text")
}

fn user(name: &str, slack_id: &str, groups: &[&str]) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: {name}\n  annotations: {{slack.com/user-id: {slack_id}}}\nspec: {{memberOf: [{}]}}\n",
        groups.join(", ")
    )
}

fn group(name: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {{name: {name}}}\nspec: {{type: team, children: []}}\n"
    )
}

async fn components_seen(url: &str, token: &str) -> u64 {
    let r = reqwest::Client::new()
        .get(format!(
            "{url}/api/catalog/entities/by-query?filter=kind=component&limit=1"
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("count");
    assert_eq!(r.status().as_u16(), 200);
    r.json::<Value>().await.expect("json")["totalItems"]
        .as_u64()
        .expect("totalItems")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_containers_on_one_moto_see_each_others_catalog_writes_within_the_bound() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = paved(&moto, dir.path())
        .args(["aws", "bootstrap"])
        .output()
        .expect("bootstrap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut a = Container::start(&moto, dir.path(), "a").await;
    let b = Container::start(&moto, dir.path(), "b").await;
    let admin = token(&moto, dir.path(), "root", "platform-admins");
    let alice = token(&moto, dir.path(), "alice", "team-x");

    // B is warm and has never heard of team-x.
    let (status, body) = submit(&b.url, &alice, "early", "team-x").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "unknown_owner", "{body}");

    // The Group and a Slack user in it, imported through A.
    let (status, body) = import(
        &a.url,
        &admin,
        format!(
            "{}---\n{}",
            group("team-x"),
            user("alice", "U0ALICE", &["team-x"])
        ),
    )
    .await
    .expect("import");
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(PAST_THE_BOUND).await;
    let (status, body) = submit(&b.url, &alice, "orders", "team-x").await;
    assert!(
        status == 201 || status == 202,
        "B honours the Group A imported: {status} {body}"
    );
    let reply = slack(
        &b.url,
        "U0ALICE",
        "request sqs-queue from-slack environment=development owner=team-x",
    )
    .await;
    assert!(
        reply.contains("submitted") && !reply.contains("forbidden"),
        "B knows alice's Slack id and her team: {reply}"
    );

    // Her membership is removed through A: B stops honouring it.
    let (status, body) = import(&a.url, &admin, user("alice", "U0ALICE", &[]))
        .await
        .expect("import");
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(PAST_THE_BOUND).await;
    let reply = slack(
        &b.url,
        "U0ALICE",
        "request sqs-queue after-removal environment=development owner=team-x",
    )
    .await;
    assert!(
        !reply.contains("submitted"),
        "a removed membership no longer authorizes through B: {reply}"
    );

    // 2,000 entities imported through A, and A killed while it imports.
    let generated = Command::new("python3")
        .args([
            &format!("{REPO}/scripts/gen_catalog.py"),
            "--components",
            "2000",
            "--groups",
            "20",
            "--seed",
            "11",
        ])
        .output()
        .expect("generator");
    assert!(generated.status.success());
    let yaml = String::from_utf8(generated.stdout).expect("utf-8");
    let entities = yaml.matches("\nkind: ").count() + usize::from(yaml.starts_with("kind: "));
    let importing = tokio::spawn({
        let (url, admin, yaml) = (a.url.clone(), admin.clone(), yaml.clone());
        async move { import(&url, &admin, yaml).await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.kill();
    let cut = importing.await.expect("join");
    let seen = components_seen(&b.url, &admin).await;
    eprintln!("killed mid-import: B sees {seen} components; the import answered {cut:?}");
    assert!(
        seen == 0 || seen == 2000,
        "after a kill mid-import B sees {seen} of 2,000 components ({cut:?})"
    );
    // A restart (a cold container) sees the same, and the import then completes whole.
    let a = Container::start(&moto, dir.path(), "a-restarted").await;
    assert_eq!(components_seen(&a.url, &admin).await, seen);
    let (status, body) = import(&a.url, &admin, yaml).await.expect("import again");
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(PAST_THE_BOUND).await;
    assert_eq!(components_seen(&b.url, &admin).await, 2000);
    assert!(entities > 2000, "the generator made groups too: {entities}");
}
