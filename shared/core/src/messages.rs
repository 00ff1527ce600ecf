//! What travels on the task and notification queues, as one tagged enum. Every body carries
//! `kind`: `task` (a step to run, from the state machine or a deprovisioning request),
//! `outcome` (the state machine's last word on a request), `chat` (a notification to
//! deliver to Slack once), or the reconciliation loop's `observe`, `scan_leaks` and
//! `remove_leak`. The worker reads each body once, into [`WorkerMessage`], instead of
//! telling them apart by which keys they happen to carry.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::tasks::TaskMessage;

/// One queue message for the provision worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkerMessage {
    Task(TaskMessage),
    Outcome(ExecutionOutcome),
    Chat(ChatNotification),
    /// Observe one resource (and repair it under `enforce`): the reconciliation loop's task.
    Observe(crate::resources::ObserveTask),
    /// One page of a provider's leak scan.
    ScanLeaks(crate::resources::LeakScanTask),
    /// An admin's deletion of one leak.
    RemoveLeak(crate::resources::RemoveLeakTask),
}

impl WorkerMessage {
    /// Reads a queue body. Bodies written before `kind` existed (messages still in flight
    /// across an upgrade) are recognised the old way, here and nowhere else.
    pub fn parse(body: &str) -> Result<Self, String> {
        let mut value: Value =
            serde_json::from_str(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        if let Value::Object(fields) = &mut value
            && !fields.contains_key("kind")
        {
            let kind = if fields.contains_key("taskId") {
                "task"
            } else {
                "outcome"
            };
            fields.insert("kind".into(), Value::String(kind.into()));
        }
        serde_json::from_value(value).map_err(|e| format!("the message is malformed: {e}"))
    }

    /// The queue body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// How an execution ended, as the state machine's last state reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Ready,
    Failed,
}

/// The state machine's final notification for a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionOutcome {
    pub request_id: String,
    pub status: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
}

/// What happened to a request, for chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatEvent {
    ApprovalNeeded,
    Ready,
    Failed,
    /// A live resource differs from what was provisioned.
    Drifted,
    /// The reconciliation loop repaired a drifted resource.
    Repaired,
    /// A repair was tried and the resource still differs.
    Unrepairable,
}

impl ChatEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApprovalNeeded => "approval_needed",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Drifted => "drifted",
            Self::Repaired => "repaired",
            Self::Unrepairable => "unrepairable",
        }
    }
}

/// A chat notification: `{"kind": "chat", "requestId": ..., "event": ...}` on the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatNotification {
    pub request_id: String,
    pub event: ChatEvent,
    /// Which transition of the resource this is (the loop's events recur; each transition
    /// is delivered once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u32>,
}

impl ChatNotification {
    pub fn new(request_id: impl Into<String>, event: ChatEvent) -> Self {
        Self {
            request_id: request_id.into(),
            event,
            sequence: None,
        }
    }

    /// The message body.
    pub fn to_json(&self) -> String {
        WorkerMessage::Chat(self.clone()).to_json()
    }

    /// The key that makes its delivery happen once.
    pub fn delivery_key(&self) -> String {
        match self.sequence {
            Some(n) => format!("{}#{}#{n}", self.request_id, self.event.as_str()),
            None => format!("{}#{}", self.request_id, self.event.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_message_names_its_kind_and_reads_back() {
        let chat = WorkerMessage::Chat(ChatNotification::new("req-1", ChatEvent::Ready));
        let outcome = WorkerMessage::Outcome(ExecutionOutcome {
            request_id: "req-1".into(),
            status: Outcome::Failed,
            execution_id: Some("arn:x".into()),
        });
        for (message, kind) in [(chat, "chat"), (outcome, "outcome")] {
            let body = message.to_json();
            let v: Value = serde_json::from_str(&body).expect("json");
            assert_eq!(v["kind"], kind);
            assert_eq!(WorkerMessage::parse(&body), Ok(message));
        }
    }

    #[test]
    fn the_reconciliation_loops_tasks_read_back_as_the_sample_event_carries_them() {
        let sample: Value = serde_json::from_str(include_str!(
            "../../../events/provision-worker.sqs.reconcile.json"
        ))
        .expect("the sample is JSON");
        let kinds: Vec<&str> = sample["Records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| {
                let body = r["body"].as_str().expect("body");
                let message = WorkerMessage::parse(body).expect(body);
                assert_eq!(
                    WorkerMessage::parse(&message.to_json()),
                    Ok(message.clone())
                );
                match message {
                    WorkerMessage::Observe(_) => "observe",
                    WorkerMessage::ScanLeaks(_) => "scan_leaks",
                    WorkerMessage::RemoveLeak(_) => "remove_leak",
                    _ => "other",
                }
            })
            .collect();
        assert_eq!(kinds, ["observe", "scan_leaks", "remove_leak"]);
    }

    #[test]
    fn bodies_from_before_kind_are_still_read() {
        let outcome = json!({"requestId": "req-1", "status": "READY"}).to_string();
        assert!(matches!(
            WorkerMessage::parse(&outcome),
            Ok(WorkerMessage::Outcome(ExecutionOutcome {
                status: Outcome::Ready,
                ..
            }))
        ));
        let task = json!({"taskId": "req-1/db/apply", "resourceType": "x", "step": "db",
                          "action": "apply", "spec": {"request_id": "req-1", "name": "n",
                          "owner": "group:default/a", "environment": "development", "parameters": {}}})
        .to_string();
        assert!(matches!(
            WorkerMessage::parse(&task),
            Ok(WorkerMessage::Task(_))
        ));
    }

    #[test]
    fn unknown_kinds_and_bad_outcomes_are_refused() {
        for body in [
            r#"{"kind": "surprise"}"#,
            r#"{"kind": "outcome", "requestId": "r", "status": "MAYBE"}"#,
            "not json",
        ] {
            assert!(WorkerMessage::parse(body).is_err(), "{body}");
        }
    }
}
