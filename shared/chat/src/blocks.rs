//! Replies in Slack's Block Kit: a few block builders and the message envelopes. Text in
//! `mrkdwn` is escaped (`&`, `<`, `>`) so catalog content cannot inject mentions or links.

use serde_json::{Value, json};

/// Escapes text for `mrkdwn` and `plain_text` fields.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn section(mrkdwn: impl Into<String>) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn.into()}})
}

pub fn header(text: &str) -> Value {
    json!({"type": "header", "text": {"type": "plain_text", "text": truncate(text, 150)}})
}

pub fn context(mrkdwn: impl Into<String>) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn.into()}]})
}

pub fn fields(pairs: &[(&str, String)]) -> Value {
    let fields: Vec<Value> = pairs
        .iter()
        .take(10)
        .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{v}")}))
        .collect();
    json!({"type": "section", "fields": fields})
}

/// Approve and reject buttons for a request; the button's value is the request id.
pub fn decision_buttons(request_id: &str) -> Value {
    json!({
        "type": "actions",
        "block_id": format!("decide:{request_id}"),
        "elements": [
            {"type": "button", "action_id": "approve", "style": "primary",
             "text": {"type": "plain_text", "text": "Approve"}, "value": request_id},
            {"type": "button", "action_id": "reject", "style": "danger",
             "text": {"type": "plain_text", "text": "Reject"}, "value": request_id},
        ]
    })
}

/// A message only the user sees (`response_type: ephemeral`); `text` is the notification
/// fallback.
pub fn ephemeral(text: impl Into<String>, blocks: Vec<Value>) -> Value {
    json!({"response_type": "ephemeral", "text": text.into(), "blocks": blocks})
}

/// A follow-up that replaces the message the buttons were on.
pub fn replacing(text: impl Into<String>, blocks: Vec<Value>) -> Value {
    json!({"replace_original": true, "text": text.into(), "blocks": blocks})
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut t: String = text.chars().take(max - 1).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_headers_fit() {
        assert_eq!(escape("<!channel> & co"), "&lt;!channel&gt; &amp; co");
        let long = "x".repeat(200);
        let h = header(&long);
        assert_eq!(
            h["text"]["text"].as_str().map(|t| t.chars().count()),
            Some(150)
        );
    }

    #[test]
    fn buttons_carry_the_request_id() {
        let b = decision_buttons("req-1");
        assert_eq!(b["elements"][0]["action_id"], "approve");
        assert_eq!(b["elements"][1]["value"], "req-1");
    }
}
