//! Where resource states live, and the two indexes written with them in one transaction:
//!
//! - the listing: each resource is in four partitions, `RESBY#ALL`, `RESBY#OWNER#<o>`,
//!   `RESBY#STATE#<s>` and `RESBY#OWNER#<o>#STATE#<s>` (`s` is synced, drifted or unknown),
//!   under the sort key `<type>#<environment>#<id>`, so a filter on owner and `synced` picks
//!   the partition and one on type (and environment) a prefix: a page reads about `limit`
//!   entries and then each state by id;
//! - the schedule: `RESDUE#<type>`/`<due ms>#<id>`, which the reconciler reads in time order
//!   per provider.
//!
//! A state change that keeps the listing bucket rewrites no listing entry; every observation
//! moves the resource's schedule entry (two ops).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{ResourceState, SyncState};
use crate::error::Error;
use crate::ports::{Condition, Item, Key, SortKeyRange, StoreError, Table, TransactOp};
use crate::requests::owner_key;

const STATE_PARTITION: &str = "RESSTATE";
const LISTING_PREFIX: &str = "RESBY";
const SCHEDULE_PREFIX: &str = "RESDUE";

/// What a listing asks for; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceFilter {
    /// The owner, as the index spells it ([`owner_key`]).
    pub owner: Option<String>,
    pub resource_type: Option<String>,
    pub environment: Option<String>,
    pub state: Option<SyncState>,
}

/// One page of a listing; `next` is the sort key to continue after.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcePage {
    pub items: Vec<ResourceState>,
    pub next: Option<String>,
}

pub struct ResourceRepository {
    table: Arc<dyn Table>,
}

impl std::fmt::Debug for ResourceRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceRepository").finish_non_exhaustive()
    }
}

fn state_key(id: &str) -> Key {
    Key::new(STATE_PARTITION, id)
}

fn listing_sort_key(s: &ResourceState) -> String {
    format!("{}#{}#{}", s.resource_type, s.environment, s.id)
}

fn listing_partitions(s: &ResourceState, state: SyncState) -> [String; 4] {
    let owner = owner_key(&s.owner);
    let state = state.as_str();
    [
        format!("{LISTING_PREFIX}#ALL"),
        format!("{LISTING_PREFIX}#OWNER#{owner}"),
        format!("{LISTING_PREFIX}#STATE#{state}"),
        format!("{LISTING_PREFIX}#OWNER#{owner}#STATE#{state}"),
    ]
}

/// The schedule partition of a provider.
pub fn schedule_partition(resource_type: &str) -> String {
    format!("{SCHEDULE_PREFIX}#{resource_type}")
}

/// A schedule entry's sort key: the due time, zero-padded so it sorts as a number.
pub fn schedule_sort_key(due_at_ms: i64, id: &str) -> String {
    format!("{:015}#{id}", due_at_ms.max(0))
}

fn entry(pk: String, sk: String, id: &str) -> Item {
    let mut attrs = Map::new();
    attrs.insert("id".into(), Value::String(id.to_owned()));
    Item::new(Key::new(pk, sk), attrs)
}

fn encode(state: &ResourceState) -> Result<Item, Error> {
    match serde_json::to_value(state) {
        Ok(Value::Object(attrs)) => Ok(Item::new(state_key(&state.id), attrs)),
        Ok(_) => Err(Error::Internal("a resource state must be an object".into())),
        Err(e) => Err(Error::Internal(format!(
            "encoding resource {}: {e}",
            state.id
        ))),
    }
}

fn decode(item: Item) -> Result<ResourceState, Error> {
    let key = format!("{}/{}", item.key.pk, item.key.sk);
    serde_json::from_value(Value::Object(item.attrs)).map_err(|e| {
        tracing::error!(%key, error = %e, "a stored resource state does not decode");
        Error::Internal(format!("the stored resource {key} is corrupt: {e}"))
    })
}

impl ResourceRepository {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    pub async fn get(&self, id: &str) -> Result<Option<ResourceState>, Error> {
        self.table
            .get(&state_key(id))
            .await?
            .map(decode)
            .transpose()
    }

    /// Starts tracking a resource, unless it is tracked already (a redelivered READY
    /// notification): the state, its listing entries and its schedule entry, all or none.
    /// Returns whether it was new.
    pub async fn track(&self, state: &ResourceState) -> Result<bool, Error> {
        let mut ops = vec![TransactOp::Put {
            item: encode(state)?,
            condition: Condition::Absent,
        }];
        for pk in listing_partitions(state, state.sync_state()) {
            ops.push(TransactOp::Put {
                item: entry(pk, listing_sort_key(state), &state.id),
                condition: Condition::Always,
            });
        }
        ops.push(TransactOp::Put {
            item: entry(
                schedule_partition(&state.resource_type),
                schedule_sort_key(state.due_at_ms, &state.id),
                &state.id,
            ),
            condition: Condition::Always,
        });
        match self.table.transact(ops).await {
            Ok(()) => Ok(true),
            Err(StoreError::TransactionCancelled { failed: Some(0) }) => Ok(false),
            Err(StoreError::TransactionCancelled { .. }) => {
                // Some backends do not say which op failed: look.
                if self.get(&state.id).await?.is_some() {
                    Ok(false)
                } else {
                    Err(Error::Conflict(format!(
                        "tracking resource {} raced another write; retry",
                        state.id
                    )))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `next` over `previous` if nobody wrote in between (conditional on the
    /// version), moving its listing and schedule entries in the same transaction. A lost race
    /// is a `Conflict`.
    pub async fn save(
        &self,
        previous: &ResourceState,
        next: &mut ResourceState,
    ) -> Result<(), Error> {
        next.version = previous.version + 1;
        let mut ops = vec![TransactOp::Put {
            item: encode(next)?,
            condition: Condition::AttrEquals {
                name: "version".into(),
                value: json!(previous.version),
            },
        }];
        let (before, after) = (previous.sync_state(), next.sync_state());
        if before != after || previous.owner != next.owner {
            for pk in listing_partitions(previous, before) {
                ops.push(TransactOp::Delete {
                    key: Key::new(pk, listing_sort_key(previous)),
                    condition: Condition::Always,
                });
            }
            for pk in listing_partitions(next, after) {
                ops.push(TransactOp::Put {
                    item: entry(pk, listing_sort_key(next), &next.id),
                    condition: Condition::Always,
                });
            }
        }
        if previous.due_at_ms != next.due_at_ms {
            ops.push(TransactOp::Delete {
                key: Key::new(
                    schedule_partition(&previous.resource_type),
                    schedule_sort_key(previous.due_at_ms, &previous.id),
                ),
                condition: Condition::Always,
            });
            ops.push(TransactOp::Put {
                item: entry(
                    schedule_partition(&next.resource_type),
                    schedule_sort_key(next.due_at_ms, &next.id),
                    &next.id,
                ),
                condition: Condition::Always,
            });
        }
        match self.table.transact(ops).await {
            Ok(()) => Ok(()),
            Err(StoreError::TransactionCancelled { .. }) => Err(Error::Conflict(format!(
                "resource {} changed meanwhile; read it again",
                next.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Stops tracking a resource that is gone (its request was deprovisioned).
    pub async fn forget(&self, state: &ResourceState) -> Result<(), Error> {
        let mut ops = vec![TransactOp::Delete {
            key: state_key(&state.id),
            condition: Condition::AttrEquals {
                name: "version".into(),
                value: json!(state.version),
            },
        }];
        for pk in listing_partitions(state, state.sync_state()) {
            ops.push(TransactOp::Delete {
                key: Key::new(pk, listing_sort_key(state)),
                condition: Condition::Always,
            });
        }
        ops.push(TransactOp::Delete {
            key: Key::new(
                schedule_partition(&state.resource_type),
                schedule_sort_key(state.due_at_ms, &state.id),
            ),
            condition: Condition::Always,
        });
        match self.table.transact(ops).await {
            Ok(()) => Ok(()),
            Err(StoreError::TransactionCancelled { .. }) => Err(Error::Conflict(format!(
                "resource {} changed meanwhile",
                state.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// One page of the resources `filter` selects, in type, environment and id order,
    /// continuing after `after` (a sort key from the last page). Reads about `limit`
    /// listing entries, then each state.
    pub async fn page(
        &self,
        filter: &ResourceFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ResourcePage, Error> {
        let pk = match (&filter.owner, filter.state) {
            (None, None) => format!("{LISTING_PREFIX}#ALL"),
            (Some(o), None) => format!("{LISTING_PREFIX}#OWNER#{o}"),
            (None, Some(s)) => format!("{LISTING_PREFIX}#STATE#{}", s.as_str()),
            (Some(o), Some(s)) => format!("{LISTING_PREFIX}#OWNER#{o}#STATE#{}", s.as_str()),
        };
        let range = match (&filter.resource_type, &filter.environment) {
            (Some(t), Some(e)) => SortKeyRange::BeginsWith(format!("{t}#{e}#")),
            (Some(t), None) => SortKeyRange::BeginsWith(format!("{t}#")),
            _ => SortKeyRange::All,
        };
        let mut items = Vec::new();
        let mut cursor = after.map(str::to_owned);
        // An environment without a type is not a prefix: skip the other environments' entries,
        // a page of entries at a time (each entry is ~100 bytes; types are few).
        loop {
            let page = self
                .table
                .query(
                    &pk,
                    &range,
                    cursor.as_deref(),
                    limit + 1 - items.len().min(limit),
                )
                .await?;
            let more = page.last_sk.is_some();
            for entry in page.items {
                let sk = entry.key.sk.clone();
                let environment_matches = filter
                    .environment
                    .as_ref()
                    .is_none_or(|e| sk.split('#').nth(1).is_some_and(|x| x == e));
                if !environment_matches {
                    cursor = Some(sk);
                    continue;
                }
                if items.len() == limit {
                    return Ok(ResourcePage {
                        items: self.states(&items).await?,
                        next: cursor,
                    });
                }
                items.push(sk.clone());
                cursor = Some(sk);
            }
            if !more {
                return Ok(ResourcePage {
                    items: self.states(&items).await?,
                    next: None,
                });
            }
        }
    }

    async fn states(&self, sort_keys: &[String]) -> Result<Vec<ResourceState>, Error> {
        let reads = sort_keys.iter().map(|sk| async move {
            let id = sk.rsplit('#').next().unwrap_or_default();
            self.get(id).await
        });
        let found = futures::future::try_join_all(reads).await?;
        // An entry whose state went meanwhile (forgotten between the two reads) is skipped.
        Ok(found.into_iter().flatten().collect())
    }

    /// How many resources each owner (as [`owner_key`] spells it) has had drifted since
    /// before `since`: reads the drifted listing only (drifted resources are few).
    pub async fn drifted_since_before(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<std::collections::HashMap<String, usize>, Error> {
        let mut out = std::collections::HashMap::new();
        let filter = ResourceFilter {
            state: Some(SyncState::Drifted),
            ..ResourceFilter::default()
        };
        let mut after: Option<String> = None;
        loop {
            let page = self.page(&filter, after.as_deref(), 500).await?;
            for s in &page.items {
                if s.drifted_since.is_some_and(|t| t < since) {
                    *out.entry(owner_key(&s.owner)).or_insert(0) += 1;
                }
            }
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// The ids due for observation on `resource_type`'s schedule, after `after` and up to
    /// `until_ms`, in due order, at most `limit`: `(sort key, id)`.
    pub async fn due(
        &self,
        resource_type: &str,
        after: Option<&str>,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, String)>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let range =
            SortKeyRange::Between(schedule_sort_key(0, ""), schedule_sort_key(until_ms, "~"));
        let page = self
            .table
            .query(&schedule_partition(resource_type), &range, after, limit)
            .await?;
        Ok(page
            .items
            .into_iter()
            .map(|i| {
                let id = i.str_attr("id").unwrap_or_default().to_owned();
                (i.key.sk, id)
            })
            .collect())
    }
}
