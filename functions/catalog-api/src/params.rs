//! Query-string parsing for the Backstage contract, which repeats keys (`filter=a&filter=b`)
//! and refuses keys it does not know, so a typo is an error rather than a silent no-op.

use paved_core::Error;
use paved_core::ErrorCode;
use paved_core::catalog::{
    EntityQuery, FilterSet, FullTextFilter, OrderField, PageRequest, decode_cursor,
};

/// The raw parameters, in order.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, Error> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((key, _)) = pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            return Err(Error::bad_request(
                ErrorCode::UnknownQueryParameter,
                format!(
                    "unknown query parameter '{key}'; this endpoint takes {}",
                    allowed.join(", ")
                ),
            ));
        }
        Ok(Self(pairs))
    }

    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(crate) fn one(&self, key: &str) -> Result<Option<&str>, Error> {
        match self.all(key).as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => Err(Error::bad_request(
                ErrorCode::InvalidQuery,
                format!("'{key}' may be given once"),
            )),
        }
    }

    pub(crate) fn number(&self, key: &str, max: usize) -> Result<Option<usize>, Error> {
        let Some(raw) = self.one(key)? else {
            return Ok(None);
        };
        let n: usize = raw.trim().parse().map_err(|_| {
            Error::bad_request(
                ErrorCode::InvalidQuery,
                format!("'{key}' must be a whole number, not '{raw}'"),
            )
        })?;
        if n > max {
            return Err(Error::bad_request(
                ErrorCode::InvalidQuery,
                format!("'{key}' may be at most {max}"),
            ));
        }
        Ok(Some(n))
    }

    /// `fields=a,b` (possibly repeated), as Backstage's client sends it.
    pub(crate) fn fields(&self) -> Option<Vec<String>> {
        let fields: Vec<String> = self
            .all("fields")
            .iter()
            .flat_map(|f| f.split(','))
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .collect();
        (!fields.is_empty()).then_some(fields)
    }

    pub(crate) fn filter(&self) -> Result<FilterSet, Error> {
        FilterSet::parse(&self.all("filter"))
    }
}

/// The query a cursor carries, resumed at its anchor.
fn resume(cursor: &str, limit: usize) -> Result<(EntityQuery, PageRequest), Error> {
    let (query, anchor) = decode_cursor(cursor)?;
    Ok((
        query,
        PageRequest {
            limit,
            offset: 0,
            anchor: Some(anchor),
        },
    ))
}

pub(crate) const MAX_LIMIT: usize = 10_000;
pub(crate) const DEFAULT_QUERY_LIMIT: usize = 20;

pub(crate) const BY_QUERY_PARAMS: &[&str] = &[
    "filter",
    "fields",
    "limit",
    "offset",
    "orderField",
    "cursor",
    "fullTextFilterTerm",
    "fullTextFilterFields",
    "totalItems",
];

/// Reads `/entities/by-query` parameters: either a fresh query, or a cursor that carries one.
pub(crate) fn by_query(params: &Params) -> Result<(EntityQuery, PageRequest), Error> {
    let limit = params
        .number("limit", MAX_LIMIT)?
        .unwrap_or(DEFAULT_QUERY_LIMIT);
    if let Some(cursor) = params.one("cursor")? {
        for key in [
            "filter",
            "orderField",
            "fullTextFilterTerm",
            "fullTextFilterFields",
            "offset",
        ] {
            if !params.all(key).is_empty() {
                return Err(Error::bad_request(
                    ErrorCode::InvalidQuery,
                    format!(
                        "'{key}' cannot be combined with 'cursor': the cursor already carries the query"
                    ),
                ));
            }
        }
        return resume(cursor, limit);
    }
    let order = params
        .all("orderField")
        .into_iter()
        .map(OrderField::parse)
        .collect::<Result<_, _>>()?;
    let full_text = match params.one("fullTextFilterTerm")? {
        Some(term) => FullTextFilter::new(term, params.one("fullTextFilterFields")?)?,
        None => None,
    };
    let query = EntityQuery {
        filter: params.filter()?,
        order,
        full_text,
    };
    let offset = params.number("offset", usize::MAX)?.unwrap_or(0);
    Ok((
        query,
        PageRequest {
            limit,
            offset,
            anchor: None,
        },
    ))
}

pub(crate) const LIST_PARAMS: &[&str] = &["filter", "fields", "limit", "offset", "after", "order"];

/// Reads the legacy `GET /entities` parameters (`order=asc:field`, `after=<cursor>`).
pub(crate) fn list(params: &Params) -> Result<(EntityQuery, PageRequest), Error> {
    let limit = params.number("limit", usize::MAX)?.unwrap_or(usize::MAX);
    if let Some(after) = params.one("after")? {
        return resume(after, limit);
    }
    let order = params
        .all("order")
        .into_iter()
        .map(|o| match o.split_once(':') {
            Some((dir, field)) => OrderField::parse(&format!("{field},{dir}")),
            None => OrderField::parse(o),
        })
        .collect::<Result<_, _>>()?;
    let query = EntityQuery {
        filter: params.filter()?,
        order,
        full_text: None,
    };
    Ok((
        query,
        PageRequest {
            limit,
            offset: params.number("offset", usize::MAX)?.unwrap_or(0),
            anchor: None,
        },
    ))
}
