//! Golden paths: Backstage scaffolder templates (`kind: Template`) whose `spec.type` names
//! the resource type paved provisions and whose `spec.parameters` are JSON Schemas (one per
//! form page) that a request's parameters must satisfy.

use serde_json::Value;

use crate::error::{Error, Violation};

/// The golden paths paved ships; `paved up` adds those missing from the catalog at start-up.
pub const DEFAULT_TEMPLATES: &str = include_str!("../../templates/golden-paths.yaml");

/// The parameter schemas of a template spec's `parameters` (an object, or a list of them).
fn schemas(parameters: &Value) -> Vec<&Value> {
    match parameters {
        Value::Array(pages) => pages.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    }
}

/// Checks that `spec.parameters` holds JSON Schemas that compile (with `COMPILE`; without,
/// only that they are objects). Remote `$ref`s are not resolved: a template never makes paved
/// fetch a URL.
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
        } else if COMPILE && let Err(e) = jsonschema::validator_for(schema) {
            v.push(Violation::new(
                &field,
                format!("is not a valid JSON Schema: {e}"),
            ));
        }
    }
}

/// Checks a request's parameters against every parameter schema of a template entity (its
/// JSON as the catalog serves it). Each violation names the parameter's JSON pointer.
pub fn validate_parameters(template: &Value, parameters: &Value) -> Result<(), Error> {
    let mut violations = Vec::new();
    for schema in schemas(template.pointer("/spec/parameters").unwrap_or(&Value::Null)) {
        let validator = jsonschema::validator_for(schema).map_err(|e| Error::Invalid {
            code: "invalid_template",
            message: format!("the template's parameter schema does not compile: {e}"),
            violations: Vec::new(),
        })?;
        for error in validator.iter_errors(parameters) {
            let pointer = error.instance_path().to_string();
            let field = if pointer.is_empty() {
                "parameters".to_owned()
            } else {
                format!("parameters{}", pointer.replace('/', "."))
            };
            violations.push(Violation::new(field, error.to_string()));
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid {
            code: "invalid_parameters",
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
}
