//! The [`Table`] port on SQLite: conditions are checked inside the same transaction as the
//! write, so they are as atomic as DynamoDB's.

use async_trait::async_trait;
use paved_core::ports::{Condition, Item, Key, Page, SortKeyRange, StoreError, Table, TransactOp};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value};

use crate::db::{SqliteStore, store_error};

fn read_item(conn: &Connection, key: &Key) -> Result<Option<Item>, StoreError> {
    let attrs: Option<String> = conn
        .query_row(
            "SELECT attrs FROM items WHERE pk = ?1 AND sk = ?2",
            params![key.pk, key.sk],
            |r| r.get(0),
        )
        .optional()
        .map_err(store_error)?;
    attrs
        .map(|a| Ok(Item::new(key.clone(), parse_attrs(&a)?)))
        .transpose()
}

fn parse_attrs(text: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Backend(format!("a stored item is not JSON: {e}")))
}

fn write_item(conn: &Connection, item: &Item) -> Result<(), StoreError> {
    let attrs =
        serde_json::to_string(&item.attrs).map_err(|e| StoreError::Backend(e.to_string()))?;
    conn.execute(
        "INSERT INTO items (pk, sk, attrs) VALUES (?1, ?2, ?3)
         ON CONFLICT (pk, sk) DO UPDATE SET attrs = excluded.attrs",
        params![item.key.pk, item.key.sk, attrs],
    )
    .map_err(store_error)?;
    Ok(())
}

fn delete_item(conn: &Connection, key: &Key) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM items WHERE pk = ?1 AND sk = ?2",
        params![key.pk, key.sk],
    )
    .map_err(store_error)?;
    Ok(())
}

/// Checks a condition against the stored item, returning it as DynamoDB's
/// `ReturnValuesOnConditionCheckFailure` does.
fn check(conn: &Connection, key: &Key, condition: &Condition) -> Result<(), StoreError> {
    if *condition == Condition::Always {
        return Ok(());
    }
    let current = read_item(conn, key)?;
    if condition.holds(current.as_ref()) {
        Ok(())
    } else {
        Err(StoreError::ConditionFailed {
            key: key.clone(),
            current: current.map(Box::new),
        })
    }
}

#[async_trait]
impl Table for SqliteStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let key = key.clone();
        self.run(move |conn| read_item(conn, &key)).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(store_error)?;
            check(&tx, &item.key, &condition)?;
            write_item(&tx, &item)?;
            tx.commit().map_err(store_error)
        })
        .await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        let key = key.clone();
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(store_error)?;
            check(&tx, &key, &condition)?;
            delete_item(&tx, &key)?;
            tx.commit().map_err(store_error)
        })
        .await
    }

    async fn query(
        &self,
        pk: &str,
        range: &SortKeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let (pk, range, after) = (pk.to_owned(), range.clone(), after.map(str::to_owned));
        self.run(move |conn| {
            let lo = match &range {
                SortKeyRange::All => "",
                SortKeyRange::BeginsWith(p) | SortKeyRange::Between(p, _) => p.as_str(),
            };
            // Resume strictly after the last key of the previous page.
            let (sql, from) = match after.as_deref() {
                Some(a) if a >= lo => (
                    "SELECT sk, attrs FROM items WHERE pk = ?1 AND sk > ?2 ORDER BY sk LIMIT ?3",
                    a,
                ),
                _ => (
                    "SELECT sk, attrs FROM items WHERE pk = ?1 AND sk >= ?2 ORDER BY sk LIMIT ?3",
                    lo,
                ),
            };
            let mut stmt = conn.prepare_cached(sql).map_err(store_error)?;
            // One row past the page tells whether more follow.
            let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
            let rows = stmt
                .query_map(params![pk, from, fetch], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(store_error)?;
            let mut items = Vec::new();
            let mut more = false;
            for row in rows {
                let (sk, attrs) = row.map_err(store_error)?;
                if !range.contains(&sk) {
                    break;
                }
                if items.len() == limit {
                    more = true;
                    break;
                }
                items.push(Item::new(Key::new(pk.clone(), sk), parse_attrs(&attrs)?));
            }
            let last_sk = if more {
                items.last().map(|i| i.key.sk.clone())
            } else {
                None
            };
            Ok(Page { items, last_sk })
        })
        .await
    }

    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), StoreError> {
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(store_error)?;
            for (i, op) in ops.iter().enumerate() {
                let (key, condition) = match op {
                    TransactOp::Put { item, condition } => (&item.key, condition),
                    TransactOp::Delete { key, condition }
                    | TransactOp::Check { key, condition } => (key, condition),
                };
                match check(&tx, key, condition) {
                    Ok(()) => {}
                    Err(StoreError::ConditionFailed { .. }) => {
                        return Err(StoreError::TransactionCancelled { failed: Some(i) });
                    }
                    Err(e) => return Err(e),
                }
                match op {
                    TransactOp::Put { item, .. } => write_item(&tx, item)?,
                    TransactOp::Delete { key, .. } => delete_item(&tx, key)?,
                    TransactOp::Check { .. } => {}
                }
            }
            tx.commit().map_err(store_error)
        })
        .await
    }

    /// SQLite commits any number of writes atomically.
    fn max_transaction_ops(&self) -> usize {
        usize::MAX
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("paved.db")).expect("open");
        (dir, store)
    }

    fn item(pk: &str, sk: &str, v: i64) -> Item {
        let Value::Object(attrs) = json!({"v": v}) else {
            unreachable!()
        };
        Item::new(Key::new(pk, sk), attrs)
    }

    #[tokio::test]
    async fn conditional_puts_return_the_current_item() {
        let (_d, s) = store();
        s.put(item("p", "a", 1), Condition::Absent)
            .await
            .expect("first put");
        match s.put(item("p", "a", 2), Condition::Absent).await {
            Err(StoreError::ConditionFailed {
                current: Some(cur), ..
            }) => assert_eq!(cur.attrs["v"], 1),
            other => panic!("expected a failed condition, got {other:?}"),
        }
        let eq = |v: i64| Condition::AttrEquals {
            name: "v".into(),
            value: json!(v),
        };
        assert!(s.put(item("p", "a", 3), eq(2)).await.is_err());
        s.put(item("p", "a", 3), eq(1))
            .await
            .expect("matching condition");
        assert_eq!(
            s.get(&Key::new("p", "a"))
                .await
                .expect("get")
                .expect("present")
                .attrs["v"],
            3
        );
        assert!(s.delete(&Key::new("p", "a"), eq(1)).await.is_err());
        s.delete(&Key::new("p", "a"), eq(3)).await.expect("delete");
        assert!(s.get(&Key::new("p", "a")).await.expect("get").is_none());
        let lock = Condition::AnyOf(vec![
            Condition::Absent,
            Condition::AttrLessThan {
                name: "v".into(),
                value: 10,
            },
        ]);
        s.put(item("p", "l", 20), lock.clone())
            .await
            .expect("absent");
        assert!(s.put(item("p", "l", 5), lock).await.is_err(), "not expired");
    }

    #[tokio::test]
    async fn queries_page_through_a_partition_in_order() {
        let (_d, s) = store();
        for i in 0..25 {
            s.put(item("p", &format!("k{i:02}"), i), Condition::Always)
                .await
                .expect("put");
        }
        s.put(item("other", "k00", 0), Condition::Always)
            .await
            .expect("put");
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = s
                .query(
                    "p",
                    &SortKeyRange::BeginsWith("k".into()),
                    after.as_deref(),
                    10,
                )
                .await
                .expect("query");
            seen.extend(page.items.iter().map(|i| i.key.sk.clone()));
            match page.last_sk {
                Some(sk) => after = Some(sk),
                None => break,
            }
        }
        assert_eq!(
            seen,
            (0..25).map(|i| format!("k{i:02}")).collect::<Vec<_>>()
        );
        let between = s
            .query(
                "p",
                &SortKeyRange::Between("k05".into(), "k07".into()),
                None,
                10,
            )
            .await
            .expect("query");
        assert_eq!(between.items.len(), 3);
        assert!(between.last_sk.is_none());
    }

    #[tokio::test]
    async fn transactions_are_all_or_nothing() {
        let (_d, s) = store();
        s.put(item("p", "x", 1), Condition::Always)
            .await
            .expect("put");
        let ops = vec![
            TransactOp::Put {
                item: item("p", "new", 1),
                condition: Condition::Absent,
            },
            TransactOp::Put {
                item: item("p", "x", 2),
                condition: Condition::Absent,
            },
        ];
        match s.transact(ops).await {
            Err(StoreError::TransactionCancelled { failed }) => assert_eq!(failed, Some(1)),
            other => panic!("expected cancellation, got {other:?}"),
        }
        assert!(
            s.get(&Key::new("p", "new")).await.expect("get").is_none(),
            "the first op was rolled back"
        );
        let ops = vec![
            TransactOp::Check {
                key: Key::new("p", "x"),
                condition: Condition::Exists,
            },
            TransactOp::Delete {
                key: Key::new("p", "x"),
                condition: Condition::Always,
            },
            TransactOp::Put {
                item: item("p", "new", 1),
                condition: Condition::Absent,
            },
        ];
        s.transact(ops).await.expect("commit");
        assert!(s.get(&Key::new("p", "x")).await.expect("get").is_none());
        assert!(s.get(&Key::new("p", "new")).await.expect("get").is_some());
    }

    #[tokio::test]
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("paved.db");
        SqliteStore::open(&path)
            .expect("open")
            .put(item("p", "a", 7), Condition::Absent)
            .await
            .expect("put");
        let again = SqliteStore::open(&path).expect("reopen");
        assert_eq!(
            again
                .get(&Key::new("p", "a"))
                .await
                .expect("get")
                .expect("kept")
                .attrs["v"],
            7
        );
    }
}
