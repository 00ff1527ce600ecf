//! Slack's Events API (`POST /v1/chatops/slack/events`): the URL verification handshake, and
//! `app_mention` events (`@paved search payments` in a channel), answered in the thread as the
//! bot. Slack retries an event it got no 2xx for within 3 s (`X-Slack-Retry-Num`), so each
//! `event_id` is handled once: a retry of one in progress or done is acknowledged and dropped.

use paved_core::ErrorCode;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use bytes::Bytes;
use paved_core::Error;
use paved_core::idempotency::NextAction;
use paved_http::{ApiError, read_body};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::command::Command;
use crate::{BODY_LIMIT, ChatopsState, actions, header, identity, verified};

/// How long one handling holds its event id before a retry may take over (it crashed).
const LEASE: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    challenge: Option<String>,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    event: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Mention {
    #[serde(rename = "type")]
    kind: String,
    user: String,
    text: String,
    channel: String,
    ts: String,
    #[serde(default)]
    thread_ts: Option<String>,
}

/// The text after the bot's mention(s): `<@U0BOT> search payments` → `search payments`.
fn command_text(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| !(w.starts_with("<@") && w.ends_with('>')))
        .collect::<Vec<_>>()
        .join(" ")
}

#[utoipa::path(post, path = "/v1/chatops/slack/events", tag = "chatops",
    params(
        ("X-Slack-Request-Timestamp" = String, Header),
        ("X-Slack-Signature" = String, Header, description = "v0=<HMAC-SHA256 of v0:timestamp:body>"),
    ),
    request_body(content = Object, description = "An Events API callback (url_verification, app_mention)", content_type = "application/json"),
    responses(
        (status = 200, description = "Acknowledged (the challenge for url_verification)"),
        (status = 400, description = "A payload that cannot be read", content_type = "application/problem+json"),
        crate::SlackAnswers,
    ))]
pub async fn events(
    State(state): State<ChatopsState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = read_body(body, BODY_LIMIT)?;
    verified(&state, &headers, &body)?;
    let envelope: Envelope = serde_json::from_slice(&body).map_err(|e| {
        Error::bad_request(
            ErrorCode::MalformedPayload,
            format!("not a Slack Events API body: {e}"),
        )
    })?;
    match envelope.kind.as_str() {
        "url_verification" => {
            let challenge = envelope.challenge.ok_or_else(|| {
                Error::bad_request(
                    ErrorCode::MalformedPayload,
                    "url_verification without a challenge",
                )
            })?;
            return Ok(Json(json!({"challenge": challenge})));
        }
        "event_callback" => {}
        other => {
            return Ok(Json(
                json!({"ok": true, "ignored": format!("envelope type {other}")}),
            ));
        }
    }
    let event_id = envelope
        .event_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            Error::bad_request(
                ErrorCode::MalformedPayload,
                "event_callback without event_id",
            )
        })?;
    let event = envelope.event.ok_or_else(|| {
        Error::bad_request(ErrorCode::MalformedPayload, "event_callback without event")
    })?;
    if event.get("type").and_then(Value::as_str) != Some("app_mention") {
        return Ok(Json(
            json!({"ok": true, "ignored": "only app_mention events are used"}),
        ));
    }
    let mention: Mention = serde_json::from_value(event).map_err(|e| {
        Error::bad_request(ErrorCode::MalformedPayload, format!("app_mention: {e}"))
    })?;
    debug_assert_eq!(mention.kind, "app_mention");
    let retry = header(&headers, "x-slack-retry-num").unwrap_or("0");
    let payload = json!({"event_id": event_id});
    let lease = match state
        .seen_events
        .try_acquire(&event_id, &payload, LEASE)
        .await?
    {
        NextAction::Execute(lease) => lease,
        NextAction::Replay(_) | NextAction::InProgress => {
            tracing::info!(
                event_id,
                retry,
                "Slack event retry acknowledged, not handled again"
            );
            return Ok(Json(json!({"ok": true, "duplicate": true})));
        }
    };
    let outcome = answer_mention(&state, &mention).await;
    match outcome {
        Ok(()) => {
            state
                .seen_events
                .complete(&event_id, &lease, &payload, &json!({"answered": true}))
                .await?;
            Ok(Json(json!({"ok": true})))
        }
        Err(e) => {
            // Let Slack's retry try again.
            state.seen_events.release(&event_id, &lease).await?;
            Err(e)
        }
    }
}

async fn answer_mention(state: &ChatopsState, mention: &Mention) -> Result<(), ApiError> {
    if !state.slack.has_bot_token() {
        tracing::warn!("an app_mention arrived but PAVED_SLACK_BOT_TOKEN is not set: no reply");
        return Ok(());
    }
    let thread = mention.thread_ts.as_deref().unwrap_or(&mention.ts);
    let (text, blocks) = match identity::identity_of(&state.catalog, &mention.user) {
        None => {
            let text = identity::unmapped_message(&mention.user);
            (text.clone(), vec![crate::slack::blocks::section(text)])
        }
        Some(who) => {
            let command = Command::parse(&command_text(&mention.text));
            // Requests from a channel are not keyed: the event id already makes this run once.
            let reply = actions::run(state, &who, command, None).await;
            (reply.text, reply.blocks)
        }
    };
    state
        .slack
        .post_message(&mention.channel, Some(thread), &text, &blocks)
        .await
        .map_err(|e| ApiError::from(Error::Unavailable(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::command_text;

    #[test]
    fn the_mention_is_not_part_of_the_command() {
        assert_eq!(command_text("<@U0BOT> search  payments"), "search payments");
        assert_eq!(command_text("hey <@U0BOT> help"), "hey help");
    }
}
