//! What paved says about a request in Slack.

use serde_json::Value;

use crate::blocks::{decision_buttons, escape, fields, section};

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// A request (its API view) as Slack shows it, with approve and reject buttons while it waits
/// for a decision. Returns the one-line text and the blocks.
pub fn request_blocks(r: &Value, verb: &str) -> (String, Vec<Value>) {
    let id = str_at(r, "/id").unwrap_or("?");
    let status = str_at(r, "/status").unwrap_or("?");
    let text = format!("request {id} {verb}: {status}");
    let mut blocks = vec![
        section(format!(
            "*Request `{}`* {}: {} `{}` for {} in *{}*",
            escape(id),
            escape(verb),
            escape(str_at(r, "/template").unwrap_or("?")),
            escape(str_at(r, "/name").unwrap_or("?")),
            escape(str_at(r, "/owner").unwrap_or("?")),
            escape(str_at(r, "/environment").unwrap_or("?")),
        )),
        fields(&[
            ("Status", format!("`{}`", escape(status))),
            (
                "Requested by",
                escape(str_at(r, "/requester").unwrap_or("?")),
            ),
        ]),
    ];
    if let Some(f) = str_at(r, "/failure/message") {
        blocks.push(section(format!(":x: {}", escape(f))));
    }
    if status == "WAITING_FOR_APPROVAL" {
        blocks.push(decision_buttons(id));
    }
    (text, blocks)
}
