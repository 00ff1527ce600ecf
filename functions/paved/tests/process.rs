//! The `paved` process: health, the data-dir lock, graceful shutdown, and crash safety.

mod common;

use std::time::{Duration, Instant};

use common::{Paved, generated_catalog};

async fn import(url: &str, token: &str, yaml: String) -> Result<reqwest::Response, reqwest::Error> {
    reqwest::Client::new()
        .post(format!("{url}/v1/entities/import"))
        .bearer_auth(token)
        .header("content-type", "application/yaml")
        .body(yaml)
        .send()
        .await
}

#[tokio::test]
async fn one_paved_per_data_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = Paved::start(dir.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paved"))
        .args(["up", "--bind", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .env("PAVED_JWT_SECRET", common::SECRET)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another paved is already running"));
}

#[tokio::test]
async fn sigterm_finishes_in_flight_work_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paved = Paved::start(dir.path());
    let token = paved.admin();
    let catalog = generated_catalog(3000, 30);
    let url = paved.url.clone();
    let t = token.clone();
    let in_flight = tokio::spawn(async move { import(&url, &t, catalog).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    paved.signal("TERM");
    let response = in_flight
        .await
        .expect("join")
        .expect("the in-flight import is answered");
    assert_eq!(response.status(), 200);
    assert!(paved.wait(), "paved exits cleanly on SIGTERM");

    let again = Paved::start(dir.path());
    assert_eq!(again.entity_count(&token).await, 3030);
}

#[tokio::test]
async fn sigkill_during_a_large_import_leaves_all_of_it_or_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = generated_catalog(4000, 40);
    let total = 4040;

    // Time one whole import on a scratch directory, to aim the kills inside it.
    let scratch = tempfile::tempdir().expect("tempdir");
    let reference = Paved::start(scratch.path());
    let started = Instant::now();
    let r = import(&reference.url, &reference.admin(), catalog.clone())
        .await
        .expect("import");
    assert_eq!(r.status(), 200);
    let full = started.elapsed();
    drop(reference);

    let mut outcomes = Vec::new();
    for fraction in [0.2, 0.5, 0.8, 0.95] {
        let paved = Paved::start(dir.path());
        let token = paved.admin();
        let (url, t, body) = (paved.url.clone(), token.clone(), catalog.clone());
        let attempt = tokio::spawn(async move { import(&url, &t, body).await });
        tokio::time::sleep(full.mul_f64(fraction)).await;
        drop(paved); // SIGKILL
        let _ = attempt.await;

        let restarted = Paved::start(dir.path());
        let count = restarted.entity_count(&token).await;
        assert!(
            count == 0 || count == total,
            "after a kill at {fraction} of the import, {count} of {total} entities are left"
        );
        outcomes.push(count);
        if count == total {
            break;
        }
    }
    assert!(
        outcomes.contains(&0),
        "at least one kill landed before the commit: {outcomes:?}"
    );

    let paved = Paved::start(dir.path());
    let token = paved.admin();
    let r = import(&paved.url, &token, catalog).await.expect("import");
    assert_eq!(r.status(), 200);
    assert_eq!(paved.entity_count(&token).await, total);
}

/// `paved up` killed (SIGKILL) while requests are being provisioned: restarted on the same
/// data directory, every execution resumes and completes, and nothing is made twice.
#[tokio::test]
async fn sigkill_mid_workflow_resumes_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paved = Paved::start(dir.path());
    let admin = paved.admin();
    let group = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-a}\nspec: {type: team, children: []}\n";
    assert!(
        import(&paved.url, &admin, group.into())
            .await
            .expect("import")
            .status()
            .is_success()
    );
    let alice = paved.token("alice", &["team-a"]);
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for name in ["svc-one", "svc-two", "svc-three"] {
        let r = http
            .post(format!("{}/v1/requests", paved.url))
            .bearer_auth(&alice)
            .json(&serde_json::json!({"template": "service", "name": name, "owner": "team-a", "environment": "development", "parameters": {"language": "python-fastapi"}}))
            .send()
            .await
            .expect("submit");
        assert_eq!(r.status().as_u16(), 202);
        let body: serde_json::Value = r.json().await.expect("json");
        ids.push(body["id"].as_str().expect("id").to_owned());
    }
    // Kill as soon as provisioning is under way.
    let status = |url: String, id: String, token: String| async move {
        let r: serde_json::Value = reqwest::Client::new()
            .get(format!("{url}/v1/requests/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        r["status"].as_str().unwrap_or_default().to_owned()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while status(paved.url.clone(), ids[0].clone(), alice.clone()).await == "QUEUED" {
        assert!(
            std::time::Instant::now() < deadline,
            "provisioning never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    drop(paved); // SIGKILL

    let paved = Paved::start(dir.path());
    let alice = paved.token("alice", &["team-a"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    for id in &ids {
        loop {
            let s = status(paved.url.clone(), id.clone(), alice.clone()).await;
            if s == "READY" {
                break;
            }
            assert_ne!(s, "FAILED", "request {id} failed after the restart");
            assert!(
                std::time::Instant::now() < deadline,
                "request {id} is still {s}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let repos: Vec<_> = std::fs::read_dir(dir.path().join("git"))
        .expect("git root")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".git"))
        .collect();
    assert_eq!(repos.len(), 3, "one repository per request");
}
