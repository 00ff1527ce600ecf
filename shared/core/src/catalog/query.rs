//! Backstage's catalog query contract: `filter`, `orderField`, `fullTextFilter*`, `fields`,
//! and opaque keyset cursors that carry the query, so that a client can page with the cursor
//! alone (as `@backstage/catalog-client` does).

use crate::ErrorCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;

/// One condition of a filter: the key (lower-case, dotted) and the accepted values
/// (lower-case), or `None` for "the key exists".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub key: String,
    pub values: Option<Vec<String>>,
}

/// One `filter` parameter: all its conditions must hold. A key repeated inside one filter
/// accepts any of its values, as in Backstage.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FilterClause {
    pub conditions: Vec<Condition>,
}

/// Repeated `filter` parameters: an entity matches when any clause holds. No clause matches
/// everything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FilterSet {
    pub clauses: Vec<FilterClause>,
}

impl FilterSet {
    /// Parses `filter` parameters of the form `key=value,key2,key3=value3`.
    pub fn parse<S: AsRef<str>>(params: &[S]) -> Result<Self, Error> {
        let mut clauses = Vec::new();
        for param in params {
            let mut clause = FilterClause::default();
            for part in param.as_ref().split(',') {
                let (key, value) = match part.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(v.trim())),
                    None => (part.trim(), None),
                };
                if key.is_empty() {
                    return Err(Error::bad_request(
                        ErrorCode::InvalidFilter,
                        format!(
                            "filter '{}' has an empty key; write key=value or key, joined by commas",
                            param.as_ref()
                        ),
                    ));
                }
                let key = key.to_lowercase();
                let value = value.map(str::to_lowercase);
                match clause.conditions.iter_mut().find(|c| c.key == key) {
                    Some(existing) => match (&mut existing.values, value) {
                        (Some(values), Some(v)) => values.push(v),
                        // `key` alone next to `key=value` is implied by the value.
                        (Some(_), None) => {}
                        (slot @ None, Some(v)) => *slot = Some(vec![v]),
                        (None, None) => {}
                    },
                    None => clause.conditions.push(Condition {
                        key,
                        values: value.map(|v| vec![v]),
                    }),
                }
            }
            if !clause.conditions.is_empty() {
                clauses.push(clause);
            }
        }
        Ok(Self { clauses })
    }

    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }
}

/// One sort directive, `field,asc|desc` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderField {
    pub field: String,
    pub descending: bool,
}

impl OrderField {
    pub fn parse(param: &str) -> Result<Self, Error> {
        let (field, order) = match param.split_once(',') {
            Some((f, o)) => (f.trim(), o.trim()),
            None => (param.trim(), "asc"),
        };
        let descending = match order.to_ascii_lowercase().as_str() {
            "asc" => false,
            "desc" => true,
            other => {
                return Err(Error::bad_request(
                    ErrorCode::InvalidOrder,
                    format!("orderField '{param}' has order '{other}'; use asc or desc"),
                ));
            }
        };
        if !is_valid_field_path(field) {
            return Err(Error::bad_request(
                ErrorCode::InvalidOrder,
                format!("orderField '{param}' does not name a field"),
            ));
        }
        Ok(Self {
            field: field.to_lowercase(),
            descending,
        })
    }
}

/// `fullTextFilterTerm` and `fullTextFilterFields`: a case-insensitive substring match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullTextFilter {
    pub term: String,
    pub fields: Vec<String>,
}

/// The fields a full-text term searches when the client names none. Backstage searches the
/// sort field (or `metadata.uid`), which finds nothing useful; paved searches what people type.
pub(super) const DEFAULT_FULL_TEXT_FIELDS: [&str; 4] = [
    "metadata.name",
    "metadata.title",
    "metadata.description",
    "metadata.tags",
];

impl FullTextFilter {
    pub fn new(term: &str, fields: Option<&str>) -> Result<Option<Self>, Error> {
        let term = term.trim().to_lowercase();
        if term.is_empty() {
            return Ok(None);
        }
        let fields: Vec<String> = match fields {
            Some(list) if !list.trim().is_empty() => list
                .split(',')
                .map(|f| f.trim().to_lowercase())
                .filter(|f| !f.is_empty())
                .collect(),
            _ => DEFAULT_FULL_TEXT_FIELDS
                .iter()
                .map(|f| (*f).to_owned())
                .collect(),
        };
        if let Some(bad) = fields.iter().find(|f| !is_valid_field_path(f)) {
            return Err(Error::bad_request(
                ErrorCode::InvalidQuery,
                format!("fullTextFilterFields names '{bad}', which is not a field path"),
            ));
        }
        Ok(Some(Self { term, fields }))
    }
}

/// A field path as the query contract writes it: dot-separated, no empty parts.
pub(super) fn is_valid_field_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('.')
        && !path.ends_with('.')
        && !path.contains("..")
        && !path.chars().any(char::is_whitespace)
}

/// Everything that selects and orders entities; a cursor carries it so that later pages need
/// nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EntityQuery {
    #[serde(rename = "f")]
    pub filter: FilterSet,
    #[serde(rename = "o")]
    pub order: Vec<OrderField>,
    #[serde(rename = "t")]
    pub full_text: Option<FullTextFilter>,
}

/// Where a page starts: strictly after, or strictly before, an item's sort key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    #[serde(rename = "b")]
    pub before: bool,
    /// The item's lower-cased values for each order field (`None`: it had none).
    #[serde(rename = "v")]
    pub values: Vec<Option<String>>,
    /// The item's entity ref key, the final tie-breaker.
    #[serde(rename = "k")]
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// Format version, so that old cursors are refused clearly rather than misread.
    #[serde(rename = "v")]
    version: u8,
    #[serde(rename = "q")]
    query: EntityQuery,
    #[serde(rename = "a")]
    anchor: Anchor,
}

const CURSOR_VERSION: u8 = 1;

/// Which page of a query to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub offset: usize,
    pub anchor: Option<Anchor>,
}

impl PageRequest {
    pub fn first(limit: usize) -> Self {
        Self {
            limit,
            offset: 0,
            anchor: None,
        }
    }
}

/// Encodes a cursor that resumes `query` at `anchor`.
pub(super) fn encode_cursor(query: &EntityQuery, anchor: Anchor) -> String {
    let cursor = Cursor {
        version: CURSOR_VERSION,
        query: query.clone(),
        anchor,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursor).unwrap_or_default())
}

/// Decodes a cursor made by [`encode_cursor`], refusing anything else.
pub fn decode_cursor(cursor: &str) -> Result<(EntityQuery, Anchor), Error> {
    let bad = || {
        Error::bad_request(
            ErrorCode::InvalidCursor,
            "the cursor is not one this catalog issued; start again without it",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if c.version != CURSOR_VERSION || c.anchor.values.len() != c.query.order.len() {
        return Err(bad());
    }
    Ok((c.query, c.anchor))
}

/// One page of results, as entity slots of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryPage {
    pub ids: Vec<u32>,
    pub total: usize,
    pub next_cursor: Option<String>,
    pub prev_cursor: Option<String>,
}

/// Finds the value at a dotted `path`, where object keys may themselves contain dots
/// (`metadata.annotations.backstage.io/source-location`). Keys match case-insensitively,
/// longest first. Returns the matched key path with the value.
pub fn lookup_path<'a>(value: &'a Value, path: &str) -> Option<(Vec<&'a str>, &'a Value)> {
    if path.is_empty() {
        return Some((Vec::new(), value));
    }
    let obj = value.as_object()?;
    let mut best: Option<(Vec<&str>, &Value)> = None;
    for (key, child) in obj {
        let rest = if path.len() == key.len() && path.eq_ignore_ascii_case(key) {
            Some("")
        } else if path.len() > key.len()
            && path.as_bytes()[key.len()] == b'.'
            && path[..key.len()].eq_ignore_ascii_case(key)
        {
            Some(&path[key.len() + 1..])
        } else {
            None
        };
        let longer = best
            .as_ref()
            .is_none_or(|(k, _)| k.first().map_or(0, |s| s.len()) < key.len());
        if let Some((mut keys, found)) = rest
            .filter(|_| longer)
            .and_then(|rest| lookup_path(child, rest))
        {
            keys.insert(0, key.as_str());
            best = Some((keys, found));
        }
    }
    best
}

/// Keeps only the named fields of an entity (the `fields` parameter). Unknown fields are
/// simply absent from the result, as in Backstage.
pub fn project_fields(entity: &Value, fields: &[String]) -> Value {
    let mut out = Map::new();
    for field in fields {
        let Some((keys, found)) = lookup_path(entity, field) else {
            continue;
        };
        let mut node = &mut out;
        for (i, key) in keys.iter().enumerate() {
            if i + 1 == keys.len() {
                node.insert((*key).to_owned(), found.clone());
            } else {
                let next = node
                    .entry((*key).to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !next.is_object() {
                    *next = Value::Object(Map::new());
                }
                let Some(map) = next.as_object_mut() else {
                    break;
                };
                node = map;
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn filters_and_within_or_across() {
        let f = FilterSet::parse(&[
            "kind=Component,spec.type=service",
            "kind=api,kind=system",
            "metadata.annotations.x",
        ])
        .expect("valid");
        assert_eq!(f.clauses.len(), 3);
        assert_eq!(
            f.clauses[0].conditions[0],
            Condition {
                key: "kind".into(),
                values: Some(vec!["component".into()])
            }
        );
        assert_eq!(
            f.clauses[1].conditions.len(),
            1,
            "a repeated key ORs its values"
        );
        assert_eq!(
            f.clauses[1].conditions[0].values,
            Some(vec!["api".into(), "system".into()])
        );
        assert_eq!(f.clauses[2].conditions[0].values, None);
        assert!(FilterSet::parse(&["=x"]).is_err());
    }

    #[test]
    fn order_fields_parse() {
        assert_eq!(
            OrderField::parse("metadata.name,desc").expect("ok"),
            OrderField {
                field: "metadata.name".into(),
                descending: true
            }
        );
        assert!(!OrderField::parse("metadata.name").expect("ok").descending);
        assert_eq!(
            OrderField::parse("metadata.name,up")
                .expect_err("bad")
                .code(),
            "invalid_order"
        );
    }

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        let q = EntityQuery {
            order: vec![OrderField::parse("metadata.name").expect("ok")],
            ..Default::default()
        };
        let a = Anchor {
            before: false,
            values: vec![Some("x".into())],
            key: "component:default/x".into(),
        };
        let c = encode_cursor(&q, a.clone());
        assert_eq!(decode_cursor(&c).expect("valid"), (q, a));
        assert_eq!(
            decode_cursor("not-a-cursor").expect_err("bad").code(),
            "invalid_cursor"
        );
        assert_eq!(
            decode_cursor(&URL_SAFE_NO_PAD.encode(b"{\"v\":9}"))
                .expect_err("bad")
                .code(),
            "invalid_cursor"
        );
    }

    #[test]
    fn projection_handles_keys_with_dots() {
        let e = json!({"kind": "Component", "metadata": {"name": "a", "annotations": {"backstage.io/x": "1", "y": "2"}}, "spec": {"owner": "t"}});
        let p = project_fields(
            &e,
            &[
                "kind".into(),
                "metadata.annotations.backstage.io/x".into(),
                "nope".into(),
            ],
        );
        assert_eq!(
            p,
            json!({"kind": "Component", "metadata": {"annotations": {"backstage.io/x": "1"}}})
        );
    }
}
