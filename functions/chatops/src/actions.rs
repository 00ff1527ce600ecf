//! Carrying out a [`Command`] for a paved [`Identity`]. Requests, decisions, live resources
//! and metrics go through the same use-case services as the HTTP API ([`RequestsService`],
//! [`Reports`]), as the caller: the same validation, guardrails, approvals, idempotency,
//! visibility and ownership checks, nothing re-implemented. Each answer is a [`Reply`]: Block Kit for Slack and JSON data for
//! bots.
//!
//! [`RequestsService`]: paved_core::services::RequestsService
//! [`Reports`]: paved_core::services::Reports

use paved_core::Error;
use paved_core::auth::Identity;
use paved_core::catalog::{EntityQuery, EntityRef, FullTextFilter, PageRequest, RefDefaults};
use paved_core::idempotency::IdempotencyKey;
use paved_core::requests::ProvisioningRequest;
use paved_core::services::requests::{ResourceListing, request_view};
use paved_core::services::{ReportScope, RequestForm};
use paved_http::ApiError;
use serde_json::{Value, json};

use crate::ChatopsState;
use crate::command::{Command, USAGE};
use crate::slack::blocks::{context, escape, fields, header, section};

/// How many catalog hits a search shows.
const SEARCH_LIMIT: usize = 10;
/// How many live resources one reply shows (of the API's first page); a team narrows it.
const RESOURCES_SHOWN: usize = 20;
/// How many drift paths a resource's entry names, and the longest one shown.
const DRIFT_PATHS_SHOWN: usize = 5;
const DRIFT_PATH_CHARS: usize = 80;

/// What a command produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Whether the command did what was asked (a bot's `ok`).
    pub ok: bool,
    /// One line: Slack's notification text, a bot's summary.
    pub text: String,
    pub blocks: Vec<serde_json::Value>,
    /// The result as data, for bots (the request, the entities, the figures, or the problem).
    pub data: Value,
}

impl Reply {
    fn ok(text: impl Into<String>, blocks: Vec<Value>, data: Value) -> Self {
        Self {
            ok: true,
            text: text.into(),
            blocks,
            data,
        }
    }

    fn failed(text: impl Into<String>, data: Value) -> Self {
        let text = text.into();
        Self {
            ok: false,
            blocks: vec![section(format!(":warning: {}", escape(&text)))],
            text,
            data,
        }
    }
}

/// The help text, with what went wrong first if something did.
pub fn help(problem: Option<&str>) -> Reply {
    let mut lines = vec!["*`/paved` commands*".to_owned()];
    lines.extend(
        USAGE
            .iter()
            .map(|(usage, what)| format!("• `/paved {usage}`: {what}")),
    );
    let mut blocks = Vec::new();
    if let Some(p) = problem {
        blocks.push(section(format!(":grey_question: {}", escape(p))));
    }
    blocks.push(section(lines.join("\n")));
    let usage: Vec<Value> = USAGE
        .iter()
        .map(|(u, w)| json!({"usage": format!("/paved {u}"), "does": w}))
        .collect();
    Reply {
        ok: problem.is_none(),
        text: problem.map_or_else(|| "paved commands".to_owned(), str::to_owned),
        blocks,
        data: json!({"problem": problem, "commands": usage}),
    }
}

/// Runs `command` as `who`. `idempotency_key` makes a retried `request` return the first
/// one's request (Slack's trigger id, a bot's own key).
pub async fn run(
    state: &ChatopsState,
    who: &Identity,
    command: Command,
    idempotency_key: Option<&str>,
) -> Reply {
    match command {
        Command::Help { problem } => help(problem.as_deref()),
        Command::Search { term } => search(state, &term),
        Command::Service { reference } => service(state, &reference),
        Command::Request {
            template,
            name,
            environment,
            owner,
            parameters,
        } => {
            let Some(environment) = environment else {
                return help(Some(
                    "a request needs environment=<name> (for example environment=staging)",
                ));
            };
            let Some(owner) = owner.or_else(|| who.groups().first().map(ToString::to_string))
            else {
                return help(Some(
                    "a request needs owner=<group>: you are in no catalog group",
                ));
            };
            let form = RequestForm {
                template,
                name,
                owner,
                environment,
                parameters: Some(Value::Object(parameters)),
            };
            let submitted = async {
                let key = idempotency_key.map(IdempotencyKey::parse).transpose()?;
                state.requests.submit(who, &form, key.as_ref()).await
            };
            request_reply(submitted.await.map(|s| s.request), "submitted")
        }
        Command::Status { id } => request_reply(state.requests.get(who, &id).await, "status"),
        Command::Approve { id } => {
            request_reply(state.requests.approve(who, &id).await, "approved")
        }
        Command::Reject { id } => request_reply(state.requests.reject(who, &id).await, "rejected"),
        Command::Scorecard { reference } => scorecard(state, &reference).await,
        Command::Dora { team } => {
            let scope = team.map_or(ReportScope::Org, ReportScope::Team);
            dora_reply(state.reports.dora(Some(&scope)).await)
        }
        Command::Resources { team } => {
            // The API's first page (its default size), optionally of one owner.
            let listing = ResourceListing {
                owner: team.clone(),
                ..ResourceListing::default()
            };
            resources_reply(
                state.requests.resources(who, &listing).await,
                team.as_deref(),
            )
        }
        Command::Reconcile { id } => {
            reconcile_reply(state.requests.reconcile_resource(who, &id).await)
        }
    }
}

/// An error as a failed reply: its message, with the problem+json body the HTTP API would
/// have answered as the data. A server fault is logged with its cause, as the API logs it.
fn problem(error: Error) -> Reply {
    let answer = ApiError(error);
    if answer.status().is_server_error() {
        tracing::error!(error = %answer.0, code = answer.0.code(), "a chat command failed");
    }
    Reply::failed(answer.0.to_string(), answer.body())
}

fn search(state: &ChatopsState, term: &str) -> Reply {
    let full_text = match FullTextFilter::new(term, None) {
        Ok(f) => f,
        Err(e) => return Reply::failed(e.to_string(), Value::Null),
    };
    let query = EntityQuery {
        full_text,
        ..EntityQuery::default()
    };
    let index = state.catalog.read();
    let page = index.query(&query, &PageRequest::first(SEARCH_LIMIT));
    let hits: Vec<Value> = page
        .ids
        .iter()
        .filter_map(|id| index.view(*id))
        .filter_map(|v| serde_json::from_slice(&v.json).ok())
        .collect();
    if hits.is_empty() {
        return Reply::ok(
            format!("nothing in the catalog matches '{term}'"),
            vec![section(format!(
                "Nothing in the catalog matches *{}*.",
                escape(term)
            ))],
            json!({"total": 0, "items": []}),
        );
    }
    let lines: Vec<String> = hits
        .iter()
        .map(|e| {
            let description = str_at(e, "/metadata/description").unwrap_or("");
            format!(
                "• `{}` {}",
                escape(&entity_ref_of(e)),
                escape(&first_line(description, 120))
            )
        })
        .collect();
    let mut blocks = vec![section(format!(
        "*{}* match{} *{}*:\n{}",
        page.total,
        if page.total == 1 { "es" } else { "" },
        escape(term),
        lines.join("\n")
    ))];
    if page.total > hits.len() {
        blocks.push(context(format!(
            "Showing {} of {}; narrow the term to see the rest.",
            hits.len(),
            page.total
        )));
    }
    Reply::ok(
        format!("{} catalog matches for '{term}'", page.total),
        blocks,
        json!({"total": page.total, "items": hits}),
    )
}

/// `payments`, `component:payments` or `component:default/payments`; help when it is none.
fn component_ref(reference: &str) -> Result<EntityRef, Reply> {
    EntityRef::parse(
        reference,
        RefDefaults {
            kind: Some("component"),
            namespace: "default",
        },
    )
    .map_err(|e| {
        help(Some(&format!(
            "'{reference}' is not an entity reference: {e}"
        )))
    })
}

fn service(state: &ChatopsState, reference: &str) -> Reply {
    let entity_ref = match component_ref(reference) {
        Ok(r) => r,
        Err(help) => return help,
    };
    let index = state.catalog.read();
    let Some(view) = index.get_by_ref(&entity_ref) else {
        return Reply::failed(
            format!("{entity_ref} is not in the catalog"),
            json!({"code": "not_found"}),
        );
    };
    let entity: Value = serde_json::from_slice(&view.json).unwrap_or(Value::Null);
    let title = str_at(&entity, "/metadata/title").unwrap_or(entity_ref.name());
    let mut blocks = vec![header(title)];
    if let Some(d) = str_at(&entity, "/metadata/description") {
        blocks.push(section(escape(d)));
    }
    let or_none = |v: Option<&str>| v.map_or_else(|| "_none_".to_owned(), escape);
    blocks.push(fields(&[
        ("Ref", format!("`{}`", escape(&entity_ref.to_string()))),
        ("Owner", or_none(str_at(&entity, "/spec/owner"))),
        ("Lifecycle", or_none(str_at(&entity, "/spec/lifecycle"))),
        ("Type", or_none(str_at(&entity, "/spec/type"))),
    ]));
    let links: Vec<String> = entity
        .pointer("/metadata/links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let url = l.get("url").and_then(Value::as_str)?;
            let title = l.get("title").and_then(Value::as_str).unwrap_or(url);
            // Slack's link syntax: only http(s) URLs without the characters it reserves.
            (url.starts_with("https://") || url.starts_with("http://"))
                .then(|| format!("<{}|{}>", escape(url).replace('|', "%7C"), escape(title)))
        })
        .collect();
    if !links.is_empty() {
        blocks.push(context(links.join(" · ")));
    }
    Reply::ok(format!("{entity_ref}"), blocks, entity)
}

async fn scorecard(state: &ChatopsState, reference: &str) -> Reply {
    let entity_ref = match component_ref(reference) {
        Ok(r) => r,
        Err(help) => return help,
    };
    let metrics = match paved_core::scorecards::MetricsSnapshot::load(&state.events).await {
        Ok(m) => m,
        Err(e) => return Reply::failed(format!("reading the metrics: {e}"), Value::Null),
    };
    let card = state.scorecards.default_card();
    let index = state.catalog.read();
    let Some(view) = index.get_by_ref(&entity_ref) else {
        return Reply::failed(
            format!("{entity_ref} is not in the catalog"),
            json!({"code": "not_found"}),
        );
    };
    let e = paved_core::scorecards::score(card, &index, view, &metrics);
    let level = e.level.clone().unwrap_or_else(|| "no level yet".into());
    let failing: Vec<String> = e
        .rules
        .iter()
        .filter(|r| !r.passed)
        .map(|r| {
            format!(
                "• _{}_ {}: {}",
                escape(&r.level),
                escape(&r.title),
                escape(&r.detail)
            )
        })
        .collect();
    let mut blocks = vec![
        header(&format!("{}: {level}", card.title)),
        section(format!("`{}`", escape(&e.entity_ref))),
    ];
    if failing.is_empty() {
        blocks.push(section(":trophy: Every rule passes."));
    } else {
        let next = e
            .next_level
            .as_deref()
            .map(|n| format!(" (next: *{}*)", escape(n)))
            .unwrap_or_default();
        blocks.push(section(format!(
            "*Failing rules*{next}\n{}",
            failing.join("\n")
        )));
    }
    blocks.push(context(format!(
        "Scorecard {} v{}",
        escape(&card.id),
        card.version
    )));
    Reply::ok(
        format!("{}: {level}", e.entity_ref),
        blocks,
        serde_json::to_value(&e).unwrap_or(Value::Null),
    )
}

fn request_reply(answer: Result<ProvisioningRequest, Error>, verb: &str) -> Reply {
    match answer {
        Ok(request) => {
            let body = request_view(&request);
            let (text, blocks) = paved_chat::messages::request_blocks(&body, verb);
            Reply::ok(text, blocks, body)
        }
        Err(e) => problem(e),
    }
}

fn dora_reply(answer: Result<Value, Error>) -> Reply {
    let body = match answer {
        Ok(body) => body,
        Err(e) => return problem(e),
    };
    let m = &body["metrics"];
    let scope = str_at(&body, "/scope").unwrap_or("org");
    let minutes = |key: &str| {
        m.get(key)
            .and_then(Value::as_f64)
            .map_or_else(|| "n/a".into(), human_minutes)
    };
    let band = |key: &str| {
        str_at(m, &format!("/bands/{key}"))
            .unwrap_or("n/a")
            .to_owned()
    };
    let rate = m
        .get("change_failure_rate")
        .and_then(Value::as_f64)
        .map_or_else(|| "n/a".into(), |r| format!("{:.1} %", r * 100.0));
    let per_day = m
        .get("deploys_per_day")
        .and_then(Value::as_f64)
        .map_or_else(|| "n/a".into(), |d| format!("{d:.2}/day"));
    let blocks = vec![
        header(&format!("DORA: {scope}")),
        fields(&[
            (
                "Deployment frequency",
                format!("{per_day} ({})", band("deployment_frequency")),
            ),
            (
                "Lead time (median)",
                format!(
                    "{} ({})",
                    minutes("lead_time_median_minutes"),
                    band("lead_time")
                ),
            ),
            (
                "Change failure rate",
                format!("{rate} ({})", band("change_failure_rate")),
            ),
            (
                "Recovery time (median)",
                format!(
                    "{} ({})",
                    minutes("fdrt_median_minutes"),
                    band("recovery_time")
                ),
            ),
        ]),
        context(format!(
            "Window {} → {} · paved metrics spec v{}",
            str_at(&body, "/window/from").unwrap_or("?"),
            str_at(&body, "/window/to").unwrap_or("?"),
            str_at(&body, "/spec_version").unwrap_or("?"),
        )),
    ];
    Reply::ok(format!("DORA for {scope}"), blocks, body)
}

/// A condition's status in a resource's view (`True`, `False`, `Unknown`), `Unknown` when
/// absent.
fn condition_status<'a>(resource: &'a Value, kind: &str) -> (&'a str, &'a str) {
    let condition = resource
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind));
    let field = |name: &str| {
        condition
            .and_then(|c| c.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    match field("status") {
        "" => ("Unknown", ""),
        status => (status, field("reason")),
    }
}

/// `Synced: True · Ready: True`, each with its mark and (when not `True`) its reason.
fn conditions_line(resource: &Value) -> String {
    ["Synced", "Ready"]
        .iter()
        .map(|kind| {
            let (status, reason) = condition_status(resource, kind);
            let mark = match status {
                "True" => ":large_green_circle:",
                "False" => ":red_circle:",
                _ => ":white_circle:",
            };
            let why = if status == "True" || reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", escape(&first_line(reason, 60)))
            };
            format!("{mark} {kind}: *{}*{why}", escape(status))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The paths of a resource's drift, as `` `a.b`, `c` `` and how many more.
fn drift_line(resource: &Value) -> Option<String> {
    let paths: Vec<&str> = resource
        .get("drift")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("path").and_then(Value::as_str))
        .collect();
    if paths.is_empty() {
        return None;
    }
    let mut shown: Vec<String> = paths
        .iter()
        .take(DRIFT_PATHS_SHOWN)
        .map(|p| format!("`{}`", escape(&first_line(p, DRIFT_PATH_CHARS))))
        .collect();
    if paths.len() > DRIFT_PATHS_SHOWN {
        shown.push(format!("and {} more", paths.len() - DRIFT_PATHS_SHOWN));
    }
    Some(format!(":warning: Drifted: {}", shown.join(", ")))
}

/// One resource's entry in a listing: what it is, its conditions, what drifted.
fn resource_section(r: &Value) -> Value {
    let at = |pointer: &str| escape(&first_line(str_at(r, pointer).unwrap_or("?"), 120));
    let mut lines = vec![
        format!(
            "*`{}`* {} `{}` of {} in *{}* (_{}_)",
            at("/id"),
            at("/type"),
            at("/name"),
            at("/owner"),
            at("/environment"),
            at("/managementPolicy"),
        ),
        conditions_line(r),
    ];
    lines.extend(drift_line(r));
    section(lines.join("\n"))
}

fn resources_reply(answer: Result<Value, Error>, team: Option<&str>) -> Reply {
    let body = match answer {
        Ok(body) => body,
        Err(e) => return problem(e),
    };
    let items: &[Value] = body
        .get("items")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let more_pages = body.get("nextCursor").is_some_and(|c| !c.is_null());
    let whose = team.map_or_else(|| "you can see".to_owned(), |t| format!("owned by {t}"));
    let mut blocks = Vec::new();
    if items.is_empty() {
        blocks.push(section(format!("No live resources {}.", escape(&whose))));
    } else {
        blocks.push(header(&escape(&format!("Live resources {whose}"))));
        blocks.extend(items.iter().take(RESOURCES_SHOWN).map(resource_section));
    }
    let mut notes = Vec::new();
    if items.len() > RESOURCES_SHOWN {
        notes.push(format!("Showing {RESOURCES_SHOWN} of {}.", items.len()));
    }
    if more_pages {
        notes.push("There are more past this page.".to_owned());
    }
    if items.len() > RESOURCES_SHOWN || more_pages {
        notes.push(if team.is_some() {
            "`paved resources` (the CLI) lists them all.".to_owned()
        } else {
            "`/paved resources <team>` narrows the list; `paved resources` (the CLI) lists them all."
                .to_owned()
        });
    }
    if !items.is_empty() {
        notes.push("`/paved reconcile <request-id>` observes one now.".to_owned());
    }
    if !notes.is_empty() {
        blocks.push(context(notes.join(" ")));
    }
    let drifted = items
        .iter()
        .filter(|r| condition_status(r, "Synced").0 == "False")
        .count();
    let text = format!(
        "{} live resource{} {whose}, {drifted} drifted{}",
        items.len(),
        if items.len() == 1 { "" } else { "s" },
        if more_pages { " (first page)" } else { "" }
    );
    Reply::ok(text, blocks, body)
}

fn reconcile_reply(answer: Result<Value, Error>) -> Reply {
    let view = match answer {
        Ok(view) => view,
        Err(e) => return problem(e),
    };
    let id = str_at(&view, "/id").unwrap_or("?");
    let enforce = str_at(&view, "/managementPolicy") == Some("enforce");
    let blocks = vec![
        section(format!(
            ":arrows_counterclockwise: *Observation of `{}` queued* ({} `{}`). The result appears in its status: `/paved resources` shows it once the observation has run.",
            escape(id),
            escape(str_at(&view, "/type").unwrap_or("?")),
            escape(str_at(&view, "/name").unwrap_or("?")),
        )),
        fields(&[
            ("Until then", conditions_line(&view)),
            (
                "Last observed",
                str_at(&view, "/lastObservedAt").map_or_else(|| "never".to_owned(), escape),
            ),
        ]),
        context(if enforce {
            "managementPolicy *enforce*: drift it finds is repaired."
        } else {
            "managementPolicy *observe*: drift it finds is reported, never repaired."
        }),
    ];
    Reply::ok(
        format!("observation of {id} queued; the result appears in its status"),
        blocks,
        view,
    )
}

fn human_minutes(m: f64) -> String {
    if m < 60.0 {
        format!("{m:.0} min")
    } else if m < 48.0 * 60.0 {
        format!("{:.1} h", m / 60.0)
    } else {
        format!("{:.1} d", m / 1440.0)
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn entity_ref_of(e: &Value) -> String {
    format!(
        "{}:{}/{}",
        str_at(e, "/kind").unwrap_or("?").to_lowercase(),
        str_at(e, "/metadata/namespace").unwrap_or("default"),
        str_at(e, "/metadata/name").unwrap_or("?")
    )
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() <= max {
        line.to_owned()
    } else {
        let mut s: String = line.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resource's API view (`ResourceState::view`'s shape).
    fn resource(id: &str, synced: &str, drift: &[&str]) -> Value {
        json!({
            "id": id, "type": "sqs-queue", "name": "orders-queue", "owner": "group:default/team-a",
            "environment": "staging", "managementPolicy": "observe",
            "conditions": [
                {"type": "Synced", "status": synced, "reason": if synced == "False" { "Drifted" } else { "Observed" },
                 "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "Ready", "status": "True", "reason": "Exists", "message": "",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"},
            ],
            "drift": drift.iter().map(|p| json!({"path": p, "desired": 1, "actual": 2})).collect::<Vec<_>>(),
            "lastObservedAt": null,
            "history": [],
        })
    }

    fn text_of(reply: &Reply) -> String {
        Value::Array(reply.blocks.clone()).to_string()
    }

    #[test]
    fn a_listing_shows_conditions_and_drift_paths_escaped_and_bounded() {
        let many: Vec<String> = (0..8).map(|i| format!("tags.k{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let mut items = vec![
            resource("req-1", "True", &[]),
            resource(
                "req-2",
                "False",
                &["tags.<!channel>", "queue.VisibilityTimeout"],
            ),
            resource("req-3", "False", &many),
        ];
        items.extend((4..30).map(|i| resource(&format!("req-{i}"), "Unknown", &[])));
        let reply = resources_reply(
            Ok(json!({"items": items, "nextCursor": "abc"})),
            Some("team-a"),
        );
        assert!(reply.ok);
        assert_eq!(
            reply.text,
            "29 live resources owned by team-a, 2 drifted (first page)"
        );
        let text = text_of(&reply);
        assert!(text.contains("Synced: *True*"), "{text}");
        assert!(text.contains("Synced: *False* (Drifted)"), "{text}");
        assert!(text.contains("Ready: *True*"), "{text}");
        assert!(
            text.contains("`tags.&lt;!channel&gt;`, `queue.VisibilityTimeout`"),
            "{text}"
        );
        assert!(!text.contains("<!channel>"), "{text}");
        assert!(text.contains("`tags.k4`, and 3 more"), "{text}");
        assert!(!text.contains("tags.k5"), "{text}");
        // A header, 20 resources and a note: well under Slack's 50 blocks.
        assert_eq!(reply.blocks.len(), 1 + RESOURCES_SHOWN + 1);
        assert!(text.contains("Showing 20 of 29"), "{text}");
        assert!(text.contains("more past this page"), "{text}");
        // Bots get the whole page.
        assert_eq!(reply.data["items"].as_array().map(Vec::len), Some(29));
    }

    #[test]
    fn an_empty_listing_says_so() {
        let reply = resources_reply(Ok(json!({"items": [], "nextCursor": null})), None);
        assert!(reply.ok);
        assert_eq!(reply.text, "0 live resources you can see, 0 drifted");
        assert!(text_of(&reply).contains("No live resources you can see."));
    }

    #[test]
    fn a_reconcile_says_it_is_queued_and_where_the_result_appears() {
        let reply = reconcile_reply(Ok(resource("req-2", "False", &["tags.team"])));
        assert!(reply.ok);
        assert_eq!(
            reply.text,
            "observation of req-2 queued; the result appears in its status"
        );
        let text = text_of(&reply);
        assert!(text.contains("Observation of `req-2` queued"), "{text}");
        assert!(text.contains("never"), "{text}");
        assert!(text.contains("reported, never repaired"), "{text}");
        let refused = reconcile_reply(Err(Error::NotFound("request req-9".into())));
        assert!(!refused.ok);
        assert_eq!(refused.data["code"], "not_found", "{:?}", refused.data);
    }
}
