//! The Backstage-compatible software catalog: the entity envelope and its rules, relations,
//! the in-memory read model that answers Backstage's queries, and the repository that keeps
//! the read model and the [`Table`](crate::ports::Table) in step.

mod changelog;
mod documents;
mod entity;
mod index;
mod kind;
mod names;
mod query;
mod relations;
mod repository;
mod template;

pub use documents::parse_documents;
pub use entity::{ValidEntity, validate_entity};
pub use index::{CatalogIndex, EntityView, FacetCount, StoredEntity};
pub use kind::Kind;
pub use names::{EntityRef, OwnerRef, RefDefaults, is_valid_dns_label, is_valid_object_name};
pub use query::{
    Anchor, EntityQuery, FilterSet, FullTextFilter, OrderField, PageRequest, QueryPage,
    decode_cursor, lookup_path, project_fields,
};
pub use relations::{Relation, RelationType};
pub use repository::{
    CatalogOptions, CatalogRepository, ENTITY_PARTITION, ImportOutcome, ImportedEntity,
    PlatformWriter, ServiceComponent, UpsertOutcome, WriteGuard, WriteStatus,
};
pub use template::{DEFAULT_TEMPLATES, Template, validate_parameters};
