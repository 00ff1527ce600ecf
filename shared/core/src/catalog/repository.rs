//! The catalog repository: entities in the [`Table`], written once over the port so that
//! conditional writes and transactions behave alike on every backend, with the in-memory
//! [`CatalogIndex`] kept in step for reads.

use crate::ErrorCode;
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard};
use serde::Serialize;
use serde_json::{Map, Value};

use super::entity::{
    ValidEntity, validate_entity, validate_entity_except_templates, validate_stored_entity,
};
use super::index::{CatalogIndex, EntityView, StoredEntity};
use super::kind::Kind;
use super::names::{EntityRef, RefDefaults};
use crate::error::{DocumentReport, Error, Violation};
use crate::ports::{Condition, Item, Key, SortKeyRange, StoreError, Table, TransactOp};

/// The partition that holds every entity, keyed by its lower-case ref.
pub const ENTITY_PARTITION: &str = "CATALOG#ENTITY";
const LOAD_PAGE: usize = 1000;

/// The platform itself writing (installing its golden paths, registering what it provisioned):
/// there is no caller to authorize.
#[derive(Debug)]
pub struct PlatformWriter;

impl WriteGuard for PlatformWriter {
    fn check(
        &self,
        _: &EntityRef,
        _: Kind,
        _: Option<&EntityRef>,
        _: Option<&EntityRef>,
    ) -> Result<(), Error> {
        Ok(())
    }
}

/// Decides whether the caller may write an entity (see
/// [`AccessPolicy::check_catalog_write`](crate::auth::AccessPolicy::check_catalog_write)).
pub trait WriteGuard: Send + Sync {
    fn check(
        &self,
        entity_ref: &EntityRef,
        kind: Kind,
        current_owner: Option<&EntityRef>,
        new_owner: Option<&EntityRef>,
    ) -> Result<(), Error>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteStatus {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct UpsertOutcome {
    pub status: WriteStatus,
    pub view: EntityView,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportedEntity {
    #[serde(rename = "entityRef")]
    pub entity_ref: String,
    pub status: WriteStatus,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportOutcome {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub entities: Vec<ImportedEntity>,
}

pub struct CatalogRepository {
    table: Arc<dyn Table>,
    index: RwLock<CatalogIndex>,
    /// Serialises this process's writes so that the index applies them in the table's order.
    writes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for CatalogRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogRepository").finish_non_exhaustive()
    }
}

impl CatalogRepository {
    /// Loads every entity from the table into the read model.
    pub async fn load(table: Arc<dyn Table>) -> Result<Self, Error> {
        let mut stored = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = table
                .query(
                    ENTITY_PARTITION,
                    &SortKeyRange::All,
                    after.as_deref(),
                    LOAD_PAGE,
                )
                .await?;
            for item in page.items {
                match decode(&item) {
                    Ok(entity) => stored.push(entity),
                    Err(e) => {
                        tracing::error!(key = ?item.key, error = %e, "a stored entity no longer passes validation; it is left in the table but not served")
                    }
                }
            }
            match page.last_sk {
                Some(sk) => after = Some(sk),
                None => break,
            }
        }
        let mut index = CatalogIndex::default();
        index.apply(stored, &[]);
        tracing::info!(entities = index.len(), "catalog loaded");
        Ok(Self {
            table,
            index: RwLock::new(index),
            writes: tokio::sync::Mutex::new(()),
        })
    }

    /// The read model, for queries. Hold the guard briefly: writers wait for it.
    pub fn read(&self) -> RwLockReadGuard<'_, CatalogIndex> {
        self.index.read()
    }

    /// Creates or replaces one entity. With `if_match`, the write happens only while the
    /// entity's current etag is that one.
    pub async fn upsert(
        &self,
        value: Value,
        if_match: Option<&str>,
        guard: &dyn WriteGuard,
    ) -> Result<UpsertOutcome, Error> {
        let valid = validate_entity(value)?;
        let _serial = self.writes.lock().await;
        let current = self.read().get_by_ref(&valid.entity_ref).cloned();
        guard.check(
            &valid.entity_ref,
            valid.kind,
            current.as_ref().and_then(|c| c.owner.as_ref()),
            valid.owner.as_ref(),
        )?;
        if let Some(expected) = if_match {
            check_if_match(expected, current.as_ref(), &valid.entity_ref)?;
        }
        if let Some(view) = current
            .as_ref()
            .filter(|c| c.content_hash == valid.content_hash)
        {
            return Ok(UpsertOutcome {
                status: WriteStatus::Unchanged,
                view: view.clone(),
            });
        }
        let status = if current.is_some() {
            WriteStatus::Updated
        } else {
            WriteStatus::Created
        };
        let (stored, item, condition) = self.prepare_write(valid, current.as_ref());
        match self.table.put(item, condition).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { current: now, .. }) => {
                // Another writer got there first: refresh our view of it and refuse.
                self.refresh_from(&stored.valid.entity_ref, now.map(|b| *b));
                return Err(Error::PreconditionFailed(format!(
                    "{} was changed by another writer; fetch it again and retry",
                    stored.valid.entity_ref
                )));
            }
            Err(e) => return Err(e.into()),
        }
        let entity_ref = stored.valid.entity_ref.clone();
        let mut index = self.index.write();
        index.apply(vec![stored], &[]);
        let view = index
            .get_by_ref(&entity_ref)
            .cloned()
            .ok_or_else(|| Error::NotFound(entity_ref.to_string()))?;
        Ok(UpsertOutcome { status, view })
    }

    /// Imports a whole multi-document body: every document is checked first, and either all
    /// of the changes are written, in one transaction, or none is.
    pub async fn import(
        &self,
        documents: Vec<Value>,
        guard: &dyn WriteGuard,
    ) -> Result<ImportOutcome, Error> {
        self.import_checked(documents, guard, validate_entity).await
    }

    /// Registers the one Component a provisioned service's catalog-info.yaml declares, as the
    /// platform. The file was rendered from a request's parameters, so it is held to exactly
    /// what the request asked for: one document, a Component with the expected name and
    /// owner, carrying the request's id. Anything else (a second document, a User, a
    /// Template, another team's owner) is refused and nothing is written.
    pub async fn register_service_component(
        &self,
        documents: Vec<Value>,
        expected: &ServiceComponent<'_>,
    ) -> Result<ImportOutcome, Error> {
        let refuse = |field: &str, message: String| Error::Invalid {
            code: ErrorCode::NotTheServiceComponent,
            message: format!("the service's catalog-info.yaml is refused: {message}"),
            violations: vec![Violation::new(field, message)],
        };
        let count = documents.len();
        let Ok([document]) = <[Value; 1]>::try_from(documents) else {
            return Err(refuse(
                "",
                format!(
                    "it declares {count} documents; a new service registers exactly its own Component"
                ),
            ));
        };
        let valid = validate_entity_except_templates(document.clone())?;
        if valid.kind != Kind::Component || valid.entity_ref.key() != expected.entity_ref.key() {
            return Err(refuse(
                "metadata.name",
                format!(
                    "it declares {}, not {}",
                    valid.entity_ref, expected.entity_ref
                ),
            ));
        }
        if valid.owner.as_ref().map(EntityRef::key) != Some(expected.owner.key()) {
            return Err(refuse(
                "spec.owner",
                format!("its owner is not the request's owner {}", expected.owner),
            ));
        }
        let stamped = valid
            .body
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(expected.request_annotation))
            .and_then(Value::as_str);
        if stamped != Some(expected.request_id) {
            return Err(refuse(
                "metadata.annotations",
                format!(
                    "it does not carry {}: {}",
                    expected.request_annotation, expected.request_id
                ),
            ));
        }
        self.import_checked(
            vec![document],
            &PlatformWriter,
            validate_entity_except_templates,
        )
        .await
    }

    async fn import_checked(
        &self,
        documents: Vec<Value>,
        guard: &dyn WriteGuard,
        validate: fn(Value) -> Result<ValidEntity, Error>,
    ) -> Result<ImportOutcome, Error> {
        let mut reports = Vec::new();
        let mut valid = Vec::with_capacity(documents.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, doc) in documents.into_iter().enumerate() {
            let fallback_ref = doc_ref(&doc);
            match validate(doc) {
                Ok(v) => {
                    let key = v.entity_ref.key();
                    if let Some(first) = seen.insert(key, i) {
                        reports.push(DocumentReport {
                            document: i,
                            entity_ref: Some(v.entity_ref.to_string()),
                            code: ErrorCode::DuplicateEntity,
                            errors: vec![Violation::new(
                                "metadata.name",
                                format!("{} is also document {first} of this import", v.entity_ref),
                            )],
                        });
                    }
                    valid.push((i, v));
                }
                Err(Error::Invalid {
                    code, violations, ..
                }) => reports.push(DocumentReport {
                    document: i,
                    entity_ref: fallback_ref,
                    code,
                    errors: violations,
                }),
                Err(other) => return Err(other),
            }
        }
        if !reports.is_empty() {
            return Err(Error::ImportRejected(reports));
        }

        let _serial = self.writes.lock().await;
        let mut outcome = ImportOutcome::default();
        let mut writes = Vec::new();
        {
            let index = self.read();
            for (i, v) in valid {
                let current = index.get_by_ref(&v.entity_ref);
                if let Err(e) = guard.check(
                    &v.entity_ref,
                    v.kind,
                    current.and_then(|c| c.owner.as_ref()),
                    v.owner.as_ref(),
                ) {
                    reports.push(DocumentReport {
                        document: i,
                        entity_ref: Some(v.entity_ref.to_string()),
                        code: e.error_code(),
                        errors: vec![Violation::new("", e.to_string())],
                    });
                    continue;
                }
                let status = match current {
                    Some(c) if c.content_hash == v.content_hash => WriteStatus::Unchanged,
                    Some(_) => WriteStatus::Updated,
                    None => WriteStatus::Created,
                };
                outcome.entities.push(ImportedEntity {
                    entity_ref: v.entity_ref.to_string(),
                    status,
                });
                match status {
                    WriteStatus::Unchanged => outcome.unchanged += 1,
                    WriteStatus::Updated => outcome.updated += 1,
                    WriteStatus::Created => outcome.created += 1,
                }
                if status != WriteStatus::Unchanged {
                    writes.push(self.prepare_write(v, current));
                }
            }
        }
        if !reports.is_empty() {
            return Err(Error::ImportRejected(reports));
        }
        if writes.is_empty() {
            return Ok(outcome);
        }
        let limit = self.table.max_transaction_ops();
        if writes.len() > limit {
            return Err(Error::Invalid {
                code: ErrorCode::ImportTooLarge,
                message: format!(
                    "this import changes {} entities; this backend writes at most {limit} in one all-or-nothing import, so split the file",
                    writes.len()
                ),
                violations: Vec::new(),
            });
        }
        let (stored, ops): (Vec<StoredEntity>, Vec<TransactOp>) = writes
            .into_iter()
            .map(|(stored, item, condition)| (stored, TransactOp::Put { item, condition }))
            .unzip();
        match self.table.transact(ops).await {
            Ok(()) => {}
            Err(StoreError::TransactionCancelled { .. }) => {
                return Err(Error::Conflict(
                    "the catalog changed during the import; nothing was written, retry it".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.index.write().apply(stored, &[]);
        Ok(outcome)
    }

    /// Writes those of `documents` that the catalog does not hold yet, as the platform itself
    /// (no caller to authorize); what is there already is left as its owners made it.
    ///
    /// Several processes may do this at once (cold starts of the catalog function): the one
    /// whose write loses the race reads what the winner wrote and finds nothing left to do.
    pub async fn install_missing(&self, documents: Vec<Value>) -> Result<ImportOutcome, Error> {
        const ATTEMPTS: usize = 3;
        let mut attempt = 0;
        loop {
            let missing: Vec<Value> = {
                let index = self.read();
                documents
                    .iter()
                    .filter(|doc| {
                        doc_ref(doc).is_none_or(|r| index.get_by_key(&r.to_lowercase()).is_none())
                    })
                    .cloned()
                    .collect()
            };
            if missing.is_empty() {
                return Ok(ImportOutcome::default());
            }
            attempt += 1;
            match self.import(missing.clone(), &PlatformWriter).await {
                Err(Error::Conflict(_)) if attempt < ATTEMPTS => {
                    // Someone else wrote some of them: learn what they wrote, then try the rest.
                    for reference in missing.iter().filter_map(doc_ref) {
                        let Ok(entity_ref) = EntityRef::parse(
                            &reference,
                            RefDefaults {
                                kind: None,
                                namespace: "default",
                            },
                        ) else {
                            continue;
                        };
                        let key = Key::new(ENTITY_PARTITION, entity_ref.key());
                        let item = self.table.get(&key).await?;
                        self.refresh_from(&entity_ref, item);
                    }
                }
                other => return other,
            }
        }
    }

    /// Deletes an entity by uid.
    pub async fn delete_by_uid(
        &self,
        uid: &str,
        guard: &dyn WriteGuard,
    ) -> Result<EntityRef, Error> {
        let _serial = self.writes.lock().await;
        let current = self
            .read()
            .get_by_uid(uid)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("entity with uid {uid}")))?;
        guard.check(
            &current.entity_ref,
            current.kind,
            current.owner.as_ref(),
            None,
        )?;
        let key = Key::new(ENTITY_PARTITION, current.entity_ref.key());
        match self
            .table
            .delete(
                &key,
                Condition::AttrEquals {
                    name: "uid".into(),
                    value: Value::String(uid.into()),
                },
            )
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed { current: None, .. }) => {}
            Err(StoreError::ConditionFailed { current: now, .. }) => {
                self.refresh_from(&current.entity_ref, now.map(|b| *b));
                return Err(Error::NotFound(format!("entity with uid {uid}")));
            }
            Err(e) => return Err(e.into()),
        }
        self.index
            .write()
            .apply(Vec::new(), std::slice::from_ref(&current.entity_ref));
        Ok(current.entity_ref)
    }

    /// Builds the stored form of a write and its conditional put: created only if absent,
    /// replaced only while the etag we read is still current.
    fn prepare_write(
        &self,
        valid: ValidEntity,
        current: Option<&EntityView>,
    ) -> (StoredEntity, Item, Condition) {
        let (uid, generation, condition) = match current {
            Some(c) => {
                let spec_changed = self.read_spec_changed(c, &valid).unwrap_or(true);
                (
                    c.uid.clone(),
                    c.generation + u64::from(spec_changed),
                    Condition::AttrEquals {
                        name: "etag".into(),
                        value: Value::String(c.etag.clone()),
                    },
                )
            }
            None => (uuid::Uuid::new_v4().to_string(), 1, Condition::Absent),
        };
        let stored = StoredEntity {
            valid,
            uid,
            etag: uuid::Uuid::new_v4().simple().to_string(),
            generation,
        };
        let item = encode(&stored);
        (stored, item, condition)
    }

    fn read_spec_changed(&self, current: &EntityView, valid: &ValidEntity) -> Option<bool> {
        let old: Value = serde_json::from_slice(&current.json).ok()?;
        Some(old.get("spec") != valid.body.get("spec"))
    }

    /// Brings the index in line with what the table holds for one entity.
    fn refresh_from(&self, entity_ref: &EntityRef, item: Option<Item>) {
        let mut index = self.index.write();
        match item.map(|i| decode(&i)) {
            Some(Ok(stored)) => index.apply(vec![stored], &[]),
            Some(Err(_)) | None => index.apply(Vec::new(), std::slice::from_ref(entity_ref)),
        }
    }
}

/// What a new service's register step may write: its own Component, as the request made it.
#[derive(Debug, Clone, Copy)]
pub struct ServiceComponent<'a> {
    pub entity_ref: &'a EntityRef,
    pub owner: &'a EntityRef,
    /// The annotation that carries the request id, and the id.
    pub request_annotation: &'a str,
    pub request_id: &'a str,
}

fn check_if_match(
    expected: &str,
    current: Option<&EntityView>,
    entity_ref: &EntityRef,
) -> Result<(), Error> {
    let expected = expected.trim().trim_start_matches("W/").trim_matches('"');
    match current {
        None => Err(Error::PreconditionFailed(format!(
            "If-Match was given but {entity_ref} does not exist"
        ))),
        Some(_) if expected == "*" => Ok(()),
        Some(c) if c.etag == expected => Ok(()),
        Some(c) => Err(Error::PreconditionFailed(format!(
            "If-Match {expected} is not the current etag of {entity_ref} ({}); fetch it again and retry",
            c.etag
        ))),
    }
}

fn doc_ref(doc: &Value) -> Option<String> {
    let kind = doc.get("kind")?.as_str()?;
    let meta = doc.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let ns = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    Some(format!(
        "{}:{}/{}",
        kind.to_lowercase(),
        ns.to_lowercase(),
        name
    ))
}

fn encode(stored: &StoredEntity) -> Item {
    let mut attrs = Map::new();
    // The entity is kept as one JSON string attribute: compact, and opaque to the store.
    attrs.insert(
        "entity".into(),
        Value::String(serde_json::to_string(&stored.valid.body).unwrap_or_default()),
    );
    attrs.insert("uid".into(), Value::String(stored.uid.clone()));
    attrs.insert("etag".into(), Value::String(stored.etag.clone()));
    attrs.insert("generation".into(), Value::from(stored.generation));
    Item::new(
        Key::new(ENTITY_PARTITION, stored.valid.entity_ref.key()),
        attrs,
    )
}

/// A stored entity that does not read back is the server's fault, never a caller's (`load`
/// logs it and leaves it out of the read model).
fn decode(item: &Item) -> Result<StoredEntity, Error> {
    let corrupt = |why: String| {
        Error::Internal(format!(
            "the stored entity {}/{} is corrupt: {why}",
            item.key.pk, item.key.sk
        ))
    };
    let entity = item
        .str_attr("entity")
        .ok_or_else(|| corrupt("no entity attribute".into()))?;
    let entity: Value = serde_json::from_str(entity).map_err(|e| corrupt(e.to_string()))?;
    let valid = validate_stored_entity(entity).map_err(|e| corrupt(e.to_string()))?;
    Ok(StoredEntity {
        valid,
        uid: item.str_attr("uid").unwrap_or_default().to_owned(),
        etag: item.str_attr("etag").unwrap_or_default().to_owned(),
        generation: item
            .attrs
            .get("generation")
            .and_then(Value::as_u64)
            .unwrap_or(1),
    })
}
