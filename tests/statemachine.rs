//! The provisioning state machine's contract, checked on the file both engines run
//! (`infra/statemachines/provision.asl.json`).

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

const ASL: &str = include_str!("../infra/statemachines/provision.asl.json");
const WAIT_FOR_TOKEN: &str = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";
const SEND: &str = "arn:aws:states:::sqs:sendMessage";

fn machine() -> Value {
    serde_json::from_str(ASL).expect("the state machine is JSON")
}

fn next_states(state: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = state["Next"].as_str() {
        out.push(n.to_owned());
    }
    for key in ["Choices", "Catch"] {
        for c in state[key].as_array().into_iter().flatten() {
            out.extend(c["Next"].as_str().map(str::to_owned));
        }
    }
    out.extend(state["Default"].as_str().map(str::to_owned));
    out
}

#[test]
fn every_state_is_reachable_and_every_transition_lands() {
    let m = machine();
    let states = m["States"].as_object().expect("states");
    let mut seen = HashSet::new();
    let mut todo = vec![m["StartAt"].as_str().expect("StartAt").to_owned()];
    while let Some(name) = todo.pop() {
        let state = states
            .get(&name)
            .unwrap_or_else(|| panic!("a transition goes to missing state {name}"));
        if seen.insert(name.clone()) {
            todo.extend(next_states(state));
        }
    }
    let all: HashSet<String> = states.keys().cloned().collect();
    assert_eq!(seen, all, "unreachable states");
    let ends: Vec<&String> = states
        .iter()
        .filter(|(_, s)| s["End"] == true || s["Type"] == "Fail" || s["Type"] == "Succeed")
        .map(|(n, _)| n)
        .collect();
    assert!(ends.len() >= 2);
}

#[test]
fn tasks_wait_for_tokens_with_heartbeats_timeouts_retries_and_catches() {
    let m = machine();
    let mut task_states = 0;
    for (name, state) in m["States"].as_object().expect("states") {
        if state["Type"] != "Task" {
            continue;
        }
        match state["Resource"].as_str() {
            Some(WAIT_FOR_TOKEN) => {
                task_states += 1;
                let (hb, timeout) = (
                    state["HeartbeatSeconds"].as_u64(),
                    state["TimeoutSeconds"].as_u64(),
                );
                assert!(
                    matches!((hb, timeout), (Some(h), Some(t)) if 0 < h && h < t),
                    "{name}: heartbeat below timeout"
                );
                assert_eq!(
                    state["Parameters"]["MessageBody"]["taskToken.$"], "$$.Task.Token",
                    "{name}"
                );
                assert!(
                    state["Parameters"]["MessageBody"]["taskId.$"]
                        .as_str()
                        .is_some_and(|s| s.contains("$.requestId")),
                    "{name}: a business task id"
                );
                assert_eq!(state["Parameters"]["QueueUrl"], "${TaskQueueUrl}");
                let retry = &state["Retry"][0];
                assert!(
                    retry["BackoffRate"].as_f64().is_some_and(|b| b > 1.0),
                    "{name}: backoff"
                );
                assert!(state["Catch"][0]["Next"].is_string(), "{name}: a catch");
            }
            Some(SEND) => assert_eq!(
                state["Parameters"]["QueueUrl"], "${NotificationQueueUrl}",
                "{name}"
            ),
            other => panic!("{name}: resource {other:?} is outside what both engines run"),
        }
    }
    assert_eq!(task_states, 2, "apply and undo");
}

/// Every `Retryable.*` code a driver or the worker can raise is retried by the machine: a
/// new code without a matching Retry entry would fail requests that should have been retried.
#[test]
fn every_retryable_code_in_the_code_is_retried() {
    let m = machine();
    let retried: BTreeSet<String> = m["States"]["ApplyStep"]["Retry"][0]["ErrorEquals"]
        .as_array()
        .expect("ErrorEquals")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        retried,
        m["States"]["UndoStep"]["Retry"][0]["ErrorEquals"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    );
    let code = regex::Regex::new(r#""(Retryable\.[A-Za-z]+)""#).expect("regex");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut raised = BTreeSet::new();
    for dir in ["shared/core/src", "shared/drivers/src"] {
        for entry in walk(&format!("{root}/{dir}")) {
            let text = std::fs::read_to_string(&entry).expect("read");
            raised.extend(code.captures_iter(&text).map(|c| c[1].to_owned()));
        }
    }
    assert!(raised.len() >= 4, "found the codes: {raised:?}");
    let missing: Vec<&String> = raised.difference(&retried).collect();
    assert!(
        missing.is_empty(),
        "retryable codes the state machine does not retry: {missing:?}"
    );
}

fn walk(dir: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path.to_string_lossy()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The intrinsic functions the embedded engine must implement: exactly these.
#[test]
fn only_the_documented_intrinsics_are_used() {
    let used: BTreeSet<String> = regex::Regex::new(r"States\.[A-Z][A-Za-z]+\(")
        .expect("regex")
        .find_iter(ASL)
        .map(|m| m.as_str().trim_end_matches('(').to_owned())
        .collect();
    assert_eq!(
        used,
        BTreeSet::from(
            [
                "States.ArrayGetItem",
                "States.ArrayLength",
                "States.Format",
                "States.MathAdd"
            ]
            .map(String::from)
        )
    );
}
