//! The request lifecycle over the embedded table: edges, conditional writes, the event log.

use std::sync::Arc;

use paved_core::ports::SystemClock;
use paved_core::requests::{NewRequest, RequestRepository, RequestStatus};
use paved_sqlite::SqliteStore;
use serde_json::json;

fn repo() -> (tempfile::TempDir, Arc<RequestRepository>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("paved.db")).expect("open");
    (
        dir,
        Arc::new(RequestRepository::new(
            Arc::new(store),
            Arc::new(SystemClock),
        )),
    )
}

fn new(id: &str) -> NewRequest {
    NewRequest {
        id: id.into(),
        template: "postgres-database".into(),
        resource_type: "postgres-database".into(),
        name: format!("db-{id}"),
        owner: "group:default/team-a".into(),
        environment: "production".into(),
        parameters: json!({"storage_gb": 10}),
        requester: "user:default/alice".into(),
        steps: vec!["database".into(), "role".into(), "grants".into()],
        needs_approval: false,
        reconcile: Default::default(),
    }
}

#[tokio::test]
async fn a_request_walks_its_lifecycle_and_logs_every_step() {
    let (_d, repo) = repo();
    let r = repo.create(new("r1")).await.expect("create");
    assert_eq!(
        (r.status, r.version, r.steps.len()),
        (RequestStatus::Submitted, 1, 3)
    );
    assert_eq!(
        repo.create(new("r1")).await.expect_err("twice").code(),
        "conflict"
    );
    for next in [
        RequestStatus::WaitingForApproval,
        RequestStatus::Queued,
        RequestStatus::Provisioning,
        RequestStatus::Ready,
        RequestStatus::Deprovisioning,
        RequestStatus::Deleted,
    ] {
        let r = repo
            .transition("r1", next, "test")
            .await
            .expect("transition");
        assert_eq!(r.status, next);
    }
    let r = repo.get("r1").await.expect("get");
    assert_eq!(r.version, 7);
    assert_eq!(r.events.len(), 7);
    assert_eq!(r.events[0].event, "submitted");
    assert!(
        r.events[6].message.contains("Deprovisioning → Deleted"),
        "{:?}",
        r.events[6]
    );
    assert!(r.status.is_finished());
    // Status changes are data: where they came from, where they went, and when.
    assert_eq!(
        (r.events[6].from, r.events[6].to),
        (
            Some(RequestStatus::Deprovisioning),
            Some(RequestStatus::Deleted)
        )
    );
    assert_eq!(r.reached_at(RequestStatus::Ready), Some(r.events[4].at));
    assert_eq!(r.reached_at(RequestStatus::Failed), None);
}

#[test]
fn reached_at_reads_the_status_change_not_its_wording() {
    let mut r: paved_core::requests::ProvisioningRequest = serde_json::from_value(json!({
        "id": "r", "template": "t", "resourceType": "x", "name": "n",
        "owner": "group:default/team-a", "environment": "development", "parameters": {},
        "requester": "user:default/alice", "status": "PROVISIONING", "needsApproval": false,
        "steps": [], "createdAt": "2026-12-01T00:00:00Z", "updatedAt": "2026-12-01T00:00:00Z",
        "version": 1, "decision": null, "failure": null, "outputs": null,
        "events": [
            // Stored before status changes carried `to`: read from the message.
            {"at": "2026-12-01T00:01:00Z", "event": "status_changed", "message": "Queued → Provisioning: go"},
        ],
    }))
    .expect("a stored request");
    assert!(r.reached_at(RequestStatus::Provisioning).is_some());
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:02:00Z")
        .expect("at")
        .with_timezone(&chrono::Utc);
    // A reason that happens to contain another status's wording is not that status.
    r.advance(RequestStatus::Ready, "→ Failed: was expected, but", at)
        .expect("advance");
    assert_eq!(r.reached_at(RequestStatus::Ready), Some(at));
    assert_eq!(r.reached_at(RequestStatus::Failed), None);
}

#[tokio::test]
async fn edges_the_lifecycle_lacks_are_refused() {
    let (_d, repo) = repo();
    repo.create(new("r2")).await.expect("create");
    for bad in [
        RequestStatus::Ready,
        RequestStatus::Provisioning,
        RequestStatus::Deleted,
    ] {
        let err = repo
            .transition("r2", bad, "skip ahead")
            .await
            .expect_err("refused");
        assert_eq!(err.code(), "invalid_transition");
    }
    repo.transition("r2", RequestStatus::Rejected, "no")
        .await
        .expect("reject");
    assert_eq!(
        repo.transition("r2", RequestStatus::Queued, "undo")
            .await
            .expect_err("final")
            .code(),
        "invalid_transition"
    );
    assert_eq!(
        repo.get("missing").await.expect_err("missing").code(),
        "not_found"
    );
}

#[tokio::test]
async fn concurrent_approvals_one_wins() {
    let (_d, repo) = repo();
    repo.create(new("r3")).await.expect("create");
    repo.transition("r3", RequestStatus::WaitingForApproval, "prod")
        .await
        .expect("wait");
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let repo = Arc::clone(&repo);
            tokio::spawn(async move {
                repo.transition("r3", RequestStatus::Queued, &format!("approver {i}"))
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for r in racers {
        match r.await.expect("join") {
            Ok(_) => won += 1,
            // Lost the race on the version, or came after the winner (QUEUED → QUEUED is no edge).
            Err(e) => assert!(
                matches!(e.code(), "conflict" | "invalid_transition"),
                "{e:?}"
            ),
        }
    }
    assert_eq!(won, 1);
    let final_state = repo.get("r3").await.expect("get");
    assert_eq!(
        (final_state.status, final_state.version),
        (RequestStatus::Queued, 3)
    );
    assert_eq!(
        final_state
            .events
            .iter()
            .filter(|e| e.event == "status_changed")
            .count(),
        2
    );
    let listed = repo
        .list(|r| r.owner == "group:default/team-a")
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn a_live_request_holds_its_resource_name_until_it_ends() {
    let (_d, repo) = repo();
    let mut first = new("r1");
    first.name = "orders".into();
    repo.create(first.clone()).await.expect("create");
    let mut second = first.clone();
    second.id = "r2".into();
    let err = repo.create(second.clone()).await.expect_err("name taken");
    assert_eq!(err.code(), "name_taken");
    assert!(err.to_string().contains("r1"), "{err}");
    let mut other_env = second.clone();
    other_env.environment = "staging".into();
    other_env.id = "r3".into();
    repo.create(other_env)
        .await
        .expect("another environment is another resource");

    repo.transition("r1", RequestStatus::Cancelled, "changed my mind")
        .await
        .expect("cancel");
    assert_eq!(
        repo.live_count("group:default/team-a")
            .await
            .expect("count"),
        1
    );
    repo.create(second).await.expect("the name is free again");
}
