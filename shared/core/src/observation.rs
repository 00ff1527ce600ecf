//! What a driver sees when it looks at a resource it provisioned: whether it exists, and
//! every field where it differs from what was provisioned (the reconciliation loop's input).
//! An observation is read-only: it never changes the resource.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One field where the resource differs from what was provisioned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// A dotted path naming the field (`queue.VisibilityTimeout`, `table.pointInTimeRecovery`).
    pub path: String,
    pub desired: Value,
    /// `null` when the thing the path names does not exist.
    pub actual: Value,
}

/// What one observation found.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Observation {
    /// The resource (its primary part: the queue, the table) exists and is paved's.
    pub exists: bool,
    /// Empty when what exists is what was provisioned.
    pub drift: Vec<Drift>,
    /// Calls the observation made to the provider, for the cost figures.
    #[serde(skip)]
    pub calls: u32,
}

impl Observation {
    /// Records a difference when `desired` and `actual` differ.
    pub fn compare(&mut self, path: &str, desired: Value, actual: Value) {
        if desired != actual {
            self.drift.push(Drift {
                path: path.to_owned(),
                desired,
                actual,
            });
        }
    }

    pub fn is_synced(&self) -> bool {
        self.exists && self.drift.is_empty()
    }
}
