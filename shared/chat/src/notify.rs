//! Notifications to Slack about a request: it waits for an approval (to the approvers'
//! channel, with the buttons), or it became READY or FAILED (back to the requester: the slash
//! command's `response_url` while it lives, else a direct message from the bot).
//!
//! They travel on the notifications queue as [`ChatNotification`]s; the worker delivers each
//! once ([`crate::notify`] only sends). A failed post is an error, so the queue retries it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::blocks::{ephemeral, section};
use crate::messages::request_blocks;
use crate::origins::ChatOrigin;

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatEvent {
    ApprovalNeeded,
    Ready,
    Failed,
}

impl ChatEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApprovalNeeded => "approval_needed",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }
}

/// The queue message: `{"kind": "chat", "requestId": ..., "event": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatNotification {
    pub kind: ChatKind,
    pub request_id: String,
    pub event: ChatEvent,
}

/// The tag that tells a chat notification from the state machine's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    Chat,
}

impl ChatNotification {
    pub fn new(request_id: impl Into<String>, event: ChatEvent) -> Self {
        Self {
            kind: ChatKind::Chat,
            request_id: request_id.into(),
            event,
        }
    }

    /// The message body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The key that makes its delivery happen once.
    pub fn delivery_key(&self) -> String {
        format!("{}#{}", self.request_id, self.event.as_str())
    }
}

/// Where Slack notifications go, from the environment:
/// - `PAVED_SLACK_APPROVALS_WEBHOOK`: an incoming webhook of the approvers' channel;
/// - `PAVED_SLACK_BOT_TOKEN`: the bot's token, for direct messages (`chat.postMessage`);
/// - `PAVED_SLACK_API_URL`: Slack's Web API (default `https://slack.com/api`).
///
/// Secrets are never logged.
#[derive(Clone, Default)]
pub struct SlackTargets {
    pub approvals_webhook: Option<String>,
    pub bot_token: Option<String>,
    pub api_url: String,
}

impl std::fmt::Debug for SlackTargets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackTargets")
            .field(
                "approvals_webhook",
                &self.approvals_webhook.as_ref().map(|_| "<set>"),
            )
            .field("bot_token", &self.bot_token.as_ref().map(|_| "<set>"))
            .field("api_url", &self.api_url)
            .finish()
    }
}

impl SlackTargets {
    /// The targets, or `None` when Slack is not set up at all (none of
    /// `PAVED_SLACK_SIGNING_SECRET`, `PAVED_SLACK_APPROVALS_WEBHOOK`, `PAVED_SLACK_BOT_TOKEN`,
    /// nor `PAVED_SLACK_NOTIFICATIONS=on`, which the worker on AWS has: it delivers to
    /// `response_url`s without any secret): then no chat notification is queued.
    pub fn from_env() -> Option<Self> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let targets = Self {
            approvals_webhook: get("PAVED_SLACK_APPROVALS_WEBHOOK"),
            bot_token: get("PAVED_SLACK_BOT_TOKEN"),
            api_url: get("PAVED_SLACK_API_URL").unwrap_or_else(|| "https://slack.com/api".into()),
        };
        let used = get("PAVED_SLACK_NOTIFICATIONS").is_some_and(|v| v == "on")
            || get("PAVED_SLACK_SIGNING_SECRET").is_some()
            || targets.approvals_webhook.is_some()
            || targets.bot_token.is_some();
        used.then_some(targets)
    }
}

/// Why a delivery failed; every one is retried by the queue.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("posting to Slack failed: {0}")]
    Transport(String),
    #[error("Slack refused the post ({status}): {body}")]
    Refused { status: u16, body: String },
}

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Posted(&'static str),
    /// Nowhere to post (no origin, no webhook or no token): logged, not retried.
    NoTarget(&'static str),
}

/// Sends notifications to Slack over HTTPS (rustls with ring).
#[derive(Clone)]
pub struct SlackNotifier {
    /// Built on the first post, not at start-up: building it reads and parses the system's CA
    /// certificates (4-6 ms here), which a cold start that posts nothing should not pay.
    http: Arc<OnceLock<Result<reqwest::Client, String>>>,
    targets: SlackTargets,
}

impl SlackNotifier {
    pub fn new(targets: SlackTargets) -> Self {
        // One process-wide crypto provider; another caller may have installed it already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            http: Arc::default(),
            targets,
        }
    }

    fn client(&self) -> Result<&reqwest::Client, DeliveryError> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| format!("building the Slack client: {e}"))
            })
            .as_ref()
            .map_err(|e| DeliveryError::Transport(e.clone()))
    }

    /// Delivers one notification about `request` (its API view), given where it came from.
    pub async fn deliver(
        &self,
        note: &ChatNotification,
        request: &Value,
        origin: Option<&ChatOrigin>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Delivered, DeliveryError> {
        match note.event {
            ChatEvent::ApprovalNeeded => {
                let Some(webhook) = &self.targets.approvals_webhook else {
                    return Ok(Delivered::NoTarget(
                        "PAVED_SLACK_APPROVALS_WEBHOOK is not set",
                    ));
                };
                let (text, mut blocks) = request_blocks(request, "needs your approval");
                blocks.insert(0, section(":raised_hand: *An approval is needed*"));
                self.post(webhook, &json!({"text": text, "blocks": blocks}), None)
                    .await?;
                Ok(Delivered::Posted("approvals channel"))
            }
            ChatEvent::Ready | ChatEvent::Failed => {
                let verb = if note.event == ChatEvent::Ready {
                    "is ready"
                } else {
                    "failed"
                };
                let (text, blocks) = request_blocks(request, verb);
                let Some(origin) = origin else {
                    return Ok(Delivered::NoTarget("the request did not come from Slack"));
                };
                if let Some(url) = origin.live_response_url(now) {
                    self.post(url, &ephemeral(text, blocks), None).await?;
                    return Ok(Delivered::Posted("response_url"));
                }
                let Some(token) = &self.targets.bot_token else {
                    return Ok(Delivered::NoTarget(
                        "the response_url expired and PAVED_SLACK_BOT_TOKEN is not set",
                    ));
                };
                let url = format!(
                    "{}/chat.postMessage",
                    self.targets.api_url.trim_end_matches('/')
                );
                let body = json!({"channel": origin.slack_user, "text": text, "blocks": blocks});
                self.post(&url, &body, Some(token)).await?;
                Ok(Delivered::Posted("direct message"))
            }
        }
    }

    /// Posts a message to a channel (or a thread) as the bot: `chat.postMessage`.
    pub async fn post_message(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
        blocks: &[Value],
    ) -> Result<(), DeliveryError> {
        let Some(token) = &self.targets.bot_token else {
            return Err(DeliveryError::Refused {
                status: 0,
                body: "PAVED_SLACK_BOT_TOKEN is not set".into(),
            });
        };
        let url = format!(
            "{}/chat.postMessage",
            self.targets.api_url.trim_end_matches('/')
        );
        let mut body = json!({"channel": channel, "text": text, "blocks": blocks});
        if let Some(ts) = thread_ts {
            body["thread_ts"] = json!(ts);
        }
        self.post(&url, &body, Some(token)).await
    }

    /// Whether a bot token is configured (needed for [`post_message`](Self::post_message)).
    pub fn has_bot_token(&self) -> bool {
        self.targets.bot_token.is_some()
    }

    /// Posts a message to a `response_url`-like URL a caller gave (no token).
    pub async fn post_to(&self, url: &str, body: &Value) -> Result<(), DeliveryError> {
        self.post(url, body, None).await
    }

    async fn post(
        &self,
        url: &str,
        body: &Value,
        token: Option<&str>,
    ) -> Result<(), DeliveryError> {
        let mut request = self.client()?.post(url).json(body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request
            .send()
            .await
            .map_err(|e| DeliveryError::Transport(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        // The Web API answers 200 with {"ok": false, "error": ...} when it refuses.
        let refused_in_body = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("ok").and_then(Value::as_bool))
            == Some(false);
        if !(200..300).contains(&status) || refused_in_body {
            return Err(DeliveryError::Refused {
                status,
                body: text.chars().take(200).collect(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_message_names_its_kind_and_event() {
        let n = ChatNotification::new("req-1", ChatEvent::ApprovalNeeded);
        let v: Value = serde_json::from_str(&n.to_json()).expect("json");
        assert_eq!(
            v,
            json!({"kind": "chat", "requestId": "req-1", "event": "approval_needed"})
        );
        assert_eq!(n.delivery_key(), "req-1#approval_needed");
        let back: ChatNotification = serde_json::from_value(v).expect("parses");
        assert_eq!(back, n);
    }

    #[test]
    fn a_response_url_is_used_for_thirty_minutes() {
        let at = chrono::Utc::now();
        let o = ChatOrigin {
            request_id: "req-1".into(),
            slack_user: "U1".into(),
            response_url: Some("https://hooks.slack.com/x".into()),
            at,
        };
        assert!(
            o.live_response_url(at + chrono::Duration::minutes(29))
                .is_some()
        );
        assert!(
            o.live_response_url(at + chrono::Duration::minutes(31))
                .is_none()
        );
    }
}
