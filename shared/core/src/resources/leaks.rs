//! Leaks: what is paved's on a provider (by its marker, or by a name only paved makes) but
//! has no live request, such as a crash after the create-pending marker, or a request deleted
//! while its undo could not run. They are reported, never removed by the loop: an admin
//! adopts one (its request is READY again and reconciled) or deletes it (through the driver,
//! which removes it only while its marker still names that request).
//!
//! A scan is one task per page of a provider's inventory. Each page's calls are taken from the
//! provider's observation slots (the same token bucket as the observe tasks), and the next
//! page is queued to start after them, so a scan never adds to the provider's rate. The last
//! page sweeps the leaks an earlier scan recorded that this one did not find again.
//!
//! Items: `LEAK/<id>`, and the listing `LEAKBY#ALL` and `LEAKBY#OWNER#<o>` under the sort key
//! `<type>#<environment>#<id>` (each entry carries the whole leak: leaks are few and small).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::reconciler::Reconciler;
use crate::circuit::{CircuitBreakers, Permit};
use crate::error::Error;
use crate::messages::WorkerMessage;
use crate::observation::Found;
use crate::ports::{Condition, Item, Key, QueueMessage, SortKeyRange, Table, TransactOp};
use crate::requests::{ProvisioningRequest, RequestStatus, owner_key};

const LEAK_PARTITION: &str = "LEAK";
const LISTING_PREFIX: &str = "LEAKBY";
/// The most things one scan page asks a driver for.
pub const MAX_SCAN_PAGE: usize = 50;

/// One page of a provider's leak scan: the task queue's `{"kind": "scan_leaks", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeakScanTask {
    pub resource_type: String,
    /// When the scan started (ms since the epoch): every leak it finds carries it, and the
    /// last page sweeps those that carry an older one.
    pub scan_ms: i64,
    /// The driver's position (a previous page's `next`); `None` for the first page.
    #[serde(default)]
    pub after: Option<String>,
    /// The slot the page was given (ms since the epoch): the worker starts no earlier.
    #[serde(default)]
    pub not_before_ms: i64,
}

/// An admin's deletion of one leak: the task queue's `{"kind": "remove_leak", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveLeakTask {
    pub leak_id: String,
    /// Who asked, for the log.
    pub by: String,
}

/// Why something paved's is a leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LeakReason {
    /// Its marker names a request that is failed, cancelled, rejected or deleted.
    RequestFinished,
    /// Its marker names a request this platform has no record of (made by another paved
    /// installation on the same provider, or by a request whose record is gone): never
    /// adopted or deleted from here.
    UnknownRequest,
    /// A pending name only paved makes, never marked: a step crashed between making it and
    /// marking it. Which request made it cannot be proved, so a person removes it by hand.
    Unmarked,
}

/// An admin's deletion under way, or how it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeakRemoval {
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    #[serde(default)]
    pub error: Option<String>,
}

/// A leak as the platform keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Leak {
    /// `leak-<hex>`, from the provider, the kind and the name: the id
    /// `GET`/`DELETE /v1/resources/{id}` and `POST /v1/resources/{id}/adopt` take.
    pub id: String,
    pub resource_type: String,
    #[serde(flatten)]
    pub found: Found,
    pub reason: LeakReason,
    /// The marker's request as it is now (`None`: no such request, or no marker).
    pub request_status: Option<RequestStatus>,
    /// The owner and environment of the marker's request, when it is known.
    pub owner: Option<String>,
    pub environment: Option<String>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The scan that last found it (its start, ms since the epoch).
    pub scan_ms: i64,
    #[serde(default)]
    pub removal: Option<LeakRemoval>,
}

/// The id of what `resource_type`'s driver found as `found`.
pub fn leak_id(resource_type: &str, found: &Found) -> String {
    let digest = Sha256::digest(format!("{resource_type}\0{}\0{}", found.kind, found.name));
    format!("leak-{}", &hex::encode(digest)[..20])
}

/// Whether `id` names a leak rather than a request.
pub fn is_leak_id(id: &str) -> bool {
    id.starts_with("leak-")
}

impl Leak {
    /// What people see: the leak, flagged as one.
    pub fn view(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("leaked".into(), Value::Bool(true));
            m.insert("message".into(), Value::String(self.message()));
        }
        v
    }

    pub fn message(&self) -> String {
        let request = self.found.request_id.as_deref().unwrap_or("?");
        match self.reason {
            LeakReason::RequestFinished => format!(
                "the {} {} carries the marker of request {request}, which is {}: an admin may adopt it (READY again) or delete it",
                self.found.kind,
                self.found.name,
                serde_json::to_value(self.request_status.unwrap_or(RequestStatus::Deleted))
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            LeakReason::UnknownRequest => format!(
                "the {} {} carries the marker of request {request}, which this platform has no record of (another paved installation's?); remove it by hand if it is no one's",
                self.found.kind, self.found.name
            ),
            LeakReason::Unmarked => format!(
                "the {} {} has a pending name only paved makes but no marker (a step crashed before marking it); remove it by hand",
                self.found.kind, self.found.name
            ),
        }
    }

    fn sort_key(&self) -> String {
        format!(
            "{}#{}#{}",
            self.resource_type,
            self.environment.as_deref().unwrap_or("-"),
            self.id
        )
    }

    fn listing_partitions(&self) -> Vec<String> {
        let mut out = vec![format!("{LISTING_PREFIX}#ALL")];
        if let Some(owner) = &self.owner {
            out.push(format!("{LISTING_PREFIX}#OWNER#{}", owner_key(owner)));
        }
        out
    }
}

/// What a leak listing asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeakFilter {
    /// The owner, as the index spells it ([`owner_key`]).
    pub owner: Option<String>,
    pub resource_type: Option<String>,
    pub environment: Option<String>,
}

/// Where leaks live.
pub struct LeakRepository {
    table: Arc<dyn Table>,
}

impl std::fmt::Debug for LeakRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeakRepository").finish_non_exhaustive()
    }
}

fn encode(leak: &Leak, key: Key) -> Result<Item, Error> {
    match serde_json::to_value(leak) {
        Ok(Value::Object(attrs)) => Ok(Item::new(key, attrs)),
        _ => Err(Error::Internal(format!("encoding leak {}", leak.id))),
    }
}

fn decode(item: Item) -> Result<Leak, Error> {
    let key = format!("{}/{}", item.key.pk, item.key.sk);
    serde_json::from_value(Value::Object(item.attrs)).map_err(|e| {
        tracing::error!(%key, error = %e, "a stored leak does not decode");
        Error::Internal(format!("the stored leak {key} is corrupt: {e}"))
    })
}

impl LeakRepository {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Leak>, Error> {
        self.table
            .get(&Key::new(LEAK_PARTITION, id))
            .await?
            .map(decode)
            .transpose()
    }

    /// Records a leak a scan found, keeping when it was first seen and a removal under way.
    pub async fn record(&self, mut leak: Leak) -> Result<(), Error> {
        if let Some(before) = self.get(&leak.id).await? {
            leak.first_seen_at = before.first_seen_at;
            leak.removal = before.removal.clone();
            if before.sort_key() != leak.sort_key() || before.owner != leak.owner {
                self.remove(&before).await?;
            }
        }
        self.put(&leak).await
    }

    /// Writes the leak and its listing entries.
    pub async fn put(&self, leak: &Leak) -> Result<(), Error> {
        let mut ops = vec![TransactOp::Put {
            item: encode(leak, Key::new(LEAK_PARTITION, &leak.id))?,
            condition: Condition::Always,
        }];
        for pk in leak.listing_partitions() {
            ops.push(TransactOp::Put {
                item: encode(leak, Key::new(pk, leak.sort_key()))?,
                condition: Condition::Always,
            });
        }
        self.table.transact(ops).await.map_err(Error::from)
    }

    /// Forgets a leak (adopted, deleted, or not found again).
    pub async fn remove(&self, leak: &Leak) -> Result<(), Error> {
        let mut ops = vec![TransactOp::Delete {
            key: Key::new(LEAK_PARTITION, &leak.id),
            condition: Condition::Always,
        }];
        for pk in leak.listing_partitions() {
            ops.push(TransactOp::Delete {
                key: Key::new(pk, leak.sort_key()),
                condition: Condition::Always,
            });
        }
        self.table.transact(ops).await.map_err(Error::from)
    }

    /// One page of the leaks `filter` selects, in type, environment and id order, after
    /// `after` (a sort key from the last page): about `limit` entries read.
    pub async fn page(
        &self,
        filter: &LeakFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Leak>, Option<String>), Error> {
        let pk = match &filter.owner {
            None => format!("{LISTING_PREFIX}#ALL"),
            Some(o) => format!("{LISTING_PREFIX}#OWNER#{o}"),
        };
        let range = match (&filter.resource_type, &filter.environment) {
            (Some(t), Some(e)) => SortKeyRange::BeginsWith(format!("{t}#{e}#")),
            (Some(t), None) => SortKeyRange::BeginsWith(format!("{t}#")),
            _ => SortKeyRange::All,
        };
        let page = self.table.query(&pk, &range, after, limit).await?;
        let mut leaks = Vec::new();
        for item in page.items {
            let leak = decode(item)?;
            // An environment without a type is not a prefix.
            if filter
                .environment
                .as_ref()
                .is_none_or(|e| leak.environment.as_ref() == Some(e))
            {
                leaks.push(leak);
            }
        }
        Ok((leaks, page.last_sk))
    }

    /// Forgets `resource_type`'s leaks that the scan started at `scan_ms` did not find.
    pub async fn sweep(&self, resource_type: &str, scan_ms: i64) -> Result<usize, Error> {
        self.forget_where(resource_type, |l| l.scan_ms < scan_ms)
            .await
    }

    /// Forgets `resource_type`'s leaks whose marker names `request_id` (adopted: what it left
    /// is live again).
    pub async fn forget_request(
        &self,
        resource_type: &str,
        request_id: &str,
    ) -> Result<usize, Error> {
        self.forget_where(resource_type, |l| {
            l.found.request_id.as_deref() == Some(request_id)
        })
        .await
    }

    /// Reads `resource_type`'s leaks (they are few) and forgets those `which` picks.
    async fn forget_where(
        &self,
        resource_type: &str,
        which: impl Fn(&Leak) -> bool,
    ) -> Result<usize, Error> {
        let filter = LeakFilter {
            resource_type: Some(resource_type.to_owned()),
            ..LeakFilter::default()
        };
        let mut after: Option<String> = None;
        let mut forgotten = 0;
        loop {
            let (leaks, next) = self.page(&filter, after.as_deref(), 200).await?;
            for leak in leaks.iter().filter(|l| which(l)) {
                self.remove(leak).await?;
                forgotten += 1;
            }
            match next {
                Some(n) => after = Some(n),
                None => return Ok(forgotten),
            }
        }
    }
}

/// What one scan page did (for tests and logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub found: usize,
    pub leaks: usize,
    pub calls: u32,
    /// The next page was queued.
    pub more: bool,
    /// Leaks of earlier scans not found again (the last page only).
    pub swept: usize,
}

impl Reconciler {
    /// Queues the first page of a leak scan of `resource_type` now (the tick, on its schedule).
    pub async fn request_leak_scan(&self, resource_type: &str) -> Result<(), Error> {
        let now_ms = self.clock().now().timestamp_millis();
        let task = LeakScanTask {
            resource_type: resource_type.to_owned(),
            scan_ms: now_ms,
            after: None,
            not_before_ms: now_ms,
        };
        self.queue()
            .send(
                self.task_queue(),
                QueueMessage::new(WorkerMessage::ScanLeaks(task).to_json()),
            )
            .await?;
        Ok(())
    }

    /// Runs one page of a leak scan: lists, classifies, records, takes the page's calls from
    /// the provider's slots, and queues the next page after them (or sweeps, after the last).
    pub async fn scan_leaks(
        &self,
        task: &LeakScanTask,
        breakers: &CircuitBreakers,
    ) -> Result<ScanReport, Error> {
        let Some(driver) = self.runner().and_then(|r| r.driver(&task.resource_type)) else {
            // Another process's provider (one `paved up` ran, say): nothing to list here, and
            // retrying would only fill the dead-letter queue.
            tracing::warn!(provider = %task.resource_type, "no driver for this provider on this worker: its leak scan is skipped");
            return Ok(ScanReport::default());
        };
        let wait = task.not_before_ms - self.clock().now().timestamp_millis();
        if wait > 0 {
            let horizon = self.settings().tick_period.as_millis() as i64 * 2;
            tokio::time::sleep(Duration::from_millis(wait.min(horizon) as u64)).await;
        }
        let now = self.clock().now();
        let permit = match breakers.permit(&task.resource_type, now) {
            Permit::Allowed(p) => p,
            Permit::Refused { until } => {
                return Err(Error::Unavailable(format!(
                    "the {} provider failed repeatedly; its leak scan waits until {until}",
                    task.resource_type
                )));
            }
        };
        let listed = driver
            .inventory(task.after.as_deref(), self.scan_page(&task.resource_type))
            .await;
        permit.report(&listed, now);
        let page = listed.map_err(|e| {
            Error::Unavailable(format!("the {} inventory failed: {e}", task.resource_type))
        })?;
        let mut report = ScanReport {
            found: page.found.len(),
            calls: page.calls,
            ..ScanReport::default()
        };
        let mut requests: HashMap<String, Option<ProvisioningRequest>> = HashMap::new();
        for found in page.found {
            let request = match &found.request_id {
                None => None,
                Some(id) => {
                    if !requests.contains_key(id) {
                        let r = match self.requests().get(id).await {
                            Ok(r) => Some(r),
                            Err(Error::NotFound(_)) => None,
                            Err(e) => return Err(e),
                        };
                        requests.insert(id.clone(), r);
                    }
                    requests.get(id).cloned().flatten()
                }
            };
            let reason = match (&found.request_id, &request) {
                (None, _) => LeakReason::Unmarked,
                (Some(_), None) => LeakReason::UnknownRequest,
                (Some(_), Some(r)) if r.status.releases_name() => LeakReason::RequestFinished,
                // A live request's: not a leak (its observation reports any drift).
                (Some(_), Some(_)) => continue,
            };
            let leak = Leak {
                id: leak_id(&task.resource_type, &found),
                resource_type: task.resource_type.clone(),
                reason,
                request_status: request.as_ref().map(|r| r.status),
                owner: request.as_ref().map(|r| r.owner.clone()),
                environment: request.as_ref().map(|r| r.environment.clone()),
                first_seen_at: now,
                last_seen_at: now,
                scan_ms: task.scan_ms,
                removal: None,
                found,
            };
            tracing::warn!(leak_id = %leak.id, provider = %leak.resource_type, name = %leak.found.name, reason = ?leak.reason, "leak found");
            self.leaks().record(leak).await?;
            report.leaks += 1;
        }
        let start_ms = self
            .take_slots(&task.resource_type, page.calls, now.timestamp_millis())
            .await?;
        match page.next {
            Some(after) => {
                let next = LeakScanTask {
                    resource_type: task.resource_type.clone(),
                    scan_ms: task.scan_ms,
                    after: Some(after),
                    not_before_ms: start_ms,
                };
                let delay = u64::try_from(start_ms - now.timestamp_millis()).unwrap_or(0);
                self.queue()
                    .send(
                        self.task_queue(),
                        QueueMessage {
                            body: WorkerMessage::ScanLeaks(next).to_json(),
                            delay: Duration::from_millis(delay).min(Duration::from_secs(900)),
                        },
                    )
                    .await?;
                report.more = true;
            }
            None => {
                report.swept = self
                    .leaks()
                    .sweep(&task.resource_type, task.scan_ms)
                    .await?;
            }
        }
        Ok(report)
    }

    /// An admin's deletion: the driver removes the thing while its marker still names the
    /// leak's request; the leak is forgotten once it is gone. A refusal is kept on the leak.
    pub async fn remove_leak(
        &self,
        task: &RemoveLeakTask,
        breakers: &CircuitBreakers,
    ) -> Result<bool, Error> {
        let Some(leak) = self.leaks().get(&task.leak_id).await? else {
            return Ok(false);
        };
        let Some(request_id) = &leak.found.request_id else {
            return Ok(false);
        };
        let request = match self.requests().get(request_id).await {
            Ok(r) => r,
            // The API refuses such a leak; a record gone meanwhile leaves it reported.
            Err(Error::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        if !request.status.releases_name() {
            // Adopted meanwhile: no longer a leak.
            self.leaks().remove(&leak).await?;
            return Ok(false);
        }
        let Some(driver) = self.runner().and_then(|r| r.driver(&leak.resource_type)) else {
            self.keep_refusal(
                &leak,
                format!("this worker has no {} driver", leak.resource_type),
            )
            .await?;
            return Ok(false);
        };
        let now = self.clock().now();
        let permit = match breakers.permit(&leak.resource_type, now) {
            Permit::Allowed(p) => p,
            Permit::Refused { until } => {
                return Err(Error::Unavailable(format!(
                    "the {} provider failed repeatedly; the deletion waits until {until}",
                    leak.resource_type
                )));
            }
        };
        let removed = driver.remove_found(&request.spec(), &leak.found).await;
        permit.report(&removed, now);
        match removed {
            Ok(()) => {
                self.leaks().remove(&leak).await?;
                tracing::info!(leak_id = %leak.id, name = %leak.found.name, by = %task.by, "leak deleted");
                Ok(true)
            }
            Err(e @ crate::provisioning::DriverError::Retryable { .. }) => Err(Error::Unavailable(
                format!("deleting {}: {e}", leak.found.name),
            )),
            Err(e) => {
                tracing::warn!(leak_id = %leak.id, error = %e, "the leak's deletion was refused");
                self.keep_refusal(&leak, e.to_string()).await?;
                Ok(false)
            }
        }
    }

    /// Keeps why a deletion did not happen on the leak, for the admin who asked.
    async fn keep_refusal(&self, leak: &Leak, why: String) -> Result<(), Error> {
        let mut kept = leak.clone();
        if let Some(removal) = &mut kept.removal {
            removal.error = Some(why);
        }
        self.leaks().put(&kept).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(name: &str) -> Found {
        Found {
            kind: "database".into(),
            name: name.into(),
            request_id: Some("req-1".into()),
        }
    }

    #[test]
    fn leak_ids_are_stable_per_provider_kind_and_name_and_never_a_request_id() {
        let a = leak_id("postgres-database", &found("paved_dev_orders"));
        assert_eq!(a, leak_id("postgres-database", &found("paved_dev_orders")));
        assert_ne!(a, leak_id("postgres-database", &found("paved_dev_order")));
        assert_ne!(a, leak_id("sqs-queue", &found("paved_dev_orders")));
        assert!(is_leak_id(&a) && a.len() == 25, "{a}");
        assert!(!is_leak_id("req-0123"));
    }

    #[test]
    fn a_leak_reads_as_one_with_what_an_admin_may_do() {
        let now = Utc::now();
        let leak = Leak {
            id: leak_id("postgres-database", &found("paved_dev_orders")),
            resource_type: "postgres-database".into(),
            found: found("paved_dev_orders"),
            reason: LeakReason::RequestFinished,
            request_status: Some(RequestStatus::Failed),
            owner: Some("group:default/team-a".into()),
            environment: Some("dev".into()),
            first_seen_at: now,
            last_seen_at: now,
            scan_ms: 1,
            removal: None,
        };
        let view = leak.view();
        assert_eq!(view["leaked"], true);
        assert_eq!(view["name"], "paved_dev_orders");
        assert_eq!(view["requestId"], "req-1");
        assert_eq!(view["reason"], "requestFinished");
        assert!(
            view["message"]
                .as_str()
                .is_some_and(|m| m.contains("req-1, which is FAILED")),
            "{view}"
        );
        assert_eq!(
            leak.sort_key(),
            format!("postgres-database#dev#{}", leak.id)
        );
        assert_eq!(
            leak.listing_partitions(),
            ["LEAKBY#ALL", "LEAKBY#OWNER#group:default/team-a"]
        );
    }
}
