//! Chat-ops: paved's self-service from Slack, and the same commands for other bots.
//!
//! - `POST /v1/chatops/slack`: slash commands (`/paved ...`) and interactivity (the approve
//!   and reject buttons), both signed by Slack (v0, `PAVED_SLACK_SIGNING_SECRET`) and refused
//!   with 401 when unsigned, wrongly signed or more than five minutes old. A Slack user is the
//!   catalog User annotated `slack.com/user-id`; replies are ephemeral Block Kit messages.
//! - [`invoke`]: the direct-invocation envelope `{command, args, actor, idempotency_key?}` for
//!   other bots, whose caller IAM has already authorized (`lambda:InvokeFunction`).
//!
//! Commands call the same use-case services as the HTTP API, as the mapped user, so chat gets
//! exactly the API's checks.

pub mod actions;
pub mod command;
pub mod events_api;
pub mod identity;
pub mod slack;

use paved_core::ErrorCode;
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use paved_core::Error;
use paved_core::catalog::{CatalogRepository, EntityRef, RefDefaults};
use paved_core::ports::Clock;
use paved_http::{ApiError, read_body};
use serde::Deserialize;
use serde_json::{Value, json};

use actions::Reply;
use command::Command;
use paved_chat::origins::{ChatOrigin, ChatOrigins};
use slack::blocks;
use slack::payloads::{self, SlackPost};
use slack::signature::{self, SigningSecret};

/// Slack's posts are small; a slash command's text is at most a few KB. Both routes read at
/// most this much, before the signature is computed; a larger body is a 413
/// `payload_too_large`.
pub const BODY_LIMIT: usize = 64 * 1024;

paved_http::shared_answers! {
    /// What a post from Slack answers when it is not Slack's or is too large.
    pub(crate) SlackAnswers = [
        (401, "Not signed by Slack within five minutes"),
        (413, "Over 64 KiB"),
    ]
}

/// Everything the handlers share; cheap to clone.
#[derive(Clone)]
pub struct ChatopsState {
    pub catalog: Arc<CatalogRepository>,
    /// The request use cases (submit, status, approve, reject) and the live resources
    /// (list, reconcile).
    pub requests: Arc<paved_core::services::RequestsService>,
    /// The stored DORA report (`/paved dora`).
    pub reports: paved_core::services::Reports,
    pub signing_secret: Option<SigningSecret>,
    pub clock: Arc<dyn Clock>,
    /// Where each request made from Slack came from, for its READY/FAILED notification.
    pub origins: Arc<ChatOrigins>,
    /// For `/paved scorecard`: the definitions and the stored delivery metrics.
    pub scorecards: Arc<paved_core::scorecards::ScorecardSet>,
    pub events: Arc<paved_core::delivery::DeliveryStore>,
    /// Posts to Slack: as the bot (answers to mentions, with `PAVED_SLACK_BOT_TOKEN`) and to
    /// a direct invocation's `reply_to`.
    pub slack: Arc<paved_chat::notify::SlackNotifier>,
    /// Events API deliveries handled (or in hand), by `event_id`.
    pub seen_events: Arc<paved_core::idempotency::IdempotencyStore>,
}

impl std::fmt::Debug for ChatopsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatopsState").finish_non_exhaustive()
    }
}

pub fn router(state: ChatopsState) -> Router {
    Router::new()
        .route("/v1/chatops/slack", post(slack_post))
        .route("/v1/chatops/slack/events", post(events_api::events))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.catalog),
            paved_http::fresh_catalog,
        ))
        .with_state(state)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Refuses (401) anything Slack did not sign within the last five minutes.
fn verified(state: &ChatopsState, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    signature::verify(
        state.signing_secret.as_ref(),
        header(headers, "x-slack-request-timestamp"),
        header(headers, "x-slack-signature"),
        body,
        state.clock.now().timestamp(),
    )
    .map_err(|refusal| {
        tracing::warn!(reason = refusal.message(), "Slack request refused");
        Error::Unauthenticated(refusal.message()).into()
    })
}

/// A Slack slash command or a button click (interactivity), signed by Slack.
#[utoipa::path(post, path = "/v1/chatops/slack", tag = "chatops",
    params(
        ("X-Slack-Request-Timestamp" = String, Header),
        ("X-Slack-Signature" = String, Header, description = "v0=<HMAC-SHA256 of v0:timestamp:body>"),
    ),
    request_body(content = String, description = "Slack's form post", content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An ephemeral Block Kit reply"),
        (status = 400, description = "A post that cannot be read", content_type = "application/problem+json"),
        crate::SlackAnswers,
    ))]
async fn slack_post(
    State(state): State<ChatopsState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = read_body(body, BODY_LIMIT)?;
    verified(&state, &headers, &body)?;
    let post =
        payloads::parse(&body).map_err(|m| Error::bad_request(ErrorCode::MalformedPayload, m))?;
    let mut response_url = None;
    let (user_id, command, idempotency_key, replace) = match post {
        SlackPost::Command(c) => {
            let command = Command::parse(&c.text);
            response_url = c.response_url;
            (c.user_id, command, c.trigger_id, false)
        }
        SlackPost::Click(click) => {
            let command = match click.action_id.as_str() {
                "approve" => Command::Approve { id: click.value },
                "reject" => Command::Reject { id: click.value },
                other => Command::Help {
                    problem: Some(format!("the button '{other}' is not one of paved's")),
                },
            };
            (click.user_id, command, None, true)
        }
    };
    let Some(who) = identity::identity_of(&state.catalog, &user_id) else {
        let text = identity::unmapped_message(&user_id);
        return Ok(Json(blocks::ephemeral(
            text.clone(),
            vec![blocks::section(text)],
        )));
    };
    tracing::info!(user = %who.user(), command = command.name(), "chat command");
    let is_request = matches!(command, Command::Request { .. });
    let reply = actions::run(&state, &who, command, idempotency_key.as_deref()).await;
    if let (true, true, Some(id)) = (
        is_request,
        reply.ok,
        reply.data.get("id").and_then(Value::as_str),
    ) {
        let origin = ChatOrigin {
            request_id: id.to_owned(),
            slack_user: user_id.clone(),
            response_url,
            at: state.clock.now(),
        };
        if let Err(e) = state.origins.record(&origin).await {
            tracing::warn!(request_id = id, error = %e, "the request's chat origin was not recorded");
        }
    }
    Ok(Json(if replace && reply.ok {
        blocks::replacing(reply.text, reply.blocks)
    } else {
        blocks::ephemeral(reply.text, reply.blocks)
    }))
}

/// The direct-invocation envelope.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// The paved user the bot acts for: `alice` or `user:default/alice`.
    pub actor: String,
    /// Makes a retried `request` return the first one's request.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Where to post the reply as a Slack message too (a `response_url`, or any HTTPS URL
    /// that takes Slack's message JSON; plain HTTP only to loopback; no user info, no
    /// link-local or metadata address; redirects are not followed).
    #[serde(default)]
    pub reply_to: Option<String>,
}

/// Runs one envelope and answers `{ok, command, text, data}`, or `{ok: false, error: {code,
/// message}}` when the envelope itself is unusable.
pub async fn invoke(state: &ChatopsState, payload: Value) -> Value {
    let refused = |code: &str, message: String| json!({"ok": false, "error": {"code": code, "message": message}});
    let envelope: Envelope = match serde_json::from_value(payload) {
        Ok(e) => e,
        Err(e) => {
            return refused(
                "malformed_payload",
                format!("the envelope is not {{command, args, actor, idempotency_key?}}: {e}"),
            );
        }
    };
    let actor = match EntityRef::parse(
        &envelope.actor,
        RefDefaults {
            kind: Some("user"),
            namespace: "default",
        },
    ) {
        Ok(a) => a,
        Err(e) => return refused("invalid_actor", format!("actor: {e}")),
    };
    let Some(who) = identity::identity_of_user(&state.catalog, &actor) else {
        return refused(
            "unknown_actor",
            format!("{actor} is not a User in the catalog"),
        );
    };
    // Parsed, its host compared exactly (paved_chat::notify::reply_url); the post to it
    // follows no redirect.
    if let Some(url) = &envelope.reply_to
        && let Err(why) = paved_chat::notify::reply_url(url)
    {
        return refused(
            "invalid_reply_to",
            format!("reply_to must be an https:// URL (http:// only to loopback): {why}"),
        );
    }
    let args: Vec<&str> = envelope.args.iter().map(String::as_str).collect();
    let command = Command::from_parts(&envelope.command.to_ascii_lowercase(), &args);
    let name = command.name();
    let Reply {
        ok,
        text,
        data,
        blocks,
    } = actions::run(state, &who, command, envelope.idempotency_key.as_deref()).await;
    let mut result = json!({"ok": ok, "command": name, "text": text, "data": data});
    if let Some(url) = &envelope.reply_to {
        let posted = state
            .slack
            .post_to(url, &blocks::ephemeral(text.clone(), blocks))
            .await;
        result["replied"] = json!(posted.is_ok());
        if let Err(e) = posted {
            tracing::warn!(error = %e, "posting the reply to reply_to failed");
            result["reply_error"] = json!(e.to_string());
        }
    }
    result
}

/// The state both Lambda entry points run with: the backend from the environment, the
/// catalog, the request use cases (with the guardrails `PAVED_POLICY_DIR` names) and the
/// stored reports.
pub async fn state_from_env() -> Result<ChatopsState, String> {
    use paved_wiring::{Backend, BackendConfig, WorkflowUse};
    let guardrails = paved_wiring::guardrails::compile_from_env();
    let backend = Backend::open(&BackendConfig::from_env()?, WorkflowUse::StartsExecutions).await?;
    let catalog = paved_wiring::load_catalog(&backend.table).await?;
    let guardrails = guardrails
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let requests =
        paved_wiring::requests_service_from_env(&backend, Arc::clone(&catalog), guardrails)?;
    Ok(ChatopsState {
        catalog,
        requests: Arc::new(requests),
        reports: backend.reports(),
        signing_secret: SigningSecret::from_env(),
        clock: Arc::new(paved_core::ports::SystemClock),
        origins: Arc::new(ChatOrigins::new(Arc::clone(&backend.table))),
        scorecards: Arc::new(
            paved_core::scorecards::ScorecardSet::from_env().map_err(|e| e.to_string())?,
        ),
        events: Arc::new(paved_core::delivery::DeliveryStore::new(Arc::clone(
            &backend.table,
        ))),
        slack: slack_poster(paved_chat::notify::SlackTargets::from_env()),
        seen_events: Arc::new(slack_event_log(Arc::clone(&backend.table))),
    })
}

/// What posts to Slack (the bot's token and Web API, if configured).
pub fn slack_poster(
    targets: Option<paved_chat::notify::SlackTargets>,
) -> Arc<paved_chat::notify::SlackNotifier> {
    Arc::new(paved_chat::notify::SlackNotifier::new(
        targets.unwrap_or_default(),
    ))
}

/// The record of Slack Events API deliveries (kept a day: Slack retries within minutes).
pub fn slack_event_log(
    table: Arc<dyn paved_core::ports::Table>,
) -> paved_core::idempotency::IdempotencyStore {
    paved_core::idempotency::IdempotencyStore::new(
        table,
        Arc::new(paved_core::ports::SystemClock),
        "slack-events",
        std::time::Duration::from_secs(24 * 3600),
    )
}

/// This function's operations, for paved's OpenAPI document (`tests/openapi.rs`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    #[derive(OpenApi)]
    #[openapi(
        paths(slack_post, events_api::events),
        tags((name = "chatops", description = "Slack: slash commands, buttons and mentions"))
    )]
    struct ChatopsDoc;
    ChatopsDoc::openapi()
}
