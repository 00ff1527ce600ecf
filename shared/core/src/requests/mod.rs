//! Self-service requests and their one lifecycle:
//! SUBMITTED → (WAITING_FOR_APPROVAL) → QUEUED → PROVISIONING → READY | FAILED | REJECTED |
//! CANCELLED; READY → DEPROVISIONING → DELETED | DELETE_FAILED. Every change is a conditional
//! write on the request's version, and leaves an event in its log. The same transaction moves
//! the request's entries in the listing index ([`Selector`]), so a page of a listing reads
//! about `limit` items.

mod index;
mod steps;

use crate::ErrorCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::ports::{Clock, Condition, Item, Key, SortKeyRange, StoreError, Table, TransactOp};

pub use index::{Backfill, IndexedPage, Narrow, Selector, owner_key, requester_key};
pub use steps::StepStart;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestStatus {
    Submitted,
    WaitingForApproval,
    Queued,
    Provisioning,
    Ready,
    Failed,
    Rejected,
    Cancelled,
    Deprovisioning,
    Deleted,
    DeleteFailed,
}

impl RequestStatus {
    /// The lifecycle's edges.
    pub fn can_become(self, next: RequestStatus) -> bool {
        use RequestStatus::*;
        matches!(
            (self, next),
            (
                Submitted,
                WaitingForApproval | Queued | Rejected | Cancelled
            ) | (WaitingForApproval, Queued | Rejected | Cancelled)
                | (Queued, Provisioning | Cancelled | Failed)
                | (Provisioning, Ready | Failed)
                | (Ready, Deprovisioning)
                | (Deprovisioning, Deleted | DeleteFailed)
                | (DeleteFailed, Deprovisioning)
        )
    }

    /// Whether the resource's name is free again once a request reaches this status.
    pub fn releases_name(self) -> bool {
        use RequestStatus::*;
        matches!(self, Failed | Rejected | Cancelled | Deleted)
    }

    pub fn is_finished(self) -> bool {
        use RequestStatus::*;
        matches!(
            self,
            Ready | Failed | Rejected | Cancelled | Deleted | DeleteFailed
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Undone,
}

/// One provisioning step of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepState {
    pub id: String,
    pub status: StepStatus,
    pub attempts: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub outputs: Value,
    pub error: Option<String>,
}

/// One entry of a request's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestEvent {
    pub at: DateTime<Utc>,
    /// A stable event name: `submitted`, `status_changed`, `step_started`, ...
    pub event: String,
    pub message: String,
    /// For `status_changed`: the status left and the status reached, as data, so that
    /// metrics ("when did it become READY") read them rather than the message's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<RequestStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<RequestStatus>,
}

/// Why a request failed: a stable code and a message for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

/// An approver's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub by: String,
    pub at: DateTime<Utc>,
    pub approved: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningRequest {
    pub id: String,
    pub template: String,
    pub resource_type: String,
    pub name: String,
    pub owner: String,
    pub environment: String,
    pub parameters: Value,
    pub requester: String,
    pub status: RequestStatus,
    pub steps: Vec<StepState>,
    pub events: Vec<RequestEvent>,
    /// The guardrails asked for an approval (production, by default).
    #[serde(default)]
    pub needs_approval: bool,
    #[serde(default)]
    pub decision: Option<Decision>,
    /// The steps' outputs merged, once READY: connection info and secret references, never
    /// a secret itself.
    #[serde(default)]
    pub outputs: Value,
    #[serde(default)]
    pub failure: Option<Failure>,
    /// Bumped by each deprovisioning attempt, so each attempt is its own task.
    #[serde(default)]
    pub deprovision_attempt: u32,
    /// How the reconciliation loop keeps the resource, from the template's `spec.reconcile`
    /// (requests made before it have the defaults).
    #[serde(default)]
    pub reconcile: crate::resources::ReconcileSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every write; writes are conditional on it.
    pub version: u64,
}

/// A request's id as the API hands it out: `req-` and 24 to 32 lower-case hex digits (a
/// random UUID, or the digest of a caller's `Idempotency-Key`). Parsed at the edge, so that
/// anything else is a 404 without a read of the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// A fresh id.
    pub fn random() -> Self {
        Self(format!("req-{}", uuid::Uuid::new_v4().simple()))
    }

    /// The id a caller's scoped idempotency key stands for (the first 24 hex digits of its
    /// SHA-256), so a retried POST names the same request.
    pub fn for_digest(digest_hex: &str) -> Self {
        Self(format!("req-{}", &digest_hex[..24.min(digest_hex.len())]))
    }

    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix("req-")?;
        ((24..=32).contains(&hex.len())
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name a request gives its resource, as drivers can carry it into every provider's
/// naming (a PostgreSQL identifier, an SQS queue, a DynamoDB table, a repository): 1-63 ASCII
/// letters, digits, `-` and `_`, starting with a letter. This is the floor that holds with any
/// guardrails; the default guardrails' naming rule is stricter (3-40, lower-case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceName(String);

impl ResourceName {
    pub const MAX_LEN: usize = 63;

    /// 422 `invalid_name` for anything else.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let ok = (1..=Self::MAX_LEN).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_alphabetic())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Error::Invalid {
                code: ErrorCode::InvalidName,
                message: format!(
                    "name {:?} must be 1-{} ASCII letters, digits, '-' and '_', starting with a letter",
                    text.chars().take(80).collect::<String>(),
                    Self::MAX_LEN
                ),
                violations: Vec::new(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ResourceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a new request needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRequest {
    pub id: String,
    pub template: String,
    pub resource_type: String,
    pub name: String,
    pub owner: String,
    pub environment: String,
    pub parameters: Value,
    pub requester: String,
    pub steps: Vec<String>,
    pub needs_approval: bool,
    pub reconcile: crate::resources::ReconcileSettings,
}

const REQUEST_PARTITION: &str = "REQUEST";
const CLAIM_PARTITION: &str = "RESOURCE";
/// One item per live request, in a partition per owning team (for quotas).
const LIVE_PARTITION: &str = "LIVE";

fn live_key(owner: &str, request_id: &str) -> Key {
    Key::new(format!("{LIVE_PARTITION}#{owner}"), request_id)
}

/// The name a request holds while it is alive: two live requests never share a resource's
/// external name (the drivers derive names from it). A service repository is one per name
/// whatever the environment.
fn claim_key(resource_type: &str, environment: &str, name: &str) -> Key {
    let environment = if resource_type == "service" {
        "*"
    } else {
        environment
    };
    Key::new(
        CLAIM_PARTITION,
        format!("{resource_type}/{environment}/{name}"),
    )
}

/// What a live request holds, written with it: its name's claim (second in the transaction, so
/// a refusal at index 1 is the name) and its item in the owner's live partition.
fn holding_ops(request: &ProvisioningRequest) -> [TransactOp; 2] {
    let mut claim_attrs = serde_json::Map::new();
    claim_attrs.insert("requestId".into(), Value::String(request.id.clone()));
    [
        TransactOp::Put {
            item: Item::new(
                claim_key(&request.resource_type, &request.environment, &request.name),
                claim_attrs,
            ),
            condition: Condition::Absent,
        },
        TransactOp::Put {
            item: Item::new(
                live_key(&request.owner, &request.id),
                serde_json::Map::new(),
            ),
            condition: Condition::Absent,
        },
    ]
}

pub struct RequestRepository {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    index: Arc<index::IndexState>,
}

impl std::fmt::Debug for RequestRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestRepository").finish_non_exhaustive()
    }
}

fn encode(request: &ProvisioningRequest) -> Result<Item, Error> {
    let Value::Object(mut attrs) = serde_json::to_value(request)
        .map_err(|e| Error::Internal(format!("encoding request {}: {e}", request.id)))?
    else {
        return Err(Error::Internal(format!(
            "encoding request {}: a request must serialise to an object",
            request.id
        )));
    };
    // Every write through here writes the index in the same transaction.
    attrs.insert(
        index::INDEXED_ATTR.into(),
        Value::from(index::INDEX_VERSION),
    );
    Ok(Item::new(Key::new(REQUEST_PARTITION, &request.id), attrs))
}

/// A stored request that does not read back is the server's fault (a 500, logged with its
/// key), never the caller's.
fn decode(item: Item) -> Result<ProvisioningRequest, Error> {
    let key = format!("{}/{}", item.key.pk, item.key.sk);
    serde_json::from_value(Value::Object(item.attrs)).map_err(|e| {
        tracing::error!(%key, error = %e, "a stored request does not decode");
        Error::Internal(format!("the stored request {key} is corrupt: {e}"))
    })
}

impl RequestRepository {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Self {
        Self {
            table,
            clock,
            index: Arc::default(),
        }
    }

    /// Stores a new request as SUBMITTED, with its index entries, in one transaction. A second
    /// create with the same id is refused.
    pub async fn create(&self, new: NewRequest) -> Result<ProvisioningRequest, Error> {
        let now = self.clock.now();
        let request = ProvisioningRequest {
            id: new.id,
            template: new.template,
            resource_type: new.resource_type,
            name: new.name,
            owner: new.owner,
            environment: new.environment,
            parameters: new.parameters,
            requester: new.requester.clone(),
            status: RequestStatus::Submitted,
            needs_approval: new.needs_approval,
            decision: None,
            outputs: Value::Null,
            failure: None,
            deprovision_attempt: 0,
            reconcile: new.reconcile,
            steps: new
                .steps
                .into_iter()
                .map(|id| StepState {
                    id,
                    status: StepStatus::Pending,
                    attempts: 0,
                    started_at: None,
                    finished_at: None,
                    outputs: Value::Null,
                    error: None,
                })
                .collect(),
            events: vec![RequestEvent {
                at: now,
                event: "submitted".into(),
                message: format!("submitted by {}", new.requester),
                from: None,
                to: None,
            }],
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let mut ops = vec![TransactOp::Put {
            item: encode(&request)?,
            condition: Condition::Absent,
        }];
        ops.extend(holding_ops(&request));
        match self.transact_indexed(ops, None, &request).await {
            Ok(()) => Ok(request),
            Err(StoreError::TransactionCancelled { failed: Some(1) }) => {
                let holder = self.holder_of_claim(&request).await?;
                Err(Error::Invalid {
                    code: ErrorCode::NameTaken,
                    message: format!(
                        "a {} named {} exists already in {} (request {holder}); pick another name or deprovision it",
                        request.resource_type, request.name, request.environment
                    ),
                    violations: Vec::new(),
                })
            }
            Err(StoreError::TransactionCancelled { .. }) => Err(Error::Conflict(format!(
                "request {} exists already",
                request.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// How many live requests (not failed, rejected, cancelled or deleted) a team owns: a
    /// query of the team's small `LIVE#` partition, not a scan of every request.
    pub async fn live_count(&self, owner: &str) -> Result<usize, Error> {
        let partition = format!("{LIVE_PARTITION}#{owner}");
        let mut count = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .table
                .query(&partition, &SortKeyRange::All, after.as_deref(), 1000)
                .await?;
            count += page.items.len();
            match page.last_sk {
                Some(sk) => after = Some(sk),
                None => return Ok(count),
            }
        }
    }

    pub async fn get(&self, id: &str) -> Result<ProvisioningRequest, Error> {
        match self.table.get(&Key::new(REQUEST_PARTITION, id)).await? {
            Some(item) => decode(item),
            None => Err(Error::NotFound(format!("request {id}"))),
        }
    }

    /// Every request, oldest id first, keeping those `keep` accepts: a read of every request
    /// (use [`page`](Self::page) to list).
    pub async fn list(
        &self,
        keep: impl Fn(&ProvisioningRequest) -> bool,
    ) -> Result<Vec<ProvisioningRequest>, Error> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .table
                .query(REQUEST_PARTITION, &SortKeyRange::All, after.as_deref(), 500)
                .await?;
            for item in page.items {
                let request = decode(item)?;
                if keep(&request) {
                    out.push(request);
                }
            }
            match page.last_sk {
                Some(sk) => after = Some(sk),
                None => return Ok(out),
            }
        }
    }

    /// Applies `change` to the current request and writes it only if nobody wrote in between
    /// (conditional on the version), its index entries in the same transaction (a request
    /// stored before the index gets them now); a lost race is a `Conflict` the caller may
    /// retry.
    pub async fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut ProvisioningRequest, DateTime<Utc>) -> Result<(), Error>,
    ) -> Result<ProvisioningRequest, Error> {
        let Some(item) = self.table.get(&Key::new(REQUEST_PARTITION, id)).await? else {
            return Err(Error::NotFound(format!("request {id}")));
        };
        let indexed = index::is_indexed(&item);
        let mut request = decode(item)?;
        let previous = request.clone();
        let before = request.status;
        let expected = request.version;
        let now = self.clock.now();
        change(&mut request, now)?;
        request.version = expected + 1;
        request.updated_at = now;
        let condition = Condition::AttrEquals {
            name: "version".into(),
            value: Value::from(expected),
        };
        let mut ops = vec![TransactOp::Put {
            item: encode(&request)?,
            condition,
        }];
        if request.status.releases_name() && !before.releases_name() {
            ops.push(TransactOp::Delete {
                key: claim_key(&request.resource_type, &request.environment, &request.name),
                condition: Condition::Always,
            });
            ops.push(TransactOp::Delete {
                key: live_key(&request.owner, &request.id),
                condition: Condition::Always,
            });
        }
        match self
            .transact_indexed(ops, indexed.then_some(&previous), &request)
            .await
        {
            Ok(()) => Ok(request),
            Err(StoreError::TransactionCancelled { .. }) => Err(Error::Conflict(format!(
                "request {id} changed meanwhile; read it again"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes a finished request (failed, cancelled, deleted) READY again, for what it left on
    /// its provider: an admin adopting a leak. Its name is claimed again in the same
    /// transaction, so a name another live request holds now is refused (`name_taken`) and
    /// nothing changes.
    pub async fn adopt(&self, id: &str, why: &str) -> Result<ProvisioningRequest, Error> {
        let Some(item) = self.table.get(&Key::new(REQUEST_PARTITION, id)).await? else {
            return Err(Error::NotFound(format!("request {id}")));
        };
        let indexed = index::is_indexed(&item);
        let mut request = decode(item)?;
        let previous = request.clone();
        if !request.status.releases_name() {
            return Err(Error::Invalid {
                code: ErrorCode::InvalidTransition,
                message: format!(
                    "request {id} is {:?}: only a failed, cancelled or deleted request is adopted",
                    request.status
                ),
                violations: Vec::new(),
            });
        }
        let now = self.clock.now();
        request.events.push(RequestEvent {
            at: now,
            event: "status_changed".into(),
            message: format!("{:?} → Ready: {why}", request.status),
            from: Some(request.status),
            to: Some(RequestStatus::Ready),
        });
        request.status = RequestStatus::Ready;
        request.failure = None;
        let expected = request.version;
        request.version = expected + 1;
        request.updated_at = now;
        let mut ops = vec![TransactOp::Put {
            item: encode(&request)?,
            condition: Condition::AttrEquals {
                name: "version".into(),
                value: Value::from(expected),
            },
        }];
        ops.extend(holding_ops(&request));
        match self
            .transact_indexed(ops, indexed.then_some(&previous), &request)
            .await
        {
            Ok(()) => Ok(request),
            Err(StoreError::TransactionCancelled { failed: Some(1) }) => {
                let holder = self.holder_of_claim(&request).await?;
                Err(Error::Invalid {
                    code: ErrorCode::NameTaken,
                    message: format!(
                        "request {holder} holds the name {} in {} now; deprovision it before adopting this",
                        request.name, request.environment
                    ),
                    violations: Vec::new(),
                })
            }
            Err(StoreError::TransactionCancelled { .. }) => Err(Error::Conflict(format!(
                "request {id} changed meanwhile; read it again"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// [`update`](Self::update), retried a few times when another writer got in between.
    pub async fn update_retrying(
        &self,
        id: &str,
        change: impl Fn(&mut ProvisioningRequest, DateTime<Utc>) -> Result<(), Error>,
    ) -> Result<ProvisioningRequest, Error> {
        let mut attempt = 0;
        loop {
            match self.update(id, &change).await {
                Err(Error::Conflict(_)) if attempt < 20 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5 * attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// The time by this repository's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves a request along its lifecycle, refusing edges the lifecycle does not have.
    pub async fn transition(
        &self,
        id: &str,
        next: RequestStatus,
        why: &str,
    ) -> Result<ProvisioningRequest, Error> {
        self.update(id, |r, now| r.advance(next, why, now)).await
    }
}

impl ProvisioningRequest {
    /// What the drivers are given for this request's resource.
    pub fn spec(&self) -> crate::provisioning::ResourceSpec {
        crate::provisioning::ResourceSpec {
            request_id: self.id.clone(),
            name: self.name.clone(),
            owner: self.owner.clone(),
            environment: self.environment.clone(),
            parameters: self.parameters.clone(),
        }
    }

    /// Moves along the lifecycle (refusing edges it lacks) and logs the change.
    pub fn advance(
        &mut self,
        next: RequestStatus,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if !self.status.can_become(next) {
            return Err(Error::Invalid {
                code: ErrorCode::InvalidTransition,
                message: format!(
                    "request {} is {:?} and cannot become {:?}",
                    self.id, self.status, next
                ),
                violations: Vec::new(),
            });
        }
        self.events.push(RequestEvent {
            at: now,
            event: "status_changed".into(),
            message: format!("{:?} → {:?}: {why}", self.status, next),
            from: Some(self.status),
            to: Some(next),
        });
        self.status = next;
        Ok(())
    }

    /// When the request last became `status` (from its event log's `to`), if it did. Events
    /// stored before `to` existed are read from their message, the one place that still does.
    pub fn reached_at(&self, status: RequestStatus) -> Option<DateTime<Utc>> {
        let legacy = format!("→ {status:?}:");
        self.events
            .iter()
            .rev()
            .find(|e| {
                e.event == "status_changed"
                    && match e.to {
                        Some(to) => to == status,
                        None => e.message.contains(&legacy),
                    }
            })
            .map(|e| e.at)
    }

    pub fn log(&mut self, at: DateTime<Utc>, event: &str, message: impl Into<String>) {
        self.events.push(RequestEvent {
            at,
            event: event.to_owned(),
            message: message.into(),
            from: None,
            to: None,
        });
    }

    pub fn step_mut(&mut self, id: &str) -> Option<&mut StepState> {
        self.steps.iter_mut().find(|s| s.id == id)
    }
}

impl RequestRepository {
    /// Who holds `request`'s name now, for a refusal's message.
    async fn holder_of_claim(&self, request: &ProvisioningRequest) -> Result<String, Error> {
        Ok(self
            .name_holder(&request.resource_type, &request.environment, &request.name)
            .await?
            .unwrap_or_default())
    }

    /// The request that holds a resource's name now (its claim's `requestId`), if any. A
    /// request finished with its name released (failed, cancelled, deleted) no longer holds
    /// it, and whatever carries the name since is someone else's: the worker undoes and
    /// deletes only for the holder.
    pub async fn name_holder(
        &self,
        resource_type: &str,
        environment: &str,
        name: &str,
    ) -> Result<Option<String>, Error> {
        let claim = claim_key(resource_type, environment, name);
        Ok(self
            .table
            .get(&claim)
            .await?
            .and_then(|i| i.str_attr("requestId").map(str::to_owned)))
    }
}
