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

/// Something a driver found on its provider that is paved's by its marker (a comment, a tag,
/// a git config entry naming a request), or by a name only paved makes (a pending name, such
/// as PostgreSQL's `pavedtmp_<token>`, not yet marked when a step crashed): the leak scan's
/// input. Things under paved's naming but without a marker are not reported: paved cannot
/// tell them from something made by hand, and the observation of a live resource whose
/// marker was removed reports that as drift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    /// What it is, in the provider's words: `database`, `role`, `queue`, `table`,
    /// `repository`.
    pub kind: String,
    /// Its name on the provider (a database, queue or table name; a repository's path under
    /// the git root).
    pub name: String,
    /// The request its marker names; `None` for a pending name not marked yet.
    pub request_id: Option<String>,
}

/// One page of a driver's inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryPage {
    pub found: Vec<Found>,
    /// Where the next page starts (a driver's own position); `None` after the last.
    pub next: Option<String>,
    /// Calls the page made to the provider: the provider's rate limit counts them.
    pub calls: u32,
}
