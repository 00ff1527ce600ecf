//! The request as the API and the chat replies show it.

use serde_json::{Value, json};

use crate::requests::{ProvisioningRequest, RequestStatus};

/// The record plus Kubernetes-style conditions (`PolicyPassed`, `Approved`, `Ready`).
pub fn request_view(r: &ProvisioningRequest) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.remove("version");
        map.insert("conditions".into(), conditions(r));
    }
    v
}

fn conditions(r: &ProvisioningRequest) -> Value {
    use RequestStatus::*;
    let approved = match (&r.decision, r.needs_approval) {
        (_, false) => json!({"type": "Approved", "status": "True", "reason": "NotRequired"}),
        (Some(d), true) if d.approved => {
            json!({"type": "Approved", "status": "True", "reason": "Approved", "message": format!("approved by {}", d.by), "lastTransitionTime": d.at})
        }
        (Some(d), true) => {
            json!({"type": "Approved", "status": "False", "reason": "Rejected", "message": format!("rejected by {}", d.by), "lastTransitionTime": d.at})
        }
        (None, true) => {
            json!({"type": "Approved", "status": "Unknown", "reason": "WaitingForApproval"})
        }
    };
    let ready = match r.status {
        Ready => json!({"type": "Ready", "status": "True", "reason": "Provisioned"}),
        Failed | DeleteFailed => json!({"type": "Ready", "status": "False", "reason": "Failed",
            "message": r.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default()}),
        other => {
            json!({"type": "Ready", "status": if matches!(other, Rejected | Cancelled | Deleted) { "False" } else { "Unknown" },
            "reason": serde_json::to_value(other).unwrap_or(Value::Null)})
        }
    };
    json!([{"type": "PolicyPassed", "status": "True", "reason": "NoViolations"}, approved, ready])
}
