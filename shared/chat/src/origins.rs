//! Where a request made from chat came from: the Slack user and the slash command's
//! `response_url`, so that its READY or FAILED notification goes back to that conversation.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use paved_core::Error;
use paved_core::ports::{Condition, Item, Key, StoreError, Table};
use serde_json::{Map, Value, json};

/// Slack accepts posts to a `response_url` for 30 minutes after the command.
pub const RESPONSE_URL_LIFETIME_MINUTES: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatOrigin {
    pub request_id: String,
    pub slack_user: String,
    pub response_url: Option<String>,
    pub at: DateTime<Utc>,
}

impl ChatOrigin {
    /// The `response_url`, while Slack still accepts posts to it.
    pub fn live_response_url(&self, now: DateTime<Utc>) -> Option<&str> {
        let fresh = now - self.at < chrono::Duration::minutes(RESPONSE_URL_LIFETIME_MINUTES);
        self.response_url.as_deref().filter(|_| fresh)
    }
}

/// The origins, one item per request (`CHAT#<request id>` / `ORIGIN`).
pub struct ChatOrigins {
    table: Arc<dyn Table>,
}

impl std::fmt::Debug for ChatOrigins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatOrigins").finish_non_exhaustive()
    }
}

fn key(request_id: &str) -> Key {
    Key::new(format!("CHAT#{request_id}"), "ORIGIN")
}

impl ChatOrigins {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    /// Records where a request came from; the first record wins (a retried command keeps it).
    pub async fn record(&self, origin: &ChatOrigin) -> Result<(), Error> {
        let mut attrs = Map::new();
        attrs.insert("slack_user".into(), json!(origin.slack_user));
        attrs.insert("response_url".into(), json!(origin.response_url));
        attrs.insert("at".into(), json!(origin.at.to_rfc3339()));
        match self
            .table
            .put(Item::new(key(&origin.request_id), attrs), Condition::Absent)
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get(&self, request_id: &str) -> Result<Option<ChatOrigin>, Error> {
        let Some(item) = self.table.get(&key(request_id)).await? else {
            return Ok(None);
        };
        let text = |name: &str| {
            item.attrs
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let at = text("at")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        Ok(Some(ChatOrigin {
            request_id: request_id.to_owned(),
            slack_user: text("slack_user").unwrap_or_default(),
            response_url: text("response_url"),
            at,
        }))
    }
}
