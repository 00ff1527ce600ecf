//! Reading `catalog-info.yaml` bodies: one or many YAML documents (JSON is YAML too).
//!
//! YAML aliases let a few bytes stand for many nodes (`&a [*b, *b, …]` nested a few levels is
//! the "billion laughs"): a 40 KB body can expand to millions of nodes. Values are therefore
//! built against a budget proportional to the body's size, and a body that expands past it is
//! refused before the nodes exist. Honest documents, aliases or not, stay far below it.

use crate::ErrorCode;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::Error;

/// What a node costs against the budget: one, plus the bytes of its string or key.
const NODE_COST: usize = 1;
/// Headroom over the body's own size, so that small bodies with a few aliases are fine.
const BUDGET_SLACK: usize = 64 * 1024;

/// Parses every document of a multi-document YAML (or JSON) body. Empty documents (a trailing
/// `---`) are skipped; a JSON array at the top level counts as one document per element.
pub fn parse_documents(body: &str) -> Result<Vec<Value>, Error> {
    let budget = Budget {
        left: Cell::new(body.len().saturating_mul(2).saturating_add(BUDGET_SLACK)),
        exhausted: Cell::new(false),
    };
    let mut out = Vec::new();
    for (i, document) in serde_yaml::Deserializer::from_str(body).enumerate() {
        let value = (&budget).deserialize(document).map_err(|e| {
            if budget.exhausted.get() {
                Error::bad_request(
                    ErrorCode::YamlTooLargeExpanded,
                    format!(
                        "document {i} expands (through YAML aliases) to far more than its {} bytes; write the values out instead of aliasing them",
                        body.len()
                    ),
                )
            } else {
                Error::bad_request(
                    ErrorCode::MalformedYaml,
                    format!("document {i} is not valid YAML: {e}"),
                )
            }
        })?;
        match value {
            Value::Null => {}
            Value::Array(items) => out.extend(items),
            other => out.push(other),
        }
    }
    Ok(out)
}

/// How much more may be built, shared by every node of one body.
struct Budget {
    left: Cell<usize>,
    exhausted: Cell<bool>,
}

impl Budget {
    fn charge<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        let cost = NODE_COST.saturating_add(bytes);
        match self.left.get().checked_sub(cost) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => {
                self.exhausted.set(true);
                Err(E::custom("the document expands past its budget"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for &Budget {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &Budget {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.charge(v.len())?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.charge(v.len())?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.charge(0)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.charge(0)?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.charge(key.len())?;
            let value = map.next_value_seed(self)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
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
    fn aliases_work_but_an_alias_bomb_is_refused_before_it_expands() {
        let docs = parse_documents("a: &x [1, 2]\nb: *x\n").expect("a modest alias");
        assert_eq!(docs[0]["b"], serde_json::json!([1, 2]));

        // The quadratic bomb: 2,000 lists of 2,000 aliases of a 2,000-element list, about
        // 40 KB of YAML standing for millions of nodes.
        let mut bomb = String::from("a: &a [");
        bomb.push_str(&vec!["x"; 2000].join(","));
        bomb.push_str("]\nb: [");
        bomb.push_str(&vec!["*a"; 2000].join(","));
        bomb.push_str("]\n");
        assert!(bomb.len() < 20_000, "{}", bomb.len());
        let err = parse_documents(&bomb).expect_err("refused");
        assert_eq!(err.code(), "yaml_too_large_expanded", "{err}");

        // Long strings aliased many times count by their bytes.
        let mut strings = format!("a: &s \"{}\"\nb: [", "y".repeat(10_000));
        strings.push_str(&vec!["*s"; 500].join(","));
        strings.push_str("]\n");
        let err = parse_documents(&strings).expect_err("refused");
        assert_eq!(err.code(), "yaml_too_large_expanded", "{err}");
    }

    #[test]
    fn values_keep_their_types() {
        let docs = parse_documents(
            "i: -3\nu: 18446744073709551615\nf: 1.5\nb: true\nn: ~\ns: text\n1: numeric key\n",
        )
        .expect("valid");
        assert_eq!(
            docs[0],
            serde_json::json!({"i": -3, "u": 18446744073709551615u64, "f": 1.5, "b": true, "n": null, "s": "text", "1": "numeric key"})
        );
    }

    #[test]
    fn malformed_yaml_names_the_document() {
        let err = parse_documents("a: 1\n---\nb: [unclosed\n").expect_err("malformed");
        assert_eq!(err.code(), "malformed_yaml");
        assert!(err.to_string().contains("document 1"), "{err}");
    }
}
