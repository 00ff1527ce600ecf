//! Idempotency records in the AWS Lambda Powertools layout, over the [`Table`] port: one
//! conditional put takes the lock, a completed record replays its stored result.
//!
//! Record attributes: `status` (`INPROGRESS` | `COMPLETED`), `expiration` (epoch seconds; also
//! the table's TTL, never relied on for correctness), `in_progress_expiration` (epoch
//! milliseconds, from the caller's deadline), `data` (the stored result) and `validation` (a
//! hash of the canonical payload, so the same key with another payload is refused) and `lease`
//! (who holds an in-progress lock: renew, release and complete name it, so a holder whose
//! lock lapsed and was taken over cannot extend, drop or overwrite its successor's).

use crate::ErrorCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::ports::{Clock, Condition, Item, Key, StoreError, Table, TransactOp};

pub const IDEMPOTENCY_PARTITION: &str = "IDEMPOTENCY";
const IN_PROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";

/// Proof of holding one in-progress lock, handed out by [`IdempotencyStore::try_acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease(String);

impl Lease {
    fn new() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// The condition that this lease still holds the lock.
    fn holds(&self) -> Condition {
        Condition::AllOf(vec![
            Condition::AttrEquals {
                name: "status".into(),
                value: IN_PROGRESS.into(),
            },
            Condition::AttrEquals {
                name: "lease".into(),
                value: Value::String(self.0.clone()),
            },
        ])
    }
}

/// A client's `Idempotency-Key` (or a chat trigger's id): 1-255 visible ASCII characters,
/// spaces allowed inside, trimmed. Parsed at the edge: 400 `invalid_idempotency_key`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(text: &str) -> Result<Self, Error> {
        let key = text.trim();
        if key.is_empty()
            || key.len() > Self::MAX_LEN
            || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        {
            return Err(Error::bad_request(
                ErrorCode::InvalidIdempotencyKey,
                "Idempotency-Key must be 1-255 visible ASCII characters",
            ));
        }
        Ok(Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the caller should do with a payload.
#[derive(Debug, Clone, PartialEq)]
pub enum NextAction {
    /// The lock is ours: do the work, then [`IdempotencyStore::complete`] (or `release`)
    /// with this lease.
    Execute(Lease),
    /// The work was done before: here is its result.
    Replay(Value),
    /// Someone else holds the lock and has not finished or expired.
    InProgress,
}

/// JSON with object keys sorted and no insignificant whitespace, so equal payloads hash equal.
/// (serde_json's `Map` keeps keys sorted; this relies on that and says so.)
pub fn canonical_json(value: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

pub fn payload_hash(value: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(value).as_bytes()))
}

pub struct IdempotencyStore {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    /// Scopes keys: the function or operation name.
    scope: String,
    /// How long a completed record is kept.
    ttl: Duration,
}

impl std::fmt::Debug for IdempotencyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdempotencyStore").finish_non_exhaustive()
    }
}

impl IdempotencyStore {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>, scope: &str, ttl: Duration) -> Self {
        Self {
            table,
            clock,
            scope: scope.to_owned(),
            ttl,
        }
    }

    fn key(&self, idempotency_key: &str) -> Key {
        let digest = hex::encode(Sha256::digest(idempotency_key.as_bytes()));
        Key::new(IDEMPOTENCY_PARTITION, format!("{}#{digest}", self.scope))
    }

    /// Takes the lock for `idempotency_key` until `in_progress_for` from now, unless a record
    /// says the work is done (replay) or still running (in progress). The same key with a
    /// different payload is a `Conflict`-free refusal: `Invalid { code: "idempotency_key_reused" }`.
    pub async fn try_acquire(
        &self,
        idempotency_key: &str,
        payload: &Value,
        in_progress_for: Duration,
    ) -> Result<NextAction, Error> {
        self.try_acquire_with(idempotency_key, payload, in_progress_for, Vec::new())
            .await
    }

    /// [`try_acquire`](Self::try_acquire), writing `also` in the same transaction when the
    /// lock is taken (and not at all otherwise).
    pub async fn try_acquire_with(
        &self,
        idempotency_key: &str,
        payload: &Value,
        in_progress_for: Duration,
        also: Vec<TransactOp>,
    ) -> Result<NextAction, Error> {
        let now = self.clock.now();
        let (now_s, now_ms) = (now.timestamp(), now.timestamp_millis());
        let validation = payload_hash(payload);
        let mut attrs = Map::new();
        attrs.insert("status".into(), IN_PROGRESS.into());
        attrs.insert("expiration".into(), (now_s + secs(self.ttl)).into());
        attrs.insert(
            "in_progress_expiration".into(),
            (now_ms + millis(in_progress_for)).into(),
        );
        attrs.insert("validation".into(), Value::String(validation.clone()));
        let lease = Lease::new();
        attrs.insert("lease".into(), Value::String(lease.0.clone()));
        let key = self.key(idempotency_key);
        let item = Item::new(key.clone(), attrs);
        let lock = Condition::AnyOf(vec![
            Condition::Absent,
            Condition::AttrLessThan {
                name: "expiration".into(),
                value: now_s,
            },
            Condition::AllOf(vec![
                Condition::AttrEquals {
                    name: "status".into(),
                    value: IN_PROGRESS.into(),
                },
                Condition::AttrLessThan {
                    name: "in_progress_expiration".into(),
                    value: now_ms,
                },
            ]),
        ]);
        let current = if also.is_empty() {
            match self.table.put(item, lock).await {
                Ok(()) => return Ok(NextAction::Execute(lease)),
                Err(StoreError::ConditionFailed { current, .. }) => current.map(|c| *c),
                Err(e) => return Err(e.into()),
            }
        } else {
            let mut ops = vec![TransactOp::Put {
                item,
                condition: lock,
            }];
            ops.extend(also);
            match self.table.transact(ops).await {
                Ok(()) => return Ok(NextAction::Execute(lease)),
                Err(StoreError::TransactionCancelled { failed: Some(0) }) => {
                    self.table.get(&key).await?
                }
                Err(e) => return Err(e.into()),
            }
        };
        let Some(current) = current else {
            // The record vanished between the check and the answer: treat as in progress
            // and let the caller retry.
            return Ok(NextAction::InProgress);
        };
        if current.str_attr("validation") != Some(validation.as_str()) {
            return Err(Error::Invalid {
                code: ErrorCode::IdempotencyKeyReused,
                message: "this Idempotency-Key was used with a different request body".into(),
                violations: Vec::new(),
            });
        }
        match current.str_attr("status") {
            Some(COMPLETED) => Ok(NextAction::Replay(
                current.attrs.get("data").cloned().unwrap_or(Value::Null),
            )),
            _ => Ok(NextAction::InProgress),
        }
    }

    /// Stores the result and marks the record completed, if `lease` still holds the lock.
    pub async fn complete(
        &self,
        idempotency_key: &str,
        lease: &Lease,
        payload: &Value,
        result: &Value,
    ) -> Result<(), Error> {
        self.complete_with(idempotency_key, lease, payload, result, Vec::new())
            .await
    }

    /// [`complete`](Self::complete), writing `also` in the same transaction (and not at all
    /// if the lease was lost: `Conflict`, nothing written).
    pub async fn complete_with(
        &self,
        idempotency_key: &str,
        lease: &Lease,
        payload: &Value,
        result: &Value,
        also: Vec<TransactOp>,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let mut attrs = Map::new();
        attrs.insert("status".into(), COMPLETED.into());
        attrs.insert(
            "expiration".into(),
            (now.timestamp() + secs(self.ttl)).into(),
        );
        attrs.insert("validation".into(), Value::String(payload_hash(payload)));
        attrs.insert("data".into(), result.clone());
        let item = Item::new(self.key(idempotency_key), attrs);
        let mut ops = vec![TransactOp::Put {
            item,
            condition: lease.holds(),
        }];
        ops.extend(also);
        let written = if ops.len() == 1 {
            match ops.pop() {
                Some(TransactOp::Put { item, condition }) => self.table.put(item, condition).await,
                _ => Ok(()),
            }
        } else {
            self.table.transact(ops).await
        };
        match written {
            Ok(()) => Ok(()),
            Err(
                StoreError::ConditionFailed { .. }
                | StoreError::TransactionCancelled { failed: Some(0) },
            ) => Err(lost(idempotency_key)),
            Err(e) => Err(e.into()),
        }
    }

    /// Extends an in-progress lock (a lease renewed while the work is alive), so a crashed
    /// holder's lock lapses soon while a slow but healthy one keeps it. A lease that was
    /// lost (it lapsed and another attempt took the lock) is not renewed: `Conflict`.
    pub async fn renew(
        &self,
        idempotency_key: &str,
        lease: &Lease,
        payload: &Value,
        in_progress_for: Duration,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let mut attrs = Map::new();
        attrs.insert("status".into(), IN_PROGRESS.into());
        attrs.insert(
            "expiration".into(),
            (now.timestamp() + secs(self.ttl)).into(),
        );
        attrs.insert(
            "in_progress_expiration".into(),
            (now.timestamp_millis() + millis(in_progress_for)).into(),
        );
        attrs.insert("validation".into(), Value::String(payload_hash(payload)));
        attrs.insert("lease".into(), Value::String(lease.0.clone()));
        match self
            .table
            .put(Item::new(self.key(idempotency_key), attrs), lease.holds())
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { .. }) => Err(lost(idempotency_key)),
            Err(e) => Err(e.into()),
        }
    }

    /// Drops an in-progress lock after a failure, so that a retry executes again; only the
    /// lock `lease` holds (a successor's lock stays).
    pub async fn release(&self, idempotency_key: &str, lease: &Lease) -> Result<(), Error> {
        match self
            .table
            .delete(&self.key(idempotency_key), lease.holds())
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn lost(idempotency_key: &str) -> Error {
    Error::Conflict(format!(
        "the lock on {idempotency_key} lapsed and was taken over by another attempt; this attempt's result was not recorded"
    ))
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn idempotency_keys_are_bounded_visible_ascii() {
        assert_eq!(
            IdempotencyKey::parse("  trigger 1.2  ")
                .expect("ok")
                .as_str(),
            "trigger 1.2"
        );
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["", "   ", "tab\there", "caf\u{e9}", "new\nline"] {
            let e = IdempotencyKey::parse(bad).expect_err(bad);
            assert_eq!(e.code(), "invalid_idempotency_key", "{bad:?}");
        }
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }

    #[test]
    fn canonical_json_ignores_key_order() {
        let a = json!({"b": 1, "a": {"y": [1, {"d": 2, "c": 3}], "x": null}});
        let b: Value =
            serde_json::from_str(r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#).expect("json");
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(payload_hash(&a), payload_hash(&b));
        assert_ne!(payload_hash(&a), payload_hash(&json!({"b": 2})));
    }
}
