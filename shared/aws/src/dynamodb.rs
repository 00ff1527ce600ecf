//! The [`Table`] port on one DynamoDB table (single-table design): `pk` (S) is the partition
//! key, `sk` (S) the sort key, and an item's attributes are stored beside them, mapped with
//! serde_dynamo. Conditions become condition expressions with placeholders, never text from
//! input; a failed condition returns the current item (`ReturnValuesOnConditionCheckFailure`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};
use paved_core::ports::{Condition, Item, Key, Page, SortKeyRange, StoreError, Table, TransactOp};
use serde_json::{Map, Value};

use crate::errors::{code, store_error};

const PK: &str = "pk";
const SK: &str = "sk";

#[derive(Debug, Clone)]
pub struct DynamoTable {
    client: Client,
    table: String,
}

/// A condition expression with its placeholder names and values.
#[derive(Default)]
struct Expression {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

/// The placeholder maps, absent when empty (DynamoDB refuses empty maps).
type Placeholders = (
    Option<HashMap<String, String>>,
    Option<HashMap<String, AttributeValue>>,
);

impl Expression {
    fn into_parts(self) -> Placeholders {
        (
            (!self.names.is_empty()).then_some(self.names),
            (!self.values.is_empty()).then_some(self.values),
        )
    }

    fn name(&mut self, n: &str) -> String {
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), n.to_owned());
        placeholder
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), v);
        placeholder
    }

    /// `None` for `Condition::Always`.
    fn condition(&mut self, c: &Condition) -> Result<Option<String>, StoreError> {
        Ok(match c {
            Condition::Always => None,
            Condition::Absent => Some(format!("attribute_not_exists({})", self.name(PK))),
            Condition::Exists => Some(format!("attribute_exists({})", self.name(PK))),
            Condition::AttrEquals { name, value } => {
                let n = self.name(name);
                let v = self.value(to_attribute(value)?);
                Some(format!("{n} = {v}"))
            }
            Condition::AttrLessThan { name, value } => {
                let n = self.name(name);
                let v = self.value(AttributeValue::N(value.to_string()));
                Some(format!("{n} < {v}"))
            }
            Condition::AnyOf(all) | Condition::AllOf(all) => {
                let joiner = if matches!(c, Condition::AnyOf(_)) {
                    " OR "
                } else {
                    " AND "
                };
                let mut parts = Vec::new();
                for x in all {
                    match self.condition(x)? {
                        Some(p) => parts.push(format!("({p})")),
                        // Always inside AnyOf makes it always true; inside AllOf it is neutral.
                        None if matches!(c, Condition::AnyOf(_)) => return Ok(None),
                        None => {}
                    }
                }
                if parts.is_empty() {
                    None
                } else {
                    Some(parts.join(joiner))
                }
            }
        })
    }
}

fn to_attribute(v: &Value) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(v)
        .map_err(|e| StoreError::Backend(format!("encoding a value: {e}")))
}

fn key_attributes(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn encode(item: &Item) -> Result<HashMap<String, AttributeValue>, StoreError> {
    if item.attrs.contains_key(PK) || item.attrs.contains_key(SK) {
        return Err(StoreError::Backend(
            "an item's attributes may not be named pk or sk".into(),
        ));
    }
    let mut out: HashMap<String, AttributeValue> = serde_dynamo::to_item(&item.attrs)
        .map_err(|e| StoreError::Backend(format!("encoding an item: {e}")))?;
    out.extend(key_attributes(&item.key));
    Ok(out)
}

fn decode(mut raw: HashMap<String, AttributeValue>) -> Result<Item, StoreError> {
    let text = |v: Option<AttributeValue>| match v {
        Some(AttributeValue::S(s)) => Ok(s),
        _ => Err(StoreError::Backend("an item lacks its pk or sk".into())),
    };
    let key = Key::new(text(raw.remove(PK))?, text(raw.remove(SK))?);
    let attrs: Map<String, Value> = serde_dynamo::from_item(raw)
        .map_err(|e| StoreError::Backend(format!("decoding an item: {e}")))?;
    Ok(Item::new(key, attrs))
}

impl DynamoTable {
    pub fn new(config: &aws_config::SdkConfig, table: &str) -> Self {
        Self {
            client: Client::new(config),
            table: table.to_owned(),
        }
    }

    fn condition_failed(key: &Key, old: Option<HashMap<String, AttributeValue>>) -> StoreError {
        StoreError::ConditionFailed {
            key: key.clone(),
            current: old
                .filter(|o| !o.is_empty())
                .and_then(|o| decode(o).ok())
                .map(Box::new),
        }
    }
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attributes(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        out.item.map(decode).transpose()
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        let mut expr = Expression::default();
        let condition_expression = expr.condition(&condition)?;
        let (names, values) = expr.into_parts();
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(encode(&item)?))
            .set_condition_expression(condition_expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => {
                let old = e.into_service_error();
                let old = match old {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => c.item,
                    _ => None,
                };
                Err(Self::condition_failed(&item.key, old))
            }
            Err(e) => Err(store_error("PutItem", e)),
        }
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        let mut expr = Expression::default();
        let condition_expression = expr.condition(&condition)?;
        let (names, values) = expr.into_parts();
        let request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attributes(key)))
            .set_condition_expression(condition_expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => {
                let old = match e.into_service_error() {
                    aws_sdk_dynamodb::operation::delete_item::DeleteItemError::ConditionalCheckFailedException(c) => c.item,
                    _ => None,
                };
                Err(Self::condition_failed(key, old))
            }
            Err(e) => Err(store_error("DeleteItem", e)),
        }
    }

    async fn query(
        &self,
        pk: &str,
        range: &SortKeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let mut expr = Expression::default();
        let p = expr.name(PK);
        let pv = expr.value(AttributeValue::S(pk.to_owned()));
        let mut key_condition = format!("{p} = {pv}");
        match range {
            SortKeyRange::All => {}
            SortKeyRange::BeginsWith(prefix) => {
                let s = expr.name(SK);
                let v = expr.value(AttributeValue::S(prefix.clone()));
                key_condition.push_str(&format!(" AND begins_with({s}, {v})"));
            }
            SortKeyRange::Between(lo, hi) => {
                let s = expr.name(SK);
                let a = expr.value(AttributeValue::S(lo.clone()));
                let b = expr.value(AttributeValue::S(hi.clone()));
                key_condition.push_str(&format!(" AND {s} BETWEEN {a} AND {b}"));
            }
        }
        let start = after.map(|sk| key_attributes(&Key::new(pk, sk)));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(key_condition)
            .set_expression_attribute_names(Some(expr.names))
            .set_expression_attribute_values(Some(expr.values))
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("Query", e))?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        let last_sk = out.last_evaluated_key.and_then(|mut k| match k.remove(SK) {
            Some(AttributeValue::S(s)) => Some(s),
            _ => None,
        });
        Ok(Page { items, last_sk })
    }

    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), StoreError> {
        if ops.len() > self.max_transaction_ops() {
            return Err(StoreError::TransactionTooLarge {
                requested: ops.len(),
                limit: self.max_transaction_ops(),
            });
        }
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Backend(e.to_string());
        let mut items = Vec::with_capacity(ops.len());
        for op in &ops {
            let mut expr = Expression::default();
            let item = match op {
                TransactOp::Put { item, condition } => {
                    let c = expr.condition(condition)?;
                    let (names, values) = expr.into_parts();
                    TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .table_name(&self.table)
                                .set_item(Some(encode(item)?))
                                .set_condition_expression(c)
                                .set_expression_attribute_names(names)
                                .set_expression_attribute_values(values)
                                .build()
                                .map_err(build)?,
                        )
                        .build()
                }
                TransactOp::Delete { key, condition } => {
                    let c = expr.condition(condition)?;
                    let (names, values) = expr.into_parts();
                    TransactWriteItem::builder()
                        .delete(
                            Delete::builder()
                                .table_name(&self.table)
                                .set_key(Some(key_attributes(key)))
                                .set_condition_expression(c)
                                .set_expression_attribute_names(names)
                                .set_expression_attribute_values(values)
                                .build()
                                .map_err(build)?,
                        )
                        .build()
                }
                TransactOp::Check { key, condition } => {
                    let c = expr.condition(condition)?.unwrap_or_else(|| {
                        format!(
                            "attribute_exists({}) OR attribute_not_exists({})",
                            expr.name(PK),
                            expr.name(PK)
                        )
                    });
                    let (names, values) = expr.into_parts();
                    TransactWriteItem::builder()
                        .condition_check(
                            ConditionCheck::builder()
                                .table_name(&self.table)
                                .set_key(Some(key_attributes(key)))
                                .condition_expression(c)
                                .set_expression_attribute_names(names)
                                .set_expression_attribute_values(values)
                                .build()
                                .map_err(build)?,
                        )
                        .build()
                }
            };
            items.push(item);
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some("TransactionCanceledException") => {
                let reasons = match e.into_service_error() {
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t) => t.cancellation_reasons.unwrap_or_default(),
                    _ => Vec::new(),
                };
                let failed = reasons
                    .iter()
                    .position(|r| r.code() == Some("ConditionalCheckFailed"));
                if failed.is_none()
                    && reasons
                        .iter()
                        .any(|r| r.code() == Some("TransactionConflict"))
                {
                    return Err(StoreError::Throttled(
                        "a concurrent transaction touched the same items; retry".into(),
                    ));
                }
                Err(StoreError::TransactionCancelled { failed })
            }
            Err(e) => Err(store_error("TransactWriteItems", e)),
        }
    }

    fn max_transaction_ops(&self) -> usize {
        100
    }
}
