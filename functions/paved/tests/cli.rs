//! The resource commands of the CLI (`paved resources`, `paved resource`, `paved reconcile`),
//! run as the built binary against a `paved up` child process, with a real `service`
//! resource whose repository the test deletes by hand: the listing's filters, drift as the
//! loop reports it, a policy change that repairs it, and what the API refuses.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use clap::CommandFactory;
use common::Paved;
use serde_json::{Value, json};

/// Runs `paved <args> --url <paved> --token <token>`.
fn paved(paved: &Paved, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paved"))
        .args(args)
        .args(["--url", &paved.url, "--token", token])
        .env_remove("PAVED_URL")
        .env_remove("PAVED_TOKEN")
        .output()
        .expect("run paved")
}

/// The standard output of a command that must succeed.
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

/// The standard error of a command that must fail with `code`.
fn failed(out: &Output, code: i32) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn condition<'a>(r: &'a Value, kind: &str) -> &'a str {
    r["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("absent")
}

/// `paved resource <id>` until `until` holds of its status.
fn resource_until(p: &Paved, token: &str, id: &str, until: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r: Value =
            serde_json::from_str(&ok(&paved(p, token, &["resource", id]))).expect("json");
        if until(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "{id} did not get there: {r:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_resource_commands_parse_as_documented() {
    paved::cli::Cli::command().debug_assert();
}

#[tokio::test]
async fn resources_resource_and_reconcile_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Paved::start(dir.path());
    let http = reqwest::Client::new();
    let groups = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-a}\nspec: {type: team, children: []}\n---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-b}\nspec: {type: team, children: []}\n";
    let r = http
        .post(format!("{}/v1/entities/import", p.url))
        .bearer_auth(p.admin())
        .header("content-type", "application/yaml")
        .body(groups)
        .send()
        .await
        .expect("import");
    assert_eq!(r.status().as_u16(), 200);
    let alice = p.token("alice", &["team-a"]);
    let dave = p.token("dave", &["team-b"]);
    let r = http
        .post(format!("{}/v1/requests", p.url))
        .bearer_auth(&alice)
        .json(
            &json!({"template": "service", "name": "orders", "owner": "team-a",
                      "environment": "development", "parameters": {"language": "rust-axum"}}),
        )
        .send()
        .await
        .expect("submit");
    assert_eq!(r.status().as_u16(), 202);
    let id = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r: Value = http
            .get(format!("{}/v1/requests/{id}", p.url))
            .bearer_auth(&alice)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        if r["status"] == "READY" {
            break;
        }
        assert_ne!(r["status"], "FAILED", "{r:#}");
        assert!(Instant::now() < deadline, "not READY: {r:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // An observation now: queued, and its result in the status.
    let queued = ok(&paved(&p, &alice, &["reconcile", &id]));
    assert_eq!(
        queued.trim(),
        format!(
            "observation of {id} queued; the result appears in its status (`paved resource {id}`)"
        )
    );
    let r = resource_until(&p, &alice, &id, |r| r["lastObservedAt"].is_string());
    assert_eq!(condition(&r, "Synced"), "True", "{r:#}");
    assert_eq!(condition(&r, "Ready"), "True", "{r:#}");
    assert_eq!(r["managementPolicy"], "observe");

    // The table, and its filters.
    let table = ok(&paved(&p, &alice, &["resources"]));
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID",
            "TYPE",
            "NAME",
            "OWNER",
            "ENVIRONMENT",
            "POLICY",
            "SYNCED",
            "READY",
            "DRIFT"
        ]
    );
    let row: Vec<&str> = lines.next().expect("a row").split_whitespace().collect();
    assert_eq!(
        row,
        [
            id.as_str(),
            "service",
            "orders",
            "group:default/team-a",
            "development",
            "observe",
            "True",
            "True",
            "-"
        ],
        "{table}"
    );
    let listed = |args: &[&str]| ok(&paved(&p, &alice, &[&["resources"], args].concat()));
    for filters in [
        &["--owner", "team-a"][..],
        &["--owner", "group:default/team-a", "--type", "service"],
        &["--environment", "development", "--synced", "true"],
    ] {
        assert!(listed(filters).contains(&id), "{filters:?}");
    }
    for filters in [
        &["--owner", "team-b"][..],
        &["--type", "postgres"],
        &["--environment", "production"],
        &["--drifted"],
        &["--synced", "unknown"],
    ] {
        assert_eq!(
            listed(filters).trim(),
            "no live resources match",
            "{filters:?}"
        );
    }

    // Someone deletes the repository by hand: observe reports it, and repairs nothing.
    std::fs::remove_dir_all(dir.path().join("git/orders.git")).expect("rm the repository");
    ok(&paved(&p, &alice, &["reconcile", &id]));
    let r = resource_until(&p, &alice, &id, |r| condition(r, "Synced") == "False");
    assert_eq!(r["drift"][0]["path"], "repository", "{r:#}");
    let drifted = listed(&["--drifted", "--owner", "team-a"]);
    assert!(
        drifted.lines().nth(1).is_some_and(|l| l.contains(&id)
            && l.contains(" False ")
            && l.ends_with(" repository")),
        "{drifted}"
    );
    let all: Value = serde_json::from_str(&listed(&["--synced", "false", "--json"])).expect("json");
    assert_eq!(all[0]["id"], id.as_str(), "{all:#}");
    assert_eq!(all[0]["drift"][0]["path"], "repository", "{all:#}");
    assert!(!dir.path().join("git/orders.git").exists());

    // Enforce it (ignoring a field too): the next observation puts the repository back.
    let patched: Value = serde_json::from_str(&ok(&paved(
        &p,
        &alice,
        &[
            "resource",
            &id,
            "--policy",
            "enforce",
            "--ignore-field",
            "component.metadata.annotations.*",
            "--ignore-field",
            "tags.*",
        ],
    )))
    .expect("json");
    assert_eq!(patched["managementPolicy"], "enforce", "{patched:#}");
    assert_eq!(
        patched["ignoreFields"],
        json!(["component.metadata.annotations.*", "tags.*"])
    );
    ok(&paved(&p, &alice, &["reconcile", &id]));
    let r = resource_until(&p, &alice, &id, |r| condition(r, "Synced") == "True");
    assert!(r["drift"].as_array().is_some_and(Vec::is_empty), "{r:#}");
    assert!(dir.path().join("git/orders.git").is_dir(), "repaired");
    let cleared: Value = serde_json::from_str(&ok(&paved(
        &p,
        &alice,
        &["resource", &id, "--clear-ignore-fields"],
    )))
    .expect("json");
    assert_eq!(cleared["ignoreFields"], json!([]), "{cleared:#}");
    assert_eq!(cleared["managementPolicy"], "enforce");

    // What the API refuses is an error naming the status, and nothing changes.
    let refused = failed(
        &paved(&p, &alice, &["resource", &id, "--ignore-field", "a b"]),
        1,
    );
    assert!(refused.contains("422"), "{refused}");
    assert!(refused.contains("is not a field path"), "{refused}");
    let hidden = failed(&paved(&p, &dave, &["resource", &id]), 1);
    assert!(hidden.contains("404"), "{hidden}");
    let hidden = failed(&paved(&p, &dave, &["reconcile", &id]), 1);
    assert!(hidden.contains("404"), "{hidden}");
    assert_eq!(
        ok(&paved(&p, &dave, &["resources"])).trim(),
        "no live resources match"
    );
    let odd = failed(
        &paved(&p, &alice, &["resource", "req-x/../../v1/requests"]),
        1,
    );
    assert!(odd.contains("404"), "an id stays one path segment: {odd}");
    // What clap refuses never reaches paved.
    let usage = failed(&paved(&p, &alice, &["resources", "--synced", "maybe"]), 2);
    assert!(
        usage.contains("possible values: true, false, unknown"),
        "{usage}"
    );
    let usage = failed(
        &paved(&p, &alice, &["resources", "--synced", "true", "--drifted"]),
        2,
    );
    assert!(usage.contains("cannot be used with"), "{usage}");
    let usage = failed(
        &paved(&p, &alice, &["resource", &id, "--policy", "destroy"]),
        2,
    );
    assert!(
        usage.contains("possible values: observe, enforce"),
        "{usage}"
    );
    let usage = failed(
        &paved(
            &p,
            &alice,
            &[
                "resource",
                &id,
                "--ignore-field",
                "x",
                "--clear-ignore-fields",
            ],
        ),
        2,
    );
    assert!(usage.contains("cannot be used with"), "{usage}");
}

#[test]
fn leaks_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A pending repository a crash left before its marker: paved's by its path alone.
    let pending = dir.path().join("git/.staging/ghost.0123456789abcdef.git");
    std::fs::create_dir_all(&pending).expect("pending repository");
    let p = Paved::start(dir.path());
    let admin = p.admin();
    let alice = p.token("alice", &["team-a"]);
    // The first tick scans every provider of the process.
    let deadline = Instant::now() + Duration::from_secs(60);
    let table = loop {
        let table = ok(&paved(&p, &admin, &["resources", "--leaked"]));
        if table.contains("ghost") {
            break table;
        }
        assert!(Instant::now() < deadline, "no leak reported: {table}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "TYPE", "KIND", "NAME", "REQUEST", "REASON", "OWNER"]
    );
    let row: Vec<&str> = lines.next().expect("a row").split_whitespace().collect();
    assert_eq!(
        row[1..],
        [
            "service",
            "repository",
            ".staging/ghost.0123456789abcdef.git",
            "-",
            "unmarked",
            "-"
        ],
        "{table}"
    );
    let id = row[0].to_owned();
    assert!(id.starts_with("leak-"), "{table}");
    let json: Value = serde_json::from_str(&ok(&paved(
        &p,
        &admin,
        &["resources", "--leaked", "--type", "service", "--json"],
    )))
    .expect("json");
    assert_eq!(json[0]["id"], id.as_str(), "{json:#}");
    assert!(
        json[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("remove it by hand"))
    );

    // Nothing proves which request made it: neither adopted nor deleted from here.
    let refused = failed(&paved(&p, &admin, &["leak", "delete", &id]), 1);
    assert!(refused.contains("422"), "{refused}");
    let refused = failed(&paved(&p, &admin, &["leak", "adopt", &id]), 1);
    assert!(refused.contains("422"), "{refused}");
    assert!(pending.is_dir(), "left alone");
    // A team sees only its own requests' leaks.
    assert_eq!(
        ok(&paved(&p, &alice, &["resources", "--leaked"])).trim(),
        "no leaks match"
    );
    let hidden = failed(&paved(&p, &alice, &["leak", "adopt", &id]), 1);
    assert!(hidden.contains("404"), "{hidden}");
    let usage = failed(
        &paved(&p, &admin, &["resources", "--leaked", "--drifted"]),
        2,
    );
    assert!(usage.contains("cannot be used with"), "{usage}");
}
