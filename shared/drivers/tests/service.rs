//! The service driver: real git repositories and the real catalog, on a temporary directory.

use std::process::Command;
use std::sync::Arc;

use paved_core::catalog::{CatalogRepository, EntityRef, ServiceComponent};
use paved_core::provisioning::{Driver, Planner, ResourceSpec};
use paved_drivers::service::ServiceDriver;
use paved_sqlite::SqliteStore;
use serde_json::{Value, json};

async fn setup() -> (tempfile::TempDir, Arc<CatalogRepository>, ServiceDriver) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("paved.db")).expect("open");
    let catalog = Arc::new(
        CatalogRepository::load(Arc::new(store))
            .await
            .expect("load"),
    );
    let driver = ServiceDriver::new(dir.path().join("git"), Arc::clone(&catalog));
    (dir, catalog, driver)
}

fn spec(name: &str, language: &str) -> ResourceSpec {
    ResourceSpec {
        request_id: format!("req-{name}"),
        name: name.into(),
        owner: "team-a".into(),
        environment: "development".into(),
        parameters: json!({"language": language, "description": "Takes orders", "system": "shop"}),
    }
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn each_skeleton_becomes_a_repository_and_a_catalog_entity_once() {
    for (name, language, expected) in [
        (
            "orders",
            "rust-axum",
            [
                "Cargo.toml",
                "src/main.rs",
                ".github/workflows/ci.yml",
                "catalog-info.yaml",
                "README.md",
            ],
        ),
        (
            "billing",
            "python-fastapi",
            [
                "pyproject.toml",
                "app/main.py",
                ".github/workflows/ci.yml",
                "catalog-info.yaml",
                "README.md",
            ],
        ),
    ] {
        let (dir, catalog, driver) = setup().await;
        let s = spec(name, language);
        let plan = driver.plan(&s).expect("plan");
        assert_eq!(plan.len(), 3);
        assert_eq!(
            plan[0].action,
            format!("render 5 files: {}", expected.join(", ")),
            "the plan lists what the render step writes"
        );
        let mut commits = Vec::new();
        for _attempt in 0..2 {
            for step in ["render", "repository", "register"] {
                let out = driver
                    .apply(&s, step)
                    .await
                    .unwrap_or_else(|e| panic!("{step}: {e}"));
                if step == "repository" {
                    commits.push(out["commit"].as_str().expect("commit").to_owned());
                }
            }
        }
        assert_eq!(commits[0], commits[1], "a retried step pushes nothing new");

        // The bare repository holds the skeleton on main.
        let bare = dir.path().join("git").join(format!("{name}.git"));
        let files = git(&bare, &["ls-tree", "-r", "--name-only", "main"]);
        let mut files: Vec<&str> = files.lines().collect();
        files.sort_unstable();
        let mut want = expected.to_vec();
        want.sort_unstable();
        assert_eq!(files, want);
        let info = git(&bare, &["show", "main:catalog-info.yaml"]);
        assert!(
            info.contains(&format!("name: \"{name}\""))
                && info.contains("owner: \"group:default/team-a\""),
            "{info}"
        );

        // The catalog knows it, with its owner and system.
        let entity: serde_json::Value = {
            let index = catalog.read();
            let view = index
                .get_by_key(&format!("component:default/{name}"))
                .expect("registered");
            serde_json::from_slice(&view.json).expect("json")
        };
        assert_eq!(entity["spec"]["system"], "shop");
        assert_eq!(
            entity["metadata"]["annotations"]["paved.dev/request-id"],
            format!("req-{name}")
        );

        driver.delete(&s).await.expect("delete");
        assert!(!bare.exists());
        assert!(
            catalog
                .read()
                .get_by_key(&format!("component:default/{name}"))
                .is_none()
        );
        assert!(driver.status(&s).await.expect("status").is_none());
    }
}

#[tokio::test]
async fn a_name_someone_else_registered_is_refused_and_unknown_skeletons_fail_permanently() {
    let (_dir, _catalog, driver) = setup().await;
    let first = spec("taken", "rust-axum");
    for step in ["render", "repository", "register"] {
        driver.apply(&first, step).await.expect("apply");
    }
    let mut second = spec("taken", "rust-axum");
    second.request_id = "req-other".into();
    driver.apply(&second, "render").await.expect("render");
    let err = driver.apply(&second, "register").await.expect_err("taken");
    assert_eq!(err.code(), "NonRetryable.NameTaken");
    // Compensating the second request leaves the first one's entity alone.
    driver.undo(&second, "register").await.expect("undo");
    assert!(driver.status(&first).await.expect("status").is_some());

    let err = driver
        .apply(&spec("x1", "cobol"), "render")
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), "NonRetryable.InvalidParameters");
}

#[tokio::test]
async fn the_register_step_writes_exactly_its_own_component() {
    let (_dir, catalog, _driver) = setup().await;
    let (me, owner) = (
        EntityRef::new("component", "default", "orders"),
        EntityRef::new("group", "default", "team-a"),
    );
    let expected = ServiceComponent {
        entity_ref: &me,
        owner: &owner,
        request_annotation: "paved.dev/request-id",
        request_id: "req-orders",
    };
    let component = json!({
        "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": "orders", "annotations": {"paved.dev/request-id": "req-orders"}},
        "spec": {"type": "service", "lifecycle": "experimental", "owner": "group:default/team-a"},
    });
    let admin_user = json!({
        "apiVersion": "backstage.io/v1alpha1", "kind": "User",
        "metadata": {"name": "mallory", "annotations": {"slack.com/user-id": "U0MALLORY"}},
        "spec": {"memberOf": ["platform-admins"]},
    });
    let templates = paved_core::catalog::parse_documents(paved_core::catalog::DEFAULT_TEMPLATES)
        .expect("the shipped templates parse");
    let with = |patch: &dyn Fn(&mut Value)| {
        let mut c = component.clone();
        patch(&mut c);
        c
    };
    let refused: Vec<(&str, Vec<Value>)> = vec![
        (
            "a second document",
            vec![component.clone(), admin_user.clone()],
        ),
        ("a User instead", vec![admin_user.clone()]),
        ("golden paths", templates),
        (
            "another name",
            vec![with(&|c| c["metadata"]["name"] = json!("payments"))],
        ),
        (
            "another owner",
            vec![with(&|c| c["spec"]["owner"] = json!("team-b"))],
        ),
        (
            "no request id",
            vec![with(&|c| c["metadata"]["annotations"] = json!({}))],
        ),
        ("nothing", vec![]),
    ];
    for (why, documents) in refused {
        let err = catalog
            .register_service_component(documents, &expected)
            .await
            .expect_err(why);
        assert!(
            matches!(err.code(), "not_the_service_component" | "invalid_entity"),
            "{why}: {err:?}"
        );
        assert_eq!(catalog.read().len(), 0, "{why}: nothing written");
    }
    catalog
        .register_service_component(vec![component], &expected)
        .await
        .expect("its own component is registered");
    assert_eq!(catalog.read().len(), 1);
}

#[tokio::test]
async fn parameters_cannot_inject_documents_into_the_rendered_catalog_info() {
    let (_dir, catalog, driver) = setup().await;
    let user = "\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: mallory\n  annotations: {slack.com/user-id: U0MALLORY}\nspec: {memberOf: [platform-admins]}";
    let mallory = EntityRef::new("user", "default", "mallory");

    // Free text stays one value of the Component, whatever it holds.
    let mut s = spec("described", "rust-axum");
    s.parameters["description"] = json!(format!("Takes orders{user}"));
    driver.apply(&s, "render").await.expect("render");
    driver.apply(&s, "register").await.expect("register");
    {
        let index = catalog.read();
        assert_eq!(index.len(), 1, "only the Component was written");
        let view = index
            .get_by_ref(&EntityRef::new("component", "default", "described"))
            .expect("the component");
        let entity: Value = serde_json::from_slice(&view.json).expect("json");
        assert_eq!(
            entity["metadata"]["description"],
            json!(format!("Takes orders{user}"))
        );
        assert!(index.get_by_ref(&mallory).is_none());
    }

    // A reference is one value too: not a valid ref, so the register step refuses it whole.
    let mut s = spec("injected", "rust-axum");
    s.parameters["system"] = json!(format!("shop{user}"));
    driver.apply(&s, "render").await.expect("render");
    let err = driver.apply(&s, "register").await.expect_err("refused");
    assert_eq!(err.code(), "NonRetryable.CatalogRefused", "{err}");
    let index = catalog.read();
    assert_eq!(index.len(), 1, "nothing more was written");
    assert!(index.get_by_ref(&mallory).is_none());
}

fn bare_repository(path: &std::path::Path) {
    std::fs::create_dir_all(path).expect("dir");
    git(
        path,
        &["init", "--quiet", "--bare", "--initial-branch=main"],
    );
}

#[tokio::test]
async fn a_repository_paved_did_not_make_is_name_taken_and_never_touched() {
    let (dir, _catalog, driver) = setup().await;
    let s = spec("adopted", "rust-axum");
    let bare = dir.path().join("git/adopted.git");
    bare_repository(&bare);
    std::fs::write(bare.join("description"), "someone's repository\n").expect("write");
    driver.apply(&s, "render").await.expect("render");
    let err = driver.apply(&s, "repository").await.expect_err("taken");
    assert_eq!(err.code(), "NonRetryable.NameTaken");
    assert!(err.to_string().contains("no paved marker"), "{err}");
    let err = driver.undo(&s, "repository").await.expect_err("not ours");
    assert_eq!(err.code(), "NonRetryable.NotOwned");
    let err = driver.delete(&s).await.expect_err("not ours");
    assert_eq!(err.code(), "NonRetryable.NotOwned");
    assert_eq!(
        std::fs::read_to_string(bare.join("description")).expect("still there"),
        "someone's repository\n",
        "the repository is untouched"
    );
    assert!(driver.status(&s).await.expect("status").is_none());
}

#[tokio::test]
async fn another_requests_repository_survives_a_late_undo_and_delete() {
    let (dir, _catalog, driver) = setup().await;
    let b = spec("reused", "python-fastapi");
    for step in ["render", "repository", "register"] {
        driver.apply(&b, step).await.expect("apply");
    }
    let bare = dir.path().join("git/reused.git");
    assert_eq!(
        git(&bare, &["config", "--get", "paved.requestId"]).trim(),
        b.request_id,
        "the repository names the request that made it"
    );
    let mut a = b.clone();
    a.request_id = "req-cancelled-earlier".into();
    let err = driver.undo(&a, "repository").await.expect_err("not A's");
    assert_eq!(err.code(), "NonRetryable.NotOwned");
    assert!(err.to_string().contains(&b.request_id), "{err}");
    assert_eq!(
        driver.delete(&a).await.expect_err("not A's").code(),
        "NonRetryable.NotOwned"
    );
    driver
        .undo(&a, "render")
        .await
        .expect("A's own staging only");
    assert!(bare.join("HEAD").exists(), "B's repository survives");
    assert!(driver.status(&b).await.expect("status").is_some());
    // A's late retry of its own create is refused too.
    driver.apply(&a, "render").await.expect("render");
    assert_eq!(
        driver
            .apply(&a, "repository")
            .await
            .expect_err("taken")
            .code(),
        "NonRetryable.NameTaken"
    );
    driver.delete(&b).await.expect("B deletes its own");
    assert!(!bare.exists());
}

/// The path where the driver makes and marks a request's repository before renaming it.
fn pending_of(dir: &std::path::Path, s: &ResourceSpec) -> std::path::PathBuf {
    dir.join("git/.staging").join(format!(
        "{}.{}.git",
        s.name,
        paved_drivers::ownership::request_token(&s.request_id)
    ))
}

#[tokio::test]
async fn a_crash_before_the_marker_and_a_hung_git_are_both_retried() {
    let (dir, _catalog, driver) = setup().await;
    let driver = driver.with_git_timeout(std::time::Duration::from_millis(1500));
    let s = spec("hung", "rust-axum");
    driver.apply(&s, "render").await.expect("render");

    // An earlier attempt made the pending repository and died before marking it.
    let pending = pending_of(dir.path(), &s);
    bare_repository(&pending);
    // And this one's push hangs (a receive hook that never returns).
    let hook = pending.join("hooks/pre-receive");
    // Marked ours, so the retry keeps it (and its hook) and pushes to it.
    git(&pending, &["config", "paved.requestId", &s.request_id]);
    std::fs::write(&hook, "#!/bin/sh\nexec sleep 60\n").expect("hook");
    let mut perms = std::fs::metadata(&hook).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&hook, perms).expect("chmod");
    let started = std::time::Instant::now();
    let err = driver.apply(&s, "repository").await.expect_err("hung");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.code(), "Retryable.Filesystem", "{err}");
    assert!(err.to_string().contains("was killed"), "{err}");
    assert!(
        !dir.path().join("git/hung.git").exists(),
        "nothing under the real name yet"
    );

    std::fs::remove_file(&hook).expect("unhang");
    let out = driver
        .apply(&s, "repository")
        .await
        .expect("the retry finishes");
    assert!(dir.path().join("git/hung.git/HEAD").exists(), "{out}");
    assert!(!pending.exists(), "renamed into place");
    driver.apply(&s, "register").await.expect("register");
    assert!(driver.status(&s).await.expect("status").is_some());

    // A pending repository left unmarked (the crash fell before the marker) is remade.
    let c = spec("crashy", "rust-axum");
    driver.apply(&c, "render").await.expect("render");
    let left = pending_of(dir.path(), &c);
    bare_repository(&left);
    driver.apply(&c, "repository").await.expect("finished");
    assert_eq!(
        git(
            &dir.path().join("git/crashy.git"),
            &["config", "--get", "paved.requestId"]
        )
        .trim(),
        c.request_id
    );
}

#[tokio::test]
async fn an_observed_service_reports_a_deleted_repository_and_a_removed_component_not_commits() {
    let (dir, catalog, driver) = setup().await;
    let s = spec("observed", "rust-axum");
    for step in ["render", "repository", "register"] {
        driver.apply(&s, step).await.expect(step);
    }
    let fresh = driver.observe(&s).await.expect("observe");
    assert!(fresh.is_synced(), "as provisioned: {:?}", fresh.drift);

    // The team's own commits are not drift.
    let work = dir.path().join("work");
    let bare = dir.path().join("git").join("observed.git");
    git(
        dir.path(),
        &["clone", "-q", &bare.display().to_string(), "work"],
    );
    std::fs::write(work.join("NOTES.md"), "ours\n").expect("write");
    git(&work, &["add", "NOTES.md"]);
    git(
        &work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            "notes",
        ],
    );
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    assert!(driver.observe(&s).await.expect("observe").is_synced());

    // The Component removed from the catalog by hand.
    let uid = catalog
        .read()
        .get_by_ref(&EntityRef::new("component", "default", "observed"))
        .expect("registered")
        .uid
        .clone();
    catalog
        .delete_by_uid(&uid, &paved_core::catalog::PlatformWriter)
        .await
        .expect("delete");
    let no_component = driver.observe(&s).await.expect("observe");
    assert!(no_component.exists);
    let paths: Vec<&str> = no_component.drift.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["component"]);

    // The repository deleted.
    std::fs::remove_dir_all(&bare).expect("rm");
    let gone = driver.observe(&s).await.expect("observe");
    assert!(!gone.exists);
    let paths: Vec<&str> = gone.drift.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["repository", "component"]);
}

// Enforcement: after a hand change, applying every step of the plan again, in plan order,
// brings the service back to what was provisioned (the reconciliation loop's `enforce`), and
// observe sees it in sync.

/// Every step of the plan again, in plan order; then observe sees it in sync.
async fn apply_all_again(driver: &ServiceDriver, s: &ResourceSpec) {
    for step in driver.plan(s).expect("plan") {
        driver
            .apply(s, &step.step)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", step.step));
    }
    let repaired = driver.observe(s).await.expect("observe");
    assert!(repaired.is_synced(), "repaired: {repaired:?}");
}

/// A service, provisioned and observed in sync.
async fn provisioned_and_synced(driver: &ServiceDriver, s: &ResourceSpec) {
    for step in ["render", "repository", "register"] {
        driver.apply(s, step).await.expect(step);
    }
    let fresh = driver.observe(s).await.expect("observe");
    assert!(fresh.is_synced(), "as provisioned: {:?}", fresh.drift);
    assert_eq!(fresh.calls, 2, "the repository's marker and the catalog");
}

#[tokio::test]
async fn apply_again_re_pushes_a_deleted_repository_under_its_name() {
    let (dir, catalog, driver) = setup().await;
    let s = spec("rebuilt", "rust-axum");
    provisioned_and_synced(&driver, &s).await;
    let bare = dir.path().join("git").join("rebuilt.git");
    std::fs::remove_dir_all(&bare).expect("rm");
    let gone = driver.observe(&s).await.expect("observe");
    assert!(!gone.exists);
    let paths: Vec<&str> = gone.drift.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["repository"], "{:?}", gone.drift);

    apply_all_again(&driver, &s).await;
    // The repository is back under its name, marked, with the skeleton on main...
    assert_eq!(
        git(&bare, &["config", "--get", "paved.requestId"]).trim(),
        s.request_id
    );
    let info = git(&bare, &["show", "main:catalog-info.yaml"]);
    assert!(info.contains("name: \"rebuilt\""), "{info}");
    // ...and the catalog's Component is this request's, with the repository beside it.
    let view = catalog
        .read()
        .get_by_ref(&EntityRef::new("component", "default", "rebuilt"))
        .map(|v| serde_json::from_slice::<Value>(&v.json).expect("json"))
        .expect("registered");
    assert_eq!(
        view["metadata"]["annotations"]["paved.dev/request-id"],
        json!(s.request_id)
    );
    let status = driver.status(&s).await.expect("status").expect("ours");
    assert_eq!(
        status,
        json!({"repository": bare.display().to_string(), "entityRef": "component:default/rebuilt"})
    );
    driver.delete(&s).await.expect("delete");
}

#[tokio::test]
async fn apply_again_registers_a_removed_component_again() {
    let (_dir, catalog, driver) = setup().await;
    let s = spec("reregistered", "python-fastapi");
    provisioned_and_synced(&driver, &s).await;
    let uid = catalog
        .read()
        .get_by_ref(&EntityRef::new("component", "default", "reregistered"))
        .expect("registered")
        .uid
        .clone();
    catalog
        .delete_by_uid(&uid, &paved_core::catalog::PlatformWriter)
        .await
        .expect("delete");
    let removed = driver.observe(&s).await.expect("observe");
    assert!(removed.exists);
    let paths: Vec<&str> = removed.drift.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["component"], "{:?}", removed.drift);
    apply_all_again(&driver, &s).await;
    driver.delete(&s).await.expect("delete");
}
