//! The event repository: deliveries (de-duplicated, raw kept for replay), deployments, changes,
//! incidents, each service's commits pushed but not yet deployed, and the latest DORA report.
//!
//! Layout (one table, no GSIs):
//! - `EVENTS#DELIVERY#{source}` / `{delivery id}`: the raw payload, written once (`Absent`),
//!   after the delivery's rows: every row write below is idempotent (keyed by what the
//!   delivery names, merged so that writing it again changes nothing), so a crash before the
//!   id is recorded leaves rows that the sender's redelivery writes again to the same end.
//! - `EVENTS#DEPLOYMENT#{shard}` / `{service}#{deploy_id}`: a later `finished_at` replaces an
//!   earlier one (R1 keeps the latest).
//! - `EVENTS#CHANGE#{shard}` / `{service}#{sha}`: an earlier `authored_at` replaces a later one
//!   (the spec keeps the earliest).
//! - `EVENTS#INCIDENT#{shard}` / `{incident id}`: merged field by field (a resolution arrives
//!   after the trigger), under a version check.
//! - `EVENTS#PENDING` / `{service}`: commits pushed since the service's last production
//!   deployment, in push order, and the latest shipped ones (so a replayed push does not make
//!   them pending again), under a version check.
//! - `METRICS#DORA` / `LATEST`, `ACTIVITY`, `ADOPTION`: the DORA job's latest results, each
//!   replaced only by a result computed as of a later instant.
//!
//! Sixteen shards per table spread the writes of a large organisation over partitions; a
//! shard is a stable hash of the service (or incident id).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{ChangeRecord, DeploymentRecord, EventRecords, IncidentRecord};
use crate::error::Error;
use crate::ports::{Condition, Item, Key, SortKeyRange, StoreError, Table, TransactOp};

const SHARDS: u8 = 16;
const PENDING: &str = "EVENTS#PENDING";
const REPORT: &str = "METRICS#DORA";
/// Attempts at a read-modify-write before giving up with a conflict.
const ATTEMPTS: usize = 8;
const PAGE: usize = 500;

/// Whether a delivery was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    New,
    Duplicate,
}

/// A commit waiting for the production deployment that ships it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PendingCommit {
    sha: String,
    authored_at: DateTime<Utc>,
}

/// How many shipped shas a service's pending item remembers (about 45 KB of DynamoDB's
/// 400 KB item): far more than a sender redelivers after a crash.
const SHIPPED_KEPT: usize = 1_000;

/// A service's pending item: the commits waiting, and the latest shipped.
#[derive(Debug, Default)]
struct Pending {
    commits: Vec<PendingCommit>,
    shipped: Vec<String>,
}

/// One read-modify-write of the pending item: done, or its version (or the deployment
/// written with it) changed meanwhile.
enum Attempt {
    Done(Option<DeploymentRecord>),
    Conflict,
}

pub struct DeliveryStore {
    table: Arc<dyn Table>,
}

impl std::fmt::Debug for DeliveryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryStore").finish_non_exhaustive()
    }
}

fn shard(text: &str) -> u8 {
    Sha256::digest(text.as_bytes())[0] % SHARDS
}

fn attrs<T: Serialize>(value: &T) -> Result<Map<String, Value>, Error> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) | Err(_) => Err(Error::Storage(StoreError::Backend(
            "an event record did not serialize to an object".into(),
        ))),
    }
}

fn from_item<T: for<'de> Deserialize<'de>>(item: &Item, field: &str) -> Result<T, Error> {
    let value = item.attrs.get(field).cloned().unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|e| {
        Error::Storage(StoreError::Backend(format!(
            "stored {} {:?} is unreadable: {e}",
            field, item.key
        )))
    })
}

impl DeliveryStore {
    /// The table it reads (the scorecards read the resources' drift beside it).
    pub fn table(&self) -> &Arc<dyn Table> {
        &self.table
    }

    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    /// Records a delivery once. A second delivery of the same id is a [`Delivery::Duplicate`].
    pub async fn record_delivery(
        &self,
        source: &str,
        delivery_id: &str,
        raw: &Value,
        received_at: DateTime<Utc>,
    ) -> Result<Delivery, Error> {
        let item = Item::new(
            Key::new(format!("EVENTS#DELIVERY#{source}"), delivery_id),
            attrs(&json!({"raw": raw, "received_at": received_at}))?,
        );
        match self.table.put(item, Condition::Absent).await {
            Ok(()) => Ok(Delivery::New),
            Err(StoreError::ConditionFailed { .. }) => Ok(Delivery::Duplicate),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a delivery was recorded (its rows are all written: they are written first).
    pub async fn is_recorded(&self, source: &str, delivery_id: &str) -> Result<bool, Error> {
        let key = Key::new(format!("EVENTS#DELIVERY#{source}"), delivery_id);
        Ok(self.table.get(&key).await?.is_some())
    }

    /// Forgets a delivery whose processing failed, so the sender's retry is processed.
    pub async fn forget_delivery(&self, source: &str, delivery_id: &str) -> Result<(), Error> {
        let key = Key::new(format!("EVENTS#DELIVERY#{source}"), delivery_id);
        Ok(self.table.delete(&key, Condition::Always).await?)
    }

    /// The raw payload of a delivery, for replay.
    pub async fn delivery(&self, source: &str, delivery_id: &str) -> Result<Option<Value>, Error> {
        let key = Key::new(format!("EVENTS#DELIVERY#{source}"), delivery_id);
        Ok(self
            .table
            .get(&key)
            .await?
            .and_then(|item| item.attrs.get("raw").cloned()))
    }

    fn deployment_item(deployment: &DeploymentRecord) -> Result<Item, Error> {
        let mut map = Map::new();
        map.insert("record".into(), Value::Object(attrs(deployment)?));
        map.insert(
            "finished_us".into(),
            json!(deployment.finished_at.timestamp_micros()),
        );
        Ok(Item::new(
            Key::new(
                format!("EVENTS#DEPLOYMENT#{:02}", shard(&deployment.service)),
                format!("{}#{}", deployment.service, deployment.deploy_id),
            ),
            map,
        ))
    }

    /// The latest finished row of a `(service, deploy_id)` wins.
    fn newer_deployment(deployment: &DeploymentRecord) -> Condition {
        Condition::AnyOf(vec![
            Condition::Absent,
            Condition::AttrLessThan {
                name: "finished_us".into(),
                value: deployment.finished_at.timestamp_micros(),
            },
        ])
    }

    /// Stores a deployment as given (its `changes` already known).
    pub async fn save_deployment(&self, deployment: &DeploymentRecord) -> Result<(), Error> {
        let item = Self::deployment_item(deployment)?;
        match self
            .table
            .put(item, Self::newer_deployment(deployment))
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a change; of two rows for one `(service, sha)` the earlier `authored_at` stays.
    pub async fn save_change(&self, change: &ChangeRecord) -> Result<(), Error> {
        let mut map = Map::new();
        map.insert("record".into(), Value::Object(attrs(change)?));
        // Negated so that "the stored one is later" is a less-than condition.
        let rank = -change.authored_at.timestamp_micros();
        map.insert("authored_rank".into(), json!(rank));
        let item = Item::new(
            Key::new(
                format!("EVENTS#CHANGE#{:02}", shard(&change.service)),
                format!("{}#{}", change.service, change.sha),
            ),
            map,
        );
        let later_stored = Condition::AnyOf(vec![
            Condition::Absent,
            Condition::AttrLessThan {
                name: "authored_rank".into(),
                value: rank,
            },
        ]);
        match self.table.put(item, later_stored).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Merges an incident into the stored one: fields the update has replace those it lacks;
    /// the earliest `created_at` stays.
    pub async fn save_incident(&self, update: &IncidentRecord) -> Result<(), Error> {
        let key = Key::new(
            format!("EVENTS#INCIDENT#{:02}", shard(&update.incident_id)),
            update.incident_id.clone(),
        );
        for _ in 0..ATTEMPTS {
            let current = self.table.get(&key).await?;
            let (merged, condition) = match &current {
                None => (update.clone(), Condition::Absent),
                Some(item) => {
                    let stored: IncidentRecord = from_item(item, "record")?;
                    let version = item
                        .attrs
                        .get("version")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    let merged = IncidentRecord {
                        incident_id: stored.incident_id,
                        service: update.service.clone().or(stored.service),
                        created_at: stored.created_at.min(update.created_at),
                        resolved_at: update.resolved_at.or(stored.resolved_at),
                        deploy_id: update.deploy_id.clone().or(stored.deploy_id),
                        commit_sha: update.commit_sha.clone().or(stored.commit_sha),
                    };
                    (
                        merged,
                        Condition::AttrEquals {
                            name: "version".into(),
                            value: json!(version),
                        },
                    )
                }
            };
            let version = current
                .as_ref()
                .and_then(|i| i.attrs.get("version").and_then(Value::as_i64))
                .unwrap_or(0);
            let mut map = Map::new();
            map.insert("record".into(), Value::Object(attrs(&merged)?));
            map.insert("version".into(), json!(version + 1));
            match self.table.put(Item::new(key.clone(), map), condition).await {
                Ok(()) => return Ok(()),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict(format!(
            "incident {} kept changing while it was merged",
            update.incident_id
        )))
    }

    /// Records pushed commits: each is a change, and waits in the service's pending list for
    /// the production deployment that ships it.
    pub async fn push_commits(&self, service: &str, commits: &[ChangeRecord]) -> Result<(), Error> {
        for commit in commits {
            self.save_change(commit).await?;
        }
        self.update_pending(service, |pending| {
            for commit in commits {
                // Shipped already: a redelivered push (or a commit pushed again) is not pending.
                if pending.shipped.contains(&commit.sha) {
                    continue;
                }
                if !pending.commits.iter().any(|p| p.sha == commit.sha) {
                    pending.commits.push(PendingCommit {
                        sha: commit.sha.clone(),
                        authored_at: commit.authored_at,
                    });
                }
            }
            None
        })
        .await
        .map(|_| ())
    }

    /// Stores a production deployment whose change set is the service's pending commits: those
    /// up to and including `commit_sha` when it is pending, else all of them. Commits pushed
    /// after it stay pending. Both writes happen in one transaction, so a crash loses nothing.
    ///
    /// Idempotent: when this deployment (or a later finish of it) is stored already, as after
    /// a crash before its delivery was recorded, its stored change set is the answer and the
    /// commits pushed since stay pending. A later finish of a stored deployment keeps the
    /// changes the earlier one shipped.
    pub async fn ship_pending(&self, deployment: DeploymentRecord) -> Result<Vec<String>, Error> {
        let service = deployment.service.clone();
        let head = deployment.commit_sha.clone();
        let stored_key = Self::deployment_item(&deployment)?.key;
        for _ in 0..ATTEMPTS {
            let stored = self.table.get(&stored_key).await?;
            let stored_us = stored
                .as_ref()
                .and_then(|i| i.attrs.get("finished_us").and_then(Value::as_i64));
            let earlier = match (&stored, stored_us) {
                (None, _) => None,
                (Some(item), Some(us)) if us < deployment.finished_at.timestamp_micros() => {
                    Some((from_item::<DeploymentRecord>(item, "record")?, us))
                }
                (Some(item), _) => {
                    let recorded: DeploymentRecord = from_item(item, "record")?;
                    return Ok(recorded.changes);
                }
            };
            // The deployment must still be as read when the transaction commits.
            let unchanged = match &earlier {
                None => Condition::Absent,
                Some((_, us)) => Condition::AttrEquals {
                    name: "finished_us".into(),
                    value: json!(us),
                },
            };
            let attempt = self
                .pending_attempt(
                    &service,
                    &mut |pending: &mut Pending| {
                        let upto = head
                            .as_ref()
                            .and_then(|h| pending.commits.iter().position(|p| &p.sha == h))
                            .map_or(pending.commits.len(), |i| i + 1);
                        let mut with_changes = deployment.clone();
                        if let Some((before, _)) = &earlier {
                            for sha in &before.changes {
                                if !with_changes.changes.contains(sha) {
                                    with_changes.changes.push(sha.clone());
                                }
                            }
                        }
                        for commit in pending.commits.drain(..upto) {
                            if !pending.shipped.contains(&commit.sha) {
                                pending.shipped.push(commit.sha.clone());
                            }
                            if !with_changes.changes.contains(&commit.sha) {
                                with_changes.changes.push(commit.sha);
                            }
                        }
                        let over = pending.shipped.len().saturating_sub(SHIPPED_KEPT);
                        pending.shipped.drain(..over);
                        Some(with_changes)
                    },
                    unchanged,
                )
                .await?;
            match attempt {
                Attempt::Done(Some(stored)) => return Ok(stored.changes),
                Attempt::Done(None) => return Ok(deployment.changes),
                Attempt::Conflict => continue,
            }
        }
        Err(Error::Conflict(format!(
            "the pending commits of {service} kept changing"
        )))
    }

    /// Read-modify-write of a service's pending list under a version check.
    async fn update_pending(
        &self,
        service: &str,
        mut change: impl FnMut(&mut Pending) -> Option<DeploymentRecord> + Send,
    ) -> Result<Option<DeploymentRecord>, Error> {
        for _ in 0..ATTEMPTS {
            match self
                .pending_attempt(service, &mut change, Condition::Always)
                .await?
            {
                Attempt::Done(deployment) => return Ok(deployment),
                Attempt::Conflict => continue,
            }
        }
        Err(Error::Conflict(format!(
            "the pending commits of {service} kept changing"
        )))
    }

    /// One read-modify-write of the pending item. When `change` returns a deployment, it is
    /// written in the same transaction, on `deployment_condition`.
    async fn pending_attempt(
        &self,
        service: &str,
        change: &mut (dyn FnMut(&mut Pending) -> Option<DeploymentRecord> + Send),
        deployment_condition: Condition,
    ) -> Result<Attempt, Error> {
        let key = Key::new(PENDING, service);
        let current = self.table.get(&key).await?;
        let (mut pending, version) = match &current {
            None => (Pending::default(), 0),
            Some(item) => (
                Pending {
                    commits: from_item(item, "commits")?,
                    shipped: match item.attrs.get("shipped") {
                        None => Vec::new(),
                        Some(_) => from_item(item, "shipped")?,
                    },
                },
                item.attrs
                    .get("version")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
            ),
        };
        let deployment = change(&mut pending);
        let condition = if current.is_none() {
            Condition::Absent
        } else {
            Condition::AttrEquals {
                name: "version".into(),
                value: json!(version),
            }
        };
        let mut map = Map::new();
        map.insert(
            "commits".into(),
            serde_json::to_value(&pending.commits).unwrap_or_default(),
        );
        map.insert("shipped".into(), json!(pending.shipped));
        map.insert("version".into(), json!(version + 1));
        let pending_item = Item::new(key, map);
        let result = match &deployment {
            None => self.table.put(pending_item, condition).await,
            Some(d) => {
                self.table
                    .transact(vec![
                        TransactOp::Put {
                            item: pending_item,
                            condition,
                        },
                        TransactOp::Put {
                            item: Self::deployment_item(d)?,
                            condition: deployment_condition,
                        },
                    ])
                    .await
            }
        };
        match result {
            Ok(()) => Ok(Attempt::Done(deployment)),
            Err(StoreError::ConditionFailed { .. } | StoreError::TransactionCancelled { .. }) => {
                Ok(Attempt::Conflict)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every stored deployment, change and incident (services come from the catalog).
    pub async fn load(&self) -> Result<EventRecords, Error> {
        let mut records = EventRecords::default();
        for shard in 0..SHARDS {
            for item in self.all(&format!("EVENTS#DEPLOYMENT#{shard:02}")).await? {
                records.deployments.push(from_item(&item, "record")?);
            }
            for item in self.all(&format!("EVENTS#CHANGE#{shard:02}")).await? {
                records.changes.push(from_item(&item, "record")?);
            }
            for item in self.all(&format!("EVENTS#INCIDENT#{shard:02}")).await? {
                records.incidents.push(from_item(&item, "record")?);
            }
        }
        Ok(records)
    }

    async fn all(&self, pk: &str) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .table
                .query(pk, &SortKeyRange::All, after.as_deref(), PAGE)
                .await?;
            items.extend(page.items);
            match page.last_sk {
                Some(last) => after = Some(last),
                None => return Ok(items),
            }
        }
    }

    /// Keeps a DORA job output under `sk` unless a result computed as of a later instant is
    /// already there. Two runs can overlap (a schedule and a manual invoke, or the local
    /// platform's start-up run and a request): the one that finishes last must not replace a
    /// newer result with an older one. `false` when a newer result was kept.
    async fn save_result(
        &self,
        sk: &str,
        field: &str,
        value: Value,
        computed_at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let as_of = computed_at.timestamp_micros();
        let mut map = attrs(&json!({field: value, "computed_at": computed_at}))?;
        map.insert("as_of_us".into(), json!(as_of));
        let item = Item::new(Key::new(REPORT, sk), map);
        let not_newer = Condition::AnyOf(vec![
            Condition::Absent,
            Condition::AttrLessThan {
                name: "as_of_us".into(),
                // Equal instants replace: a rerun as of the same instant has the newer data.
                value: as_of.saturating_add(1),
            },
        ]);
        match self.table.put(item.clone(), not_newer).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed { current, .. }) => {
                let Some(stored) = current.filter(|c| !c.attrs.contains_key("as_of_us")) else {
                    return Ok(false);
                };
                // Written before results carried `as_of_us`: replace it unless it changed since.
                let same = Condition::AttrEquals {
                    name: "computed_at".into(),
                    value: stored
                        .attrs
                        .get("computed_at")
                        .cloned()
                        .unwrap_or(Value::Null),
                };
                match self.table.put(item, same).await {
                    Ok(()) => Ok(true),
                    Err(StoreError::ConditionFailed { .. }) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Keeps the DORA report (the spec's JSON) computed as of `computed_at`, unless a report
    /// as of a later instant is stored; `false` then.
    pub async fn save_report(
        &self,
        report: &Value,
        computed_at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        self.save_result("LATEST", "report", report.clone(), computed_at)
            .await
    }

    /// Each service's recent production activity, stored by the DORA job beside its report.
    pub async fn save_activity(
        &self,
        activity: &std::collections::BTreeMap<String, super::ServiceActivity>,
        computed_at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        self.save_result("ACTIVITY", "activity", json!(activity), computed_at)
            .await
    }

    /// The latest activity (empty before the DORA job's first run).
    pub async fn latest_activity(
        &self,
    ) -> Result<std::collections::BTreeMap<String, super::ServiceActivity>, Error> {
        let Some(item) = self.table.get(&Key::new(REPORT, "ACTIVITY")).await? else {
            return Ok(Default::default());
        };
        Ok(item
            .attrs
            .get("activity")
            .cloned()
            .and_then(|a| serde_json::from_value(a).ok())
            .unwrap_or_default())
    }

    /// The platform adoption figures, stored by the DORA job beside its report.
    pub async fn save_adoption(
        &self,
        adoption: &Value,
        computed_at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        self.save_result("ADOPTION", "adoption", adoption.clone(), computed_at)
            .await
    }

    /// The latest adoption figures and when they were computed.
    pub async fn latest_adoption(&self) -> Result<Option<(Value, DateTime<Utc>)>, Error> {
        let Some(item) = self.table.get(&Key::new(REPORT, "ADOPTION")).await? else {
            return Ok(None);
        };
        let computed_at = from_item(&item, "computed_at")?;
        Ok(item
            .attrs
            .get("adoption")
            .cloned()
            .map(|r| (r, computed_at)))
    }

    /// The latest report and when it was computed.
    pub async fn latest_report(&self) -> Result<Option<(Value, DateTime<Utc>)>, Error> {
        let Some(item) = self.table.get(&Key::new(REPORT, "LATEST")).await? else {
            return Ok(None);
        };
        let computed_at = from_item(&item, "computed_at")?;
        Ok(item.attrs.get("report").cloned().map(|r| (r, computed_at)))
    }
}
