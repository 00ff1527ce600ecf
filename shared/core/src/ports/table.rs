//! A key-value table with a partition key and a sort key, typed conditions and small
//! transactions: the subset of DynamoDB that paved's repositories need.

use async_trait::async_trait;
use serde_json::{Map, Value};

/// The primary key of an item: partition key and sort key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// An item: its key plus a JSON object of attributes (`pk`/`sk` are not repeated inside).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    pub attrs: Map<String, Value>,
}

impl Item {
    pub fn new(key: Key, attrs: Map<String, Value>) -> Self {
        Self { key, attrs }
    }

    pub fn str_attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(Value::as_str)
    }
}

/// A condition on the item currently stored under the key. Each adapter translates it (to a
/// DynamoDB condition expression, or to a check inside a SQLite transaction); nobody parses
/// expressions.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// No condition.
    Always,
    /// No item exists under the key.
    Absent,
    /// An item exists under the key.
    Exists,
    /// An item exists and its attribute `name` equals `value`.
    AttrEquals { name: String, value: Value },
    /// An item exists and its numeric attribute `name` is below `value`.
    AttrLessThan { name: String, value: i64 },
    /// Any of the conditions holds.
    AnyOf(Vec<Condition>),
    /// Every one of the conditions holds.
    AllOf(Vec<Condition>),
}

impl Condition {
    /// No item exists, or its attribute `name` equals `value`.
    pub fn absent_or_equals(name: &str, value: Value) -> Self {
        Self::AnyOf(vec![
            Self::Absent,
            Self::AttrEquals {
                name: name.into(),
                value,
            },
        ])
    }

    /// Evaluates the condition against the current item; adapters that check in-process use it.
    pub fn holds(&self, current: Option<&Item>) -> bool {
        match (self, current) {
            (Self::Always, _) => true,
            (Self::Absent, c) => c.is_none(),
            (Self::Exists, c) => c.is_some(),
            (Self::AttrEquals { .. } | Self::AttrLessThan { .. }, None) => false,
            (Self::AttrEquals { name, value }, Some(item)) => item.attrs.get(name) == Some(value),
            (Self::AttrLessThan { name, value }, Some(item)) => item
                .attrs
                .get(name)
                .and_then(Value::as_i64)
                .is_some_and(|v| v < *value),
            (Self::AnyOf(all), c) => all.iter().any(|x| x.holds(c)),
            (Self::AllOf(all), c) => all.iter().all(|x| x.holds(c)),
        }
    }
}

/// A range over sort keys inside one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKeyRange {
    All,
    BeginsWith(String),
    /// Inclusive on both ends, as DynamoDB's `BETWEEN`.
    Between(String, String),
}

impl SortKeyRange {
    pub fn contains(&self, sk: &str) -> bool {
        match self {
            Self::All => true,
            Self::BeginsWith(prefix) => sk.starts_with(prefix.as_str()),
            Self::Between(lo, hi) => sk >= lo.as_str() && sk <= hi.as_str(),
        }
    }
}

/// One page of a query; `last_key` is set when more items may follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    pub last_sk: Option<String>,
}

/// One write in a transaction. Either every op happens or none does.
#[derive(Debug, Clone, PartialEq)]
pub enum TransactOp {
    Put { item: Item, condition: Condition },
    Delete { key: Key, condition: Condition },
    Check { key: Key, condition: Condition },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The condition did not hold. `current` is the item as it was (DynamoDB's
    /// `ReturnValuesOnConditionCheckFailure = ALL_OLD`).
    #[error("the condition on {key:?} did not hold")]
    ConditionFailed {
        key: Key,
        current: Option<Box<Item>>,
    },
    /// A transaction was cancelled; `failed` is the position of the op whose condition failed.
    #[error("the transaction was cancelled: op {failed:?} did not hold its condition")]
    TransactionCancelled { failed: Option<usize> },
    /// Too many ops for one transaction on this backend.
    #[error("a transaction of {requested} ops is over this backend's limit of {limit}")]
    TransactionTooLarge { requested: usize, limit: usize },
    /// The backend is throttling; worth retrying.
    #[error("the store is throttling: {0}")]
    Throttled(String),
    #[error("the store failed: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Table: Send + Sync {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError>;
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError>;
    /// Items of one partition in sort-key order, starting after `after` when given.
    async fn query(
        &self,
        pk: &str,
        range: &SortKeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError>;
    /// All ops or none. Backends have a limit on ops per transaction
    /// ([`Table::max_transaction_ops`]).
    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), StoreError>;
    /// The most ops one [`Table::transact`] call takes (DynamoDB: 100).
    fn max_transaction_ops(&self) -> usize;
}
