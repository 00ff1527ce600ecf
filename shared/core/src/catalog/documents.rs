//! Reading `catalog-info.yaml` bodies: one or many YAML documents (JSON is YAML too).

use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;

/// Parses every document of a multi-document YAML (or JSON) body. Empty documents (a trailing
/// `---`) are skipped; a JSON array at the top level counts as one document per element.
pub fn parse_documents(body: &str) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for (i, document) in serde_yaml::Deserializer::from_str(body).enumerate() {
        let value = Value::deserialize(document).map_err(|e| {
            Error::bad_request(
                "malformed_yaml",
                format!("document {i} is not valid YAML: {e}"),
            )
        })?;
        match value {
            Value::Null => {}
            Value::Array(items) => out.extend(items),
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_many_documents_and_skips_empty_ones() {
        let docs = parse_documents("a: 1\n---\nb: 2\n---\n").expect("valid");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["b"], 2);
    }

    #[test]
    fn json_arrays_are_documents() {
        assert_eq!(
            parse_documents(r#"[{"a":1},{"a":2}]"#)
                .expect("valid")
                .len(),
            2
        );
    }

    #[test]
    fn malformed_yaml_names_the_document() {
        let err = parse_documents("a: 1\n---\nb: [unclosed\n").expect_err("malformed");
        assert_eq!(err.code(), "malformed_yaml");
        assert!(err.to_string().contains("document 1"), "{err}");
    }
}
