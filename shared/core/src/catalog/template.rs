//! Golden paths: Backstage scaffolder templates (`kind: Template`) whose `spec.type` names
//! the resource type paved provisions and whose `spec.parameters` are JSON Schemas (one per
//! form page) that a request's parameters must satisfy.

use crate::ErrorCode;
use serde_json::Value;

use crate::error::{Error, Violation};

/// Where a parameter schema is compiled from; relative `$ref`s resolve against it, and the
/// loader below refuses them.
const SCHEMA_URL: &str = "paved:///template-parameters.json";

/// Refuses every schema outside the template: a template never makes paved fetch a URL or
/// read a file (boon's default loader would read `file:` URLs). The JSON Schema meta-schemas
/// are built into boon and need no loading.
struct NoExternalSchemas;

impl boon::UrlLoader for NoExternalSchemas {
    fn load(&self, url: &str) -> Result<Value, Box<dyn std::error::Error>> {
        Err(format!("{url} is outside the template; paved resolves no external $ref").into())
    }
}

/// One parameter schema, compiled (and checked against its draft's meta-schema: draft
/// 2020-12 unless `$schema` names another). Formats are annotations in 2019-09 and later,
/// assertions before, as the drafts say.
struct CompiledSchema {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl CompiledSchema {
    fn compile(schema: &Value) -> Result<Self, String> {
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler.use_loader(Box::new(NoExternalSchemas));
        compiler
            .add_resource(SCHEMA_URL, schema.clone())
            .map_err(|e| e.to_string())?;
        let index = compiler
            .compile(SCHEMA_URL, &mut schemas)
            .map_err(|e| match e {
                // The schema breaks its meta-schema: say where, one line per rule.
                boon::CompileError::ValidationError { src, .. } => leaf_errors(&src)
                    .into_iter()
                    .map(|(at, why)| format!("at '{at}': {why}"))
                    .collect::<Vec<_>>()
                    .join("; "),
                other => {
                    // boon keeps the why (our loader's refusal, say) in the source chain.
                    let mut message = other.to_string();
                    let mut source = std::error::Error::source(&other);
                    while let Some(cause) = source {
                        message = format!("{message}: {cause}");
                        source = cause.source();
                    }
                    message
                }
            })?;
        Ok(Self { schemas, index })
    }

    /// Each broken rule as (instance JSON pointer, message).
    fn violations(&self, instance: &Value) -> Vec<(String, String)> {
        match self.schemas.validate(instance, self.index) {
            Ok(()) => Vec::new(),
            Err(e) => leaf_errors(&e),
        }
    }
}

/// The innermost errors of boon's error tree (its outer levels only group them).
fn leaf_errors(e: &boon::ValidationError<'_, '_>) -> Vec<(String, String)> {
    fn walk(e: &boon::ValidationError<'_, '_>, out: &mut Vec<(String, String)>) {
        if e.causes.is_empty() {
            out.push((e.instance_location.to_string(), e.kind.to_string()));
        }
        for cause in &e.causes {
            walk(cause, out);
        }
    }
    let mut out = Vec::new();
    walk(e, &mut out);
    out
}

/// The golden paths paved ships; `paved up` adds those missing from the catalog at start-up.
pub const DEFAULT_TEMPLATES: &str = include_str!("golden-paths.yaml");

/// The parameter schemas of a template spec's `parameters` (an object, or a list of them).
fn schemas(parameters: &Value) -> Vec<&Value> {
    match parameters {
        Value::Array(pages) => pages.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    }
}

/// Checks that `spec.parameters` holds JSON Schemas that compile (with `COMPILE`; without,
/// only that they are objects). External `$ref`s are refused ([`NoExternalSchemas`]).
pub(crate) fn check_parameter_schemas<const COMPILE: bool>(
    parameters: &Value,
    path: &str,
    v: &mut Vec<Violation>,
) {
    if !matches!(parameters, Value::Object(_) | Value::Array(_)) {
        v.push(Violation::new(
            path,
            format!("{path} must be a JSON Schema object or a list of them"),
        ));
        return;
    }
    for (i, schema) in schemas(parameters).into_iter().enumerate() {
        let field = if parameters.is_array() {
            format!("{path}[{i}]")
        } else {
            path.to_owned()
        };
        if !schema.is_object() {
            v.push(Violation::new(&field, "must be a JSON Schema object"));
        } else if COMPILE && let Err(e) = CompiledSchema::compile(schema) {
            v.push(Violation::new(
                &field,
                format!("is not a valid JSON Schema: {e}"),
            ));
        }
    }
}

/// A golden path as a request reads it, parsed once from the template entity's JSON: the
/// resource type a driver provisions, the steps in order, the environments it allows (for the
/// guardrails) and the parameter schemas.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    name: String,
    resource_type: String,
    steps: Vec<String>,
    environments: Value,
    parameters: Value,
    reconcile: crate::resources::ReconcileSettings,
}

impl Template {
    /// The template in `entity` (its JSON as the catalog serves it). A template without a
    /// resource type or without steps cannot serve a request: 422 `invalid_template`.
    pub fn from_entity(entity: &Value) -> Result<Self, Error> {
        let invalid = |message: String| Error::Invalid {
            code: ErrorCode::InvalidTemplate,
            message,
            violations: Vec::new(),
        };
        let name = entity
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let resource_type = entity
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid(format!("template {name} has no spec.type")))?
            .to_owned();
        let steps: Vec<String> = entity
            .pointer("/spec/steps")
            .and_then(Value::as_array)
            .map(|steps| {
                steps
                    .iter()
                    .filter_map(|s| s.get("id").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if steps.is_empty() {
            return Err(invalid(format!("template {name} has no steps")));
        }
        let reconcile =
            crate::resources::ReconcileSettings::from_template(entity.pointer("/spec/reconcile"))
                .map_err(|e| invalid(format!("template {name}: {e}")))?;
        Ok(Self {
            reconcile,
            name,
            resource_type,
            steps,
            environments: entity
                .pointer("/spec/environments")
                .cloned()
                .unwrap_or_else(|| Value::Array(Vec::new())),
            parameters: entity
                .pointer("/spec/parameters")
                .cloned()
                .unwrap_or(Value::Null),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The resource type a driver provisions (`spec.type`).
    pub fn resource_type(&self) -> &str {
        &self.resource_type
    }

    /// The provisioning steps' ids, in order.
    pub fn steps(&self) -> &[String] {
        &self.steps
    }

    /// How the reconciliation loop keeps what this template makes (`spec.reconcile`).
    pub fn reconcile(&self) -> &crate::resources::ReconcileSettings {
        &self.reconcile
    }

    /// `spec.environments` as written (empty: the guardrails' defaults apply).
    pub fn environments(&self) -> &Value {
        &self.environments
    }

    /// `parameters` with the `default` of each top-level property they leave out.
    pub fn with_defaults(&self, mut parameters: Value) -> Value {
        if let Value::Object(params) = &mut parameters {
            for page in schemas(&self.parameters) {
                if let Some(Value::Object(props)) = page.get("properties") {
                    for (name, schema) in props {
                        if let Some(default) = schema.get("default") {
                            params
                                .entry(name.clone())
                                .or_insert_with(|| default.clone());
                        }
                    }
                }
            }
        }
        parameters
    }

    /// Checks `parameters` against every parameter schema (see [`validate_parameters`]).
    pub fn validate(&self, parameters: &Value) -> Result<(), Error> {
        validate_against(&self.parameters, parameters)
    }
}

/// Checks a request's parameters against every parameter schema of a template entity (its
/// JSON as the catalog serves it). Each violation names the parameter's JSON pointer.
pub fn validate_parameters(template: &Value, parameters: &Value) -> Result<(), Error> {
    validate_against(
        template.pointer("/spec/parameters").unwrap_or(&Value::Null),
        parameters,
    )
}

fn validate_against(schema_list: &Value, parameters: &Value) -> Result<(), Error> {
    let mut violations = Vec::new();
    for schema in schemas(schema_list) {
        let compiled = CompiledSchema::compile(schema).map_err(|e| Error::Invalid {
            code: ErrorCode::InvalidTemplate,
            message: format!("the template's parameter schema does not compile: {e}"),
            violations: Vec::new(),
        })?;
        for (pointer, message) in compiled.violations(parameters) {
            let field = if pointer.is_empty() {
                "parameters".to_owned()
            } else {
                format!("parameters{}", pointer.replace('/', "."))
            };
            violations.push(Violation::new(field, message));
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid {
            code: ErrorCode::InvalidParameters,
            message: format!(
                "the parameters break the template's schema in {} place(s)",
                violations.len()
            ),
            violations,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::catalog::{Kind, parse_documents, validate_entity};

    fn templates() -> Vec<Value> {
        parse_documents(DEFAULT_TEMPLATES).expect("the shipped templates parse")
    }

    #[test]
    fn the_shipped_golden_paths_are_valid_templates() {
        let mut types = Vec::new();
        for t in templates() {
            let valid = validate_entity(t.clone()).unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(valid.kind, Kind::Template);
            types.push(t["spec"]["type"].as_str().expect("type").to_owned());
        }
        types.sort();
        assert_eq!(
            types,
            [
                "dynamodb-table",
                "postgres-database",
                "service",
                "sqs-queue"
            ]
        );
    }

    #[test]
    fn parameters_are_checked_against_the_schema() {
        let pg = templates()
            .into_iter()
            .find(|t| t["spec"]["type"] == "postgres-database")
            .expect("template");
        validate_parameters(&pg, &json!({"storage_gb": 10})).expect("valid");
        let err = validate_parameters(
            &pg,
            &json!({"storage_gb": "ten", "extensions": ["postgis", 7]}),
        )
        .expect_err("invalid");
        let Error::Invalid {
            code, violations, ..
        } = err
        else {
            panic!("invalid")
        };
        assert_eq!(code, "invalid_parameters");
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert!(fields.contains(&"parameters.storage_gb"), "{fields:?}");
        assert!(fields.contains(&"parameters.extensions.1"), "{fields:?}");
    }

    #[test]
    fn broken_schemas_and_wrong_api_versions_are_refused() {
        let mut t = templates().remove(0);
        t["spec"]["parameters"] =
            json!([{"type": "object", "properties": {"x": {"type": "no-such-type"}}}]);
        let Err(Error::Invalid { violations, .. }) = validate_entity(t.clone()) else {
            panic!("refused")
        };
        assert_eq!(violations[0].field, "spec.parameters[0]");
        t["apiVersion"] = json!("backstage.io/v1alpha1");
        let Err(Error::Invalid { violations, .. }) = validate_entity(t) else {
            panic!("refused")
        };
        assert_eq!(violations[0].field, "apiVersion");
    }

    /// A stored template is not compiled again when the catalog loads (it was on write); a
    /// schema that stopped compiling is reported on the first request against it instead.
    #[test]
    fn a_stored_template_is_checked_for_shape_and_its_schema_when_it_is_used() {
        let mut t = templates().remove(0);
        t["spec"]["parameters"] =
            json!([{"type": "object", "properties": {"x": {"type": "no-such-type"}}}]);
        let stored = crate::catalog::entity::validate_stored_entity(t.clone()).expect("loads");
        assert_eq!(stored.kind, Kind::Template);
        let Err(Error::Invalid { code, .. }) = validate_parameters(&t, &json!({"x": 1})) else {
            panic!("refused")
        };
        assert_eq!(code, "invalid_template");

        t["spec"]["parameters"] = json!(["not a schema"]);
        let Err(Error::Invalid { violations, .. }) =
            crate::catalog::entity::validate_stored_entity(t)
        else {
            panic!("refused")
        };
        assert_eq!(violations[0].field, "spec.parameters[0]");
    }

    /// A template may not point paved at other documents: `file:` and remote `$ref`s are
    /// refused when the template is written, and nothing is read or fetched.
    #[test]
    fn external_refs_are_refused_not_loaded() {
        let dir = std::env::temp_dir().join(format!("paved-ref-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let local = dir.join("schema.json");
        std::fs::write(&local, r#"{"type": "string"}"#).expect("write");
        for target in [
            format!("file://{}", local.display()),
            "https://example.com/schema.json".to_owned(),
            "other.json".to_owned(),
        ] {
            let mut t = templates().remove(0);
            t["spec"]["parameters"] =
                json!({"type": "object", "properties": {"x": {"$ref": target}}});
            let Err(Error::Invalid { violations, .. }) = validate_entity(t) else {
                panic!("{target} refused")
            };
            assert_eq!(violations[0].field, "spec.parameters", "{target}");
            assert!(
                violations[0].message.contains("no external $ref"),
                "{target}: {}",
                violations[0].message
            );
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_broken_schema_says_where_it_breaks_the_meta_schema() {
        let message = CompiledSchema::compile(
            &json!({"type": "object", "properties": {"x": {"type": "no-such-type"}}}),
        )
        .err()
        .expect("refused");
        assert!(message.contains("/properties/x/type"), "{message}");
    }

    #[test]
    fn every_broken_rule_is_reported_with_its_pointer() {
        let schema = json!({
            "type": "object",
            "required": ["name"],
            "additionalProperties": false,
            "properties": {"name": {"type": "string", "pattern": "^[a-z]+$"}, "tags": {"type": "array", "items": {"enum": ["a", "b"]}}},
        });
        let compiled = CompiledSchema::compile(&schema).expect("compiles");
        assert!(compiled.violations(&json!({"name": "ok"})).is_empty());
        let mut pointers: Vec<String> = compiled
            .violations(&json!({"tags": ["a", "z"], "extra": 1}))
            .into_iter()
            .map(|(at, _)| at)
            .collect();
        pointers.sort();
        assert_eq!(
            pointers,
            ["", "", "/tags/1"],
            "missing name, extra property, bad tag"
        );
        let bad_name = compiled.violations(&json!({"name": "Not Lower"}));
        assert_eq!(bad_name.len(), 1);
        assert_eq!(bad_name[0].0, "/name");
    }

    /// boon runs ECMA-262 patterns on the `regex` crate, which has no look-around: such a
    /// schema is refused when the template is written, saying why, never half-checked.
    #[test]
    fn a_pattern_with_look_ahead_is_refused_with_the_reason() {
        let message =
            CompiledSchema::compile(&json!({"type": "string", "pattern": "^(?=.*[a-z]).+$"}))
                .err()
                .expect("refused");
        assert!(message.contains("pattern"), "{message}");
    }
}
