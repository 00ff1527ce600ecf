//! Read handlers. They answer from the in-memory read model: a lookup, then pre-rendered JSON
//! bytes copied into the response.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use paved_core::Error;
use paved_core::ErrorCode;
use paved_core::catalog::{
    CatalogIndex, EntityQuery, EntityRef, EntityView, FilterSet, OrderField, PageRequest,
    RefDefaults, project_fields,
};
use paved_http::{ApiError, Caller, read_body};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Instant;

use crate::CatalogState;
use crate::params::{self, Params};

pub(crate) fn json_bytes(body: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Adds `Server-Timing: app;dur=<ms>`: how long the handler took from its start, read lock
/// and rendering included (the HTTP stack, authentication and queueing before it are not).
/// `scripts/bench-catalog-scale.sh` reports its percentiles as the server-side latency.
fn server_timing(mut response: Response, started: Instant) -> Response {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={ms:.3}")) {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("server-timing"), value);
    }
    response
}

/// One entity, with its etag as the `ETag` header for `If-Match`.
pub(crate) fn entity_response(view: &EntityView) -> Response {
    with_etag(view.json.bytes(), &view.etag)
}

/// One entity of the read model by slot, rendered for this answer.
fn entity_response_of(index: &CatalogIndex, id: u32) -> Option<Response> {
    Some(with_etag(index.json(id)?, index.etag(id)?))
}

fn with_etag(json: Bytes, etag: &str) -> Response {
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json,
    )
        .into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// Writes `[e1,e2,...]` into `out`, each entity whole or cut down to `fields`.
fn write_items(out: &mut Vec<u8>, index: &CatalogIndex, ids: &[u32], fields: Option<&[String]>) {
    out.push(b'[');
    let mut first = true;
    for &id in ids {
        if !first {
            out.push(b',');
        }
        let at = out.len();
        let written = match fields {
            None => index.write_json(id, out),
            Some(fields) => index.json(id).is_some_and(|json| {
                write_projected(out, &json, fields);
                true
            }),
        };
        if written {
            first = false;
        } else {
            out.truncate(at.saturating_sub(usize::from(!first)));
        }
    }
    out.push(b']');
}

fn write_projected(out: &mut Vec<u8>, json: &[u8], fields: &[String]) {
    let full: Value = serde_json::from_slice(json).unwrap_or(Value::Null);
    out.extend_from_slice(&serde_json::to_vec(&project_fields(&full, fields)).unwrap_or_default());
}

/// Backstage's paged entity query.
#[utoipa::path(get, path = "/api/catalog/entities/by-query", tag = "catalog",
    params(
        ("filter" = Option<Vec<String>>, Query, description = "Repeatable; OR across parameters, AND within one (key=value or key, comma-separated)"),
        ("fields" = Option<String>, Query, description = "Comma-separated field paths to return"),
        ("limit" = Option<usize>, Query, description = "Page size (default 20, at most 10000)"),
        ("offset" = Option<usize>, Query, description = "Items to skip on the first page"),
        ("orderField" = Option<Vec<String>>, Query, description = "Repeatable: field,asc|desc"),
        ("cursor" = Option<String>, Query, description = "A nextCursor or prevCursor from an earlier page; carries the query"),
        ("fullTextFilterTerm" = Option<String>, Query, description = "Case-insensitive substring"),
        ("fullTextFilterFields" = Option<String>, Query, description = "Comma-separated fields the term searches (default: metadata.name, title, description, tags)"),
    ),
    responses((status = 200, description = "{items, totalItems, pageInfo: {nextCursor?, prevCursor?}}"),
              (status = 400, description = "Bad filter, order, cursor or unknown parameter", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn query_entities(
    State(state): State<CatalogState>,
    _caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let params = Params::parse(raw.as_deref(), params::BY_QUERY_PARAMS)?;
    let (query, page) = params::by_query(&params)?;
    let fields = params.fields();
    let index = state.repo.read();
    let result = index.query(&query, &page);
    let mut out = Vec::with_capacity(256 + result.ids.len() * 1024);
    out.extend_from_slice(b"{\"items\":");
    write_items(&mut out, &index, &result.ids, fields.as_deref());
    drop(index);
    let page_info = json!({"nextCursor": result.next_cursor, "prevCursor": result.prev_cursor});
    let page_info = strip_nulls(page_info);
    out.extend_from_slice(
        format!(
            ",\"totalItems\":{},\"pageInfo\":{}}}",
            result.total, page_info
        )
        .as_bytes(),
    );
    Ok(server_timing(json_bytes(out), started))
}

fn strip_nulls(mut value: Value) -> Value {
    if let Some(map) = value.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    value
}

/// Backstage's legacy entity list.
#[utoipa::path(get, path = "/api/catalog/entities", tag = "catalog",
    params(("filter" = Option<Vec<String>>, Query, description = "As in by-query"),
           ("fields" = Option<String>, Query), ("limit" = Option<usize>, Query), ("offset" = Option<usize>, Query),
           ("order" = Option<Vec<String>>, Query, description = "asc:field or desc:field"),
           ("after" = Option<String>, Query, description = "Cursor from the Link header")),
    responses((status = 200, description = "An array of entities")), security(("bearer" = [])))]
pub(crate) async fn list_entities(
    State(state): State<CatalogState>,
    _caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(raw.as_deref(), params::LIST_PARAMS)?;
    let (query, page) = params::list(&params)?;
    let fields = params.fields();
    let index = state.repo.read();
    let result = index.query(&query, &page);
    let mut out = Vec::with_capacity(16 + result.ids.len() * 1024);
    write_items(&mut out, &index, &result.ids, fields.as_deref());
    drop(index);
    let mut response = json_bytes(out);
    if let Some(next) = result
        .next_cursor
        .and_then(|c| HeaderValue::from_str(&format!("<?after={c}>; rel=\"next\"")).ok())
    {
        response.headers_mut().insert(header::LINK, next);
    }
    Ok(response)
}

/// One entity by kind, namespace and name (case-insensitive).
#[utoipa::path(get, path = "/api/catalog/entities/by-name/{kind}/{namespace}/{name}", tag = "catalog",
    params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The entity, with an ETag header"),
              (status = 404, description = "No such entity", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn entity_by_name(
    State(state): State<CatalogState>,
    _caller: Caller,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let key = format!("{kind}:{namespace}/{name}").to_lowercase();
    let index = state.repo.read();
    match index
        .id_by_key(&key)
        .and_then(|id| entity_response_of(&index, id))
    {
        Some(response) => Ok(response),
        None => Err(Error::NotFound(format!("{kind}:{namespace}/{name}")).into()),
    }
}

/// One entity by its `metadata.uid`.
#[utoipa::path(get, path = "/api/catalog/entities/by-uid/{uid}", tag = "catalog", params(("uid" = String, Path)),
    responses((status = 200, description = "The entity"), (status = 404, description = "No such entity", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn entity_by_uid(
    State(state): State<CatalogState>,
    _caller: Caller,
    Path(uid): Path<String>,
) -> Result<Response, ApiError> {
    let index = state.repo.read();
    match index
        .id_by_uid(&uid)
        .and_then(|id| entity_response_of(&index, id))
    {
        Some(response) => Ok(response),
        None => Err(Error::NotFound(format!("entity with uid {uid}")).into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ByRefsBody {
    entity_refs: Vec<String>,
    #[serde(default)]
    fields: Option<Vec<String>>,
}

/// How many refs one `by-refs` call may name; a caller with more asks again. Backstage sets no
/// bound, and one large entity asked for thousands of times in one call would otherwise build
/// gigabytes under the catalog's read lock.
pub(crate) const MAX_BY_REFS: usize = 1000;
/// How large one `by-refs` answer may grow, in bytes of entity JSON.
pub(crate) const MAX_BY_REFS_ANSWER: usize = 16 * 1024 * 1024;

/// Many entities by ref, in the order asked; `null` where none matches.
#[utoipa::path(post, path = "/api/catalog/entities/by-refs", tag = "catalog",
    params(("filter" = Option<Vec<String>>, Query)),
    request_body(content = Object, description = "{entityRefs: [...], fields?: [...]}"),
    responses((status = 200, description = "{items: [entity | null]}"), (status = 400, description = "Malformed body or ref", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn entities_by_refs(
    State(state): State<CatalogState>,
    _caller: Caller,
    RawQuery(raw): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_body(body, state.limits.entity_body)?;
    let params = Params::parse(raw.as_deref(), &["filter"])?;
    let filter = params.filter()?;
    let request: ByRefsBody = serde_json::from_slice(&body).map_err(|e| {
        Error::bad_request(
            ErrorCode::MalformedJson,
            format!("the body must be {{\"entityRefs\": [...], \"fields\"?: [...]}}: {e}"),
        )
    })?;
    if request.entity_refs.len() > MAX_BY_REFS {
        return Err(Error::bad_request(
            ErrorCode::TooManyRefs,
            format!(
                "{} refs were asked for; one call takes at most {MAX_BY_REFS}",
                request.entity_refs.len()
            ),
        )
        .into());
    }
    let refs = request
        .entity_refs
        .iter()
        .map(|r| {
            EntityRef::parse(
                r,
                RefDefaults {
                    kind: None,
                    namespace: "default",
                },
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| Error::bad_request(ErrorCode::InvalidRef, m))?;
    let fields = request.fields.filter(|f| !f.is_empty());
    let index = state.repo.read();
    let allowed = (!filter.is_empty()).then(|| index.filter_ids(&filter));
    let found: Vec<Option<u32>> = refs
        .iter()
        .map(|r| {
            index
                .id_of(r)
                .filter(|&id| allowed.as_ref().is_none_or(|ids| ids.contains(id)))
        })
        .collect();
    // Bounded before anything is copied: one large entity asked for many times must not
    // build an unbounded answer while the catalog's read lock is held.
    let mut rendered: std::collections::HashMap<u32, Bytes> = std::collections::HashMap::new();
    let mut answer_size = 0;
    for &id in found.iter().flatten() {
        let json = match rendered.get(&id) {
            Some(json) => json.clone(),
            None => {
                let json = index.json(id).unwrap_or_default();
                rendered.insert(id, json.clone());
                json
            }
        };
        answer_size += json.len();
        if answer_size > MAX_BY_REFS_ANSWER {
            return Err(Error::Invalid {
                code: ErrorCode::AnswerTooLarge,
                message: format!(
                    "the {} entities asked for are more than the {MAX_BY_REFS_ANSWER} bytes one answer may carry; ask for fewer refs at a time",
                    refs.len()
                ),
                violations: Vec::new(),
            }
            .into());
        }
    }
    drop(index);
    let mut out = Vec::with_capacity(16 + answer_size);
    out.extend_from_slice(b"{\"items\":[");
    for (i, id) in found.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match id.and_then(|id| rendered.get(&id)) {
            Some(json) => match fields.as_deref() {
                None => out.extend_from_slice(json),
                Some(fields) => write_projected(&mut out, json, fields),
            },
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b"]}");
    Ok(json_bytes(out))
}

/// Value counts of fields, among the entities matching the filter.
#[utoipa::path(get, path = "/api/catalog/entity-facets", tag = "catalog",
    params(("facet" = Vec<String>, Query, description = "Repeatable field path"), ("filter" = Option<Vec<String>>, Query)),
    responses((status = 200, description = "{facets: {field: [{value, count}]}}")), security(("bearer" = [])))]
pub(crate) async fn entity_facets(
    State(state): State<CatalogState>,
    _caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let params = Params::parse(raw.as_deref(), &["facet", "filter"])?;
    let facets: Vec<String> = params.all("facet").into_iter().map(str::to_owned).collect();
    if facets.is_empty() {
        return Err(Error::bad_request(
            ErrorCode::InvalidQuery,
            "name at least one facet, e.g. ?facet=spec.owner",
        )
        .into());
    }
    let filter = params.filter()?;
    let counts = state.repo.read().facets(&facets, &filter);
    let facets: serde_json::Map<String, Value> = counts
        .into_iter()
        .map(|(name, values)| (name, json!(values)))
        .collect();
    Ok(server_timing(
        Json(json!({ "facets": facets })).into_response(),
        started,
    ))
}

/// The golden paths: every Template entity, by name.
#[utoipa::path(get, path = "/v1/templates", tag = "catalog",
    responses((status = 200, description = "{items: [Template entity]}")), security(("bearer" = [])))]
pub(crate) async fn list_templates(
    State(state): State<CatalogState>,
    _caller: Caller,
) -> Result<Response, ApiError> {
    let query = EntityQuery {
        filter: FilterSet::parse(&["kind=template"])?,
        order: vec![OrderField::parse("metadata.name")?],
        full_text: None,
    };
    let index = state.repo.read();
    let page = index.query(&query, &PageRequest::first(params::MAX_LIMIT));
    let mut out = Vec::with_capacity(64 + page.ids.len() * 2048);
    out.extend_from_slice(b"{\"items\":");
    write_items(&mut out, &index, &page.ids, None);
    out.push(b'}');
    Ok(json_bytes(out))
}
