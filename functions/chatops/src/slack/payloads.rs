//! What Slack posts, read from the raw (already verified) body: a slash command or an
//! interactivity payload (a button click), both `application/x-www-form-urlencoded`.

use serde::Deserialize;

/// A slash command invocation (the fields paved uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashCommand {
    pub command: String,
    pub text: String,
    pub user_id: String,
    pub response_url: Option<String>,
    pub trigger_id: Option<String>,
}

/// A button click from a message paved posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonClick {
    pub user_id: String,
    pub action_id: String,
    pub value: String,
    pub response_url: Option<String>,
}

/// What one form-encoded Slack post is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackPost {
    Command(SlashCommand),
    Click(ButtonClick),
}

#[derive(Deserialize)]
struct Interaction {
    #[serde(rename = "type")]
    kind: String,
    user: InteractionUser,
    #[serde(default)]
    actions: Vec<Action>,
    #[serde(default)]
    response_url: Option<String>,
}

#[derive(Deserialize)]
struct InteractionUser {
    id: String,
}

#[derive(Deserialize)]
struct Action {
    action_id: String,
    #[serde(default)]
    value: Option<String>,
}

/// Reads a form-encoded Slack post; the error says what is missing.
pub fn parse(body: &[u8]) -> Result<SlackPost, String> {
    let mut command = None;
    let mut text = None;
    let mut user_id = None;
    let mut response_url = None;
    let mut trigger_id = None;
    let mut payload = None;
    for (key, value) in form_urlencoded::parse(body) {
        let slot = match key.as_ref() {
            "command" => &mut command,
            "text" => &mut text,
            "user_id" => &mut user_id,
            "response_url" => &mut response_url,
            "trigger_id" => &mut trigger_id,
            "payload" => &mut payload,
            _ => continue,
        };
        *slot = Some(value.into_owned());
    }
    if let Some(payload) = payload {
        return parse_interaction(&payload).map(SlackPost::Click);
    }
    let command = command.ok_or("the form has neither a command nor a payload")?;
    let user_id = user_id
        .filter(|u| !u.is_empty())
        .ok_or("the slash command has no user_id")?;
    Ok(SlackPost::Command(SlashCommand {
        command,
        text: text.unwrap_or_default(),
        user_id,
        response_url: response_url.filter(|u| !u.is_empty()),
        trigger_id: trigger_id.filter(|t| !t.is_empty()),
    }))
}

fn parse_interaction(payload: &str) -> Result<ButtonClick, String> {
    let i: Interaction = serde_json::from_str(payload)
        .map_err(|e| format!("the interactivity payload is not what Slack sends: {e}"))?;
    if i.kind != "block_actions" {
        return Err(format!("interactivity of type '{}' is not used", i.kind));
    }
    let action = i
        .actions
        .into_iter()
        .next()
        .ok_or("the block_actions payload has no action")?;
    Ok(ButtonClick {
        user_id: i.user.id,
        action_id: action.action_id,
        value: action.value.unwrap_or_default(),
        response_url: i.response_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slash_command_is_read_from_its_form() {
        let body = "token=x&team_id=T1&user_id=U2CERLKJA&command=%2Fpaved&text=search+payments&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1%2F1%2Fx&trigger_id=1.2.3";
        let SlackPost::Command(c) = parse(body.as_bytes()).expect("parsed") else {
            panic!("not a command");
        };
        assert_eq!(c.command, "/paved");
        assert_eq!(c.text, "search payments");
        assert_eq!(c.user_id, "U2CERLKJA");
        assert_eq!(
            c.response_url.as_deref(),
            Some("https://hooks.slack.com/commands/T1/1/x")
        );
    }

    #[test]
    fn a_button_click_is_read_from_its_payload() {
        let payload = r#"{"type":"block_actions","user":{"id":"U1","username":"a"},"response_url":"https://hooks.slack.com/actions/T1/1/x","actions":[{"action_id":"approve","block_id":"decide:req-1","value":"req-1","type":"button"}]}"#;
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", payload)
            .finish();
        let SlackPost::Click(c) = parse(body.as_bytes()).expect("parsed") else {
            panic!("not a click");
        };
        assert_eq!(
            (c.action_id.as_str(), c.value.as_str()),
            ("approve", "req-1")
        );
    }

    #[test]
    fn malformed_posts_say_what_is_wrong() {
        assert!(
            parse(b"hello")
                .expect_err("refused")
                .contains("neither a command")
        );
        assert!(
            parse(b"command=%2Fpaved&text=help")
                .expect_err("refused")
                .contains("user_id")
        );
        assert!(
            parse(b"payload=%7Bnot+json")
                .expect_err("refused")
                .contains("not what Slack sends")
        );
        let view = form_urlencoded::Serializer::new(String::new())
            .append_pair(
                "payload",
                r#"{"type":"view_submission","user":{"id":"U1"}}"#,
            )
            .finish();
        assert!(
            parse(view.as_bytes())
                .expect_err("refused")
                .contains("view_submission")
        );
    }
}
