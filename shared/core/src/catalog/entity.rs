//! The entity envelope and Backstage's validation rules. [`validate_entity`] is the only way
//! to build a [`ValidEntity`]: an invalid entity cannot exist past this point.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::kind::Kind;
use super::names::{
    EntityRef, RefDefaults, is_valid_api_version, is_valid_dns_label, is_valid_label_value,
    is_valid_metadata_key, is_valid_object_name, is_valid_tag,
};
use super::relations::{Relation, RelationType};
use crate::error::{Error, ErrorCode, Violation};

/// The apiVersions the built-in kinds are defined under.
pub(super) const API_VERSIONS: [&str; 2] = ["backstage.io/v1alpha1", "backstage.io/v1beta1"];

/// Fields the catalog sets itself; what a client sends in them is ignored.
const SERVER_METADATA: [&str; 3] = ["uid", "etag", "generation"];

/// An entity that passed every rule, with what the catalog derives from it.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEntity {
    /// The entity as a client wrote it, minus computed fields (`relations`, `metadata.uid`,
    /// `metadata.etag`, `metadata.generation`), with `metadata.namespace` filled in.
    pub body: Map<String, Value>,
    pub entity_ref: EntityRef,
    pub kind: Kind,
    /// `spec.owner`, for the kinds that have one.
    pub owner: Option<EntityRef>,
    /// The relations this entity's spec declares, from this entity to others.
    pub relations: Vec<Relation>,
    /// A hash of `body`, to recognise a write that changes nothing.
    pub content_hash: String,
}

impl ValidEntity {
    pub fn spec(&self) -> Option<&Map<String, Value>> {
        self.body.get("spec").and_then(Value::as_object)
    }
}

#[derive(Clone, Copy)]
enum Shape {
    Str,
    StrList,
    Object,
    /// Any list.
    List,
    /// A JSON Schema object, or a list of them (a template's form pages).
    Schemas,
}

/// One field of a kind's spec: its shape, whether it is required, and the relation it declares
/// (with the kind a shorthand reference defaults to).
struct SpecField {
    name: &'static str,
    shape: Shape,
    required: bool,
    relation: Option<(RelationType, Option<&'static str>)>,
}

const fn field(
    name: &'static str,
    shape: Shape,
    required: bool,
    relation: Option<(RelationType, Option<&'static str>)>,
) -> SpecField {
    SpecField {
        name,
        shape,
        required,
        relation,
    }
}

use RelationType as R;
use Shape::{List, Object, Schemas, Str, StrList};

const OWNER: SpecField = field("owner", Str, true, Some((R::OwnedBy, Some("group"))));
const SYSTEM: SpecField = field("system", Str, false, Some((R::PartOf, Some("system"))));
const DEPENDS_ON: SpecField = field("dependsOn", StrList, false, Some((R::DependsOn, None)));
const DEPENDENCY_OF: SpecField = field(
    "dependencyOf",
    StrList,
    false,
    Some((R::DependencyOf, None)),
);

fn spec_fields(kind: Kind) -> &'static [SpecField] {
    const COMPONENT: &[SpecField] = &[
        field("type", Str, true, None),
        field("lifecycle", Str, true, None),
        OWNER,
        SYSTEM,
        field(
            "subcomponentOf",
            Str,
            false,
            Some((R::PartOf, Some("component"))),
        ),
        field(
            "providesApis",
            StrList,
            false,
            Some((R::ProvidesApi, Some("api"))),
        ),
        field(
            "consumesApis",
            StrList,
            false,
            Some((R::ConsumesApi, Some("api"))),
        ),
        DEPENDS_ON,
        DEPENDENCY_OF,
    ];
    const API: &[SpecField] = &[
        field("type", Str, true, None),
        field("lifecycle", Str, true, None),
        OWNER,
        field("definition", Str, true, None),
        SYSTEM,
    ];
    const RESOURCE: &[SpecField] = &[
        field("type", Str, true, None),
        OWNER,
        DEPENDS_ON,
        DEPENDENCY_OF,
        SYSTEM,
    ];
    const SYSTEM_KIND: &[SpecField] = &[
        OWNER,
        field("domain", Str, false, Some((R::PartOf, Some("domain")))),
        field("type", Str, false, None),
    ];
    const DOMAIN: &[SpecField] = &[
        OWNER,
        field("subdomainOf", Str, false, Some((R::PartOf, Some("domain")))),
        field("type", Str, false, None),
    ];
    const GROUP: &[SpecField] = &[
        field("type", Str, true, None),
        field("profile", Object, false, None),
        field("parent", Str, false, Some((R::ChildOf, Some("group")))),
        field(
            "children",
            StrList,
            true,
            Some((R::ParentOf, Some("group"))),
        ),
        field(
            "members",
            StrList,
            false,
            Some((R::HasMember, Some("user"))),
        ),
    ];
    const USER: &[SpecField] = &[
        field("profile", Object, false, None),
        field(
            "memberOf",
            StrList,
            true,
            Some((R::MemberOf, Some("group"))),
        ),
    ];
    const TEMPLATE: &[SpecField] = &[
        field("type", Str, true, None),
        field("owner", Str, false, Some((R::OwnedBy, Some("group")))),
        field("parameters", Schemas, false, None),
        field("steps", List, true, None),
        field("output", Object, false, None),
    ];
    match kind {
        Kind::Component => COMPONENT,
        Kind::Api => API,
        Kind::Resource => RESOURCE,
        Kind::System => SYSTEM_KIND,
        Kind::Domain => DOMAIN,
        Kind::Group => GROUP,
        Kind::User => USER,
        Kind::Template => TEMPLATE,
    }
}

/// Checks an entity against Backstage's envelope, metadata and per-kind rules. Every broken
/// rule is reported, each naming its field; the error's code is `unknown_kind` when the kind
/// is not one paved knows, `invalid_entity` otherwise.
pub fn validate_entity(value: Value) -> Result<ValidEntity, Error> {
    validate::<true>(value)
}

/// [`validate_entity`] for an entity read back from the table, which passed it when it was
/// written: every rule is checked again (a rule may have changed since), except that a
/// template's parameter schemas are only checked to be objects, not compiled. Compiling one
/// builds the JSON Schema meta-validator (1.5-2 ms of every cold start that loads the
/// catalog), and the functions that only read the catalog then link no JSON Schema engine.
/// A schema that no longer compiles is reported when a request is checked against it
/// ([`super::template::validate_parameters`]: `invalid_template`).
pub(crate) fn validate_stored_entity(value: Value) -> Result<ValidEntity, Error> {
    validate::<false>(value)
}

/// [`validate_entity`] for entities a provisioned service declares in its catalog-info.yaml:
/// every rule applies, and a Template is refused (golden paths come through the catalog API,
/// where their schemas are compiled), so the worker that registers services links no JSON
/// Schema engine.
pub(crate) fn validate_entity_except_templates(value: Value) -> Result<ValidEntity, Error> {
    let valid = validate::<false>(value)?;
    if valid.kind == Kind::Template {
        return Err(invalid(
            ErrorCode::InvalidEntity,
            vec![Violation::new(
                "kind",
                "a service's catalog-info.yaml may not declare a Template; golden paths are registered through the catalog API",
            )],
        ));
    }
    Ok(valid)
}

/// `COMPILE_SCHEMAS` is a constant so that the stored-entity path has no call to the JSON
/// Schema compiler at all, rather than a branch that skips it.
fn validate<const COMPILE_SCHEMAS: bool>(value: Value) -> Result<ValidEntity, Error> {
    let mut v = Vec::new();
    let Value::Object(mut body) = value else {
        return Err(invalid(
            ErrorCode::InvalidEntity,
            vec![Violation::new("", "an entity must be an object")],
        ));
    };
    let root = &body;

    let kind = match root.get("kind") {
        None => {
            v.push(Violation::new("kind", "kind is required"));
            None
        }
        Some(Value::String(s)) => match Kind::parse(s) {
            Some(k) => Some(k),
            None => {
                let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                return Err(invalid(
                    ErrorCode::UnknownKind,
                    vec![Violation::new(
                        "kind",
                        format!("unknown kind '{s}'; paved accepts {}", known.join(", ")),
                    )],
                ));
            }
        },
        Some(_) => {
            v.push(Violation::new("kind", "kind must be a string"));
            None
        }
    };

    let api_versions = kind.map_or(&API_VERSIONS[..], Kind::api_versions);
    match root.get("apiVersion") {
        None => v.push(Violation::new("apiVersion", "apiVersion is required")),
        Some(Value::String(s)) if api_versions.contains(&s.as_str()) => {}
        Some(Value::String(s)) if is_valid_api_version(s) => v.push(Violation::new(
            "apiVersion",
            format!(
                "apiVersion '{s}' is not supported here; use {}",
                api_versions.join(" or ")
            ),
        )),
        Some(_) => v.push(Violation::new(
            "apiVersion",
            "apiVersion must be a string like backstage.io/v1alpha1",
        )),
    }
    body.remove("relations");
    let (name, namespace) = check_metadata(&mut body, &mut v);

    let mut relations = Vec::new();
    let mut owner = None;
    if let Some(kind) = kind {
        match body.get("spec") {
            None => v.push(Violation::new(
                "spec",
                format!("spec is required for kind {kind}"),
            )),
            Some(Value::Object(spec)) => {
                let defaults_ns = namespace.as_deref().unwrap_or("default");
                check_spec::<COMPILE_SCHEMAS>(
                    kind,
                    spec,
                    defaults_ns,
                    &mut v,
                    &mut relations,
                    &mut owner,
                );
            }
            Some(_) => v.push(Violation::new("spec", "spec must be an object")),
        }
    }

    match (v.is_empty(), kind, name, namespace) {
        (true, Some(kind), Some(name), Some(namespace)) => {
            let entity_ref = EntityRef::new(kind.as_str(), &namespace, &name);
            let content_hash = hash_body(&body);
            Ok(ValidEntity {
                body,
                entity_ref,
                kind,
                owner,
                relations,
                content_hash,
            })
        }
        _ => Err(invalid(ErrorCode::InvalidEntity, v)),
    }
}

fn invalid(code: ErrorCode, violations: Vec<Violation>) -> Error {
    let message = match violations.as_slice() {
        [one] => format!(
            "{}: {}",
            if one.field.is_empty() {
                "entity"
            } else {
                &one.field
            },
            one.message
        ),
        many => format!("the entity breaks {} rules", many.len()),
    };
    Error::Invalid {
        code,
        message,
        violations,
    }
}

fn hash_body(body: &Map<String, Value>) -> String {
    // serde_json's Map is ordered by key, so this serialization is canonical.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..16])
}

/// Checks `metadata`, strips server-set fields, fills in the default namespace, and returns
/// the name and namespace when they are valid.
fn check_metadata(
    body: &mut Map<String, Value>,
    v: &mut Vec<Violation>,
) -> (Option<String>, Option<String>) {
    let Some(metadata) = body.get_mut("metadata") else {
        v.push(Violation::new("metadata", "metadata is required"));
        return (None, None);
    };
    let Some(meta) = metadata.as_object_mut() else {
        v.push(Violation::new("metadata", "metadata must be an object"));
        return (None, None);
    };
    for key in SERVER_METADATA {
        meta.remove(key);
    }

    let name = match meta.get("name") {
        None => {
            v.push(Violation::new("metadata.name", "metadata.name is required"));
            None
        }
        Some(Value::String(n)) if is_valid_object_name(n) => Some(n.clone()),
        Some(Value::String(n)) => {
            v.push(Violation::new(
                "metadata.name",
                format!("'{n}' is not a valid name: use 1-63 of A-Z, a-z, 0-9, '-', '_' and '.', starting and ending with a letter or digit"),
            ));
            None
        }
        Some(_) => {
            v.push(Violation::new(
                "metadata.name",
                "metadata.name must be a string",
            ));
            None
        }
    };

    let namespace = match meta.get("namespace") {
        None => {
            meta.insert("namespace".into(), Value::String("default".into()));
            Some("default".to_owned())
        }
        Some(Value::String(ns)) if is_valid_dns_label(ns) => Some(ns.clone()),
        Some(Value::String(ns)) => {
            v.push(Violation::new(
                "metadata.namespace",
                format!("'{ns}' is not a valid namespace: use 1-63 of a-z, 0-9 and '-', starting and ending with a letter or digit"),
            ));
            None
        }
        Some(_) => {
            v.push(Violation::new(
                "metadata.namespace",
                "metadata.namespace must be a string",
            ));
            None
        }
    };

    for key in ["title", "description"] {
        if meta.get(key).is_some_and(|value| !value.is_string()) {
            v.push(Violation::new(
                format!("metadata.{key}"),
                format!("metadata.{key} must be a string"),
            ));
        }
    }
    check_string_map(
        meta.get("labels"),
        "metadata.labels",
        v,
        Some(is_valid_label_value),
    );
    check_string_map(meta.get("annotations"), "metadata.annotations", v, None);
    match meta.get("tags") {
        None => {}
        Some(Value::Array(tags)) => {
            for (i, tag) in tags.iter().enumerate() {
                match tag.as_str() {
                    Some(t) if is_valid_tag(t) => {}
                    _ => v.push(Violation::new(
                        format!("metadata.tags[{i}]"),
                        format!("{tag} is not a valid tag: use 1-63 of a-z, 0-9, ':', '+' and '#', separated by single dashes"),
                    )),
                }
            }
        }
        Some(_) => v.push(Violation::new(
            "metadata.tags",
            "metadata.tags must be a list of strings",
        )),
    }
    match meta.get("links") {
        None => {}
        Some(Value::Array(links)) => {
            for (i, link) in links.iter().enumerate() {
                let Some(link) = link.as_object() else {
                    v.push(Violation::new(
                        format!("metadata.links[{i}]"),
                        "a link must be an object with a url",
                    ));
                    continue;
                };
                if !link
                    .get("url")
                    .and_then(Value::as_str)
                    .is_some_and(|u| u.contains(':'))
                {
                    v.push(Violation::new(
                        format!("metadata.links[{i}].url"),
                        "a link needs a url, like https://example.com",
                    ));
                }
                for key in ["title", "icon", "type"] {
                    if link.get(key).is_some_and(|x| !x.is_string()) {
                        v.push(Violation::new(
                            format!("metadata.links[{i}].{key}"),
                            "must be a string",
                        ));
                    }
                }
            }
        }
        Some(_) => v.push(Violation::new(
            "metadata.links",
            "metadata.links must be a list",
        )),
    }
    (name, namespace)
}

fn check_string_map(
    value: Option<&Value>,
    field: &str,
    v: &mut Vec<Violation>,
    value_rule: Option<fn(&str) -> bool>,
) {
    let Some(value) = value else { return };
    let Some(map) = value.as_object() else {
        v.push(Violation::new(
            field,
            format!("{field} must be a map of strings"),
        ));
        return;
    };
    for (key, val) in map {
        if !is_valid_metadata_key(key) {
            v.push(Violation::new(
                format!("{field}.{key}"),
                format!(
                    "'{key}' is not a valid key: use [prefix/]name, the prefix a DNS subdomain"
                ),
            ));
        }
        match (val.as_str(), value_rule) {
            (None, _) => v.push(Violation::new(format!("{field}.{key}"), "the value must be a string")),
            (Some(s), Some(rule)) if !rule(s) => v.push(Violation::new(
                format!("{field}.{key}"),
                format!("'{s}' is not a valid label value: use up to 63 of A-Z, a-z, 0-9, '-', '_' and '.'"),
            )),
            _ => {}
        }
    }
}

fn check_spec<const COMPILE_SCHEMAS: bool>(
    kind: Kind,
    spec: &Map<String, Value>,
    namespace: &str,
    v: &mut Vec<Violation>,
    relations: &mut Vec<Relation>,
    owner: &mut Option<EntityRef>,
) {
    for f in spec_fields(kind) {
        let path = format!("spec.{}", f.name);
        let Some(value) = spec.get(f.name) else {
            if f.required {
                v.push(Violation::new(
                    &path,
                    format!("{path} is required for kind {kind}"),
                ));
            }
            continue;
        };
        let values: Vec<&str> = match (f.shape, value) {
            (Shape::Str, Value::String(s)) if !s.trim().is_empty() => vec![s.as_str()],
            (Shape::Str, _) => {
                v.push(Violation::new(
                    &path,
                    format!("{path} must be a non-empty string"),
                ));
                continue;
            }
            (Shape::StrList, Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(s) if !s.trim().is_empty() => out.push(s),
                        _ => v.push(Violation::new(
                            format!("{path}[{i}]"),
                            "must be a non-empty string",
                        )),
                    }
                }
                out
            }
            (Shape::StrList, _) => {
                v.push(Violation::new(
                    &path,
                    format!("{path} must be a list of strings"),
                ));
                continue;
            }
            (Shape::Object, Value::Object(_)) | (Shape::List, Value::Array(_)) => continue,
            (Shape::List, _) => {
                v.push(Violation::new(&path, format!("{path} must be a list")));
                continue;
            }
            (Shape::Schemas, value) => {
                super::template::check_parameter_schemas::<COMPILE_SCHEMAS>(value, &path, v);
                continue;
            }
            (Shape::Object, _) => {
                v.push(Violation::new(&path, format!("{path} must be an object")));
                continue;
            }
        };
        let Some((rel_type, default_kind)) = f.relation else {
            continue;
        };
        for (i, raw) in values.iter().enumerate() {
            let field = if matches!(f.shape, Shape::StrList) {
                format!("{path}[{i}]")
            } else {
                path.clone()
            };
            match EntityRef::parse(
                raw,
                RefDefaults {
                    kind: default_kind,
                    namespace,
                },
            ) {
                Ok(target) => {
                    if f.name == "owner" {
                        *owner = Some(target.clone());
                    }
                    relations.push(Relation { rel_type, target });
                }
                Err(message) => v.push(Violation::new(field, message)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn violations(value: Value) -> (String, Vec<String>) {
        match validate_entity(value) {
            Err(Error::Invalid {
                code, violations, ..
            }) => (
                code.to_string(),
                violations.into_iter().map(|v| v.field).collect(),
            ),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn component() -> Value {
        json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": "payments", "uid": "client-made", "etag": "x"},
            "spec": {"type": "service", "lifecycle": "production", "owner": "team-a",
                     "providesApis": ["payments-api"], "dependsOn": ["resource:payments-db"],
                     "system": "billing"},
            "relations": [{"type": "bogus", "targetRef": "x:y/z"}]
        })
    }

    #[test]
    fn a_valid_component_derives_ref_owner_and_relations() {
        let e = validate_entity(component()).expect("valid");
        assert_eq!(e.entity_ref.to_string(), "component:default/payments");
        assert_eq!(
            e.owner.as_ref().map(ToString::to_string).as_deref(),
            Some("group:default/team-a")
        );
        let rels: Vec<String> = e
            .relations
            .iter()
            .map(|r| format!("{}>{}", r.rel_type.as_str(), r.target))
            .collect();
        assert_eq!(
            rels,
            [
                "ownedBy>group:default/team-a",
                "partOf>system:default/billing",
                "providesApi>api:default/payments-api",
                "dependsOn>resource:default/payments-db"
            ]
        );
        assert!(
            e.body.get("relations").is_none(),
            "client relations are dropped"
        );
        let meta = e.body["metadata"].as_object().expect("object");
        assert!(meta.get("uid").is_none() && meta.get("etag").is_none());
        assert_eq!(meta["namespace"], "default");
    }

    #[test]
    fn the_content_hash_ignores_server_fields() {
        let a = validate_entity(component()).expect("valid");
        let mut other = component();
        other["metadata"]["uid"] = json!("another");
        assert_eq!(
            a.content_hash,
            validate_entity(other.clone()).expect("valid").content_hash
        );
        other["spec"]["lifecycle"] = json!("deprecated");
        assert_ne!(
            a.content_hash,
            validate_entity(other.clone()).expect("valid").content_hash
        );
    }

    #[test]
    fn unknown_kinds_have_their_own_code() {
        let (code, fields) = violations(
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Widget", "metadata": {"name": "x"}}),
        );
        assert_eq!(code, "unknown_kind");
        assert_eq!(fields, ["kind"]);
    }

    #[test]
    fn every_broken_rule_names_its_field() {
        let (code, fields) = violations(json!({
            "apiVersion": "example.com/v9",
            "kind": "Component",
            "metadata": {"name": "-bad-", "namespace": "Not_Valid", "tags": ["OK"], "labels": {"a": 1},
                         "links": [{"title": "no url"}]},
            "spec": {"type": "", "owner": "group:a/b/c", "dependsOn": ["nokind"]}
        }));
        assert_eq!(code, "invalid_entity");
        assert_eq!(
            fields,
            [
                "apiVersion",
                "metadata.name",
                "metadata.namespace",
                "metadata.labels.a",
                "metadata.tags[0]",
                "metadata.links[0].url",
                "spec.type",
                "spec.lifecycle",
                "spec.owner",
                "spec.dependsOn[0]"
            ]
        );
    }

    #[test]
    fn required_fields_per_kind() {
        let base = |kind: &str| json!({"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": {"name": "x"}, "spec": {}});
        let cases: [(&str, &[&str]); 7] = [
            ("Component", &["spec.type", "spec.lifecycle", "spec.owner"]),
            (
                "API",
                &[
                    "spec.type",
                    "spec.lifecycle",
                    "spec.owner",
                    "spec.definition",
                ],
            ),
            ("Resource", &["spec.type", "spec.owner"]),
            ("System", &["spec.owner"]),
            ("Domain", &["spec.owner"]),
            ("Group", &["spec.type", "spec.children"]),
            ("User", &["spec.memberOf"]),
        ];
        for (kind, expected) in cases {
            assert_eq!(violations(base(kind)).1, expected, "{kind}");
        }
        let (_, fields) = violations(
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "x"}}),
        );
        assert_eq!(fields, ["spec"]);
    }

    #[test]
    fn group_and_user_relations() {
        let g = validate_entity(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
            "metadata": {"name": "team-a", "namespace": "acme"},
            "spec": {"type": "team", "parent": "eng", "children": ["team-a1"], "members": ["alice"]}}))
        .expect("valid");
        let rels: Vec<String> = g
            .relations
            .iter()
            .map(|r| format!("{}>{}", r.rel_type.as_str(), r.target))
            .collect();
        assert_eq!(
            rels,
            [
                "childOf>group:acme/eng",
                "parentOf>group:acme/team-a1",
                "hasMember>user:acme/alice"
            ]
        );
        assert!(g.owner.is_none());
    }

    #[test]
    fn non_objects_are_refused() {
        assert_eq!(violations(json!(["a"])).1, [""]);
        assert_eq!(violations(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": "x", "spec": {}})).1[0], "metadata");
    }
}
