//! The Slack samples in `events/` (for `cargo lambda invoke`) are signed the way Slack signs:
//! with the signing secret of Slack's own documentation example, at their timestamp.

use chatops::slack::payloads::{self, SlackPost};
use chatops::slack::signature::{SigningSecret, verify};
use serde_json::Value;

const SLACK_DOCS_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

fn sample(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("sample")).expect("json")
}

#[test]
fn the_slack_samples_verify_and_parse() {
    for (name, is_click) in [
        ("chatops.apigw.slash-command.json", false),
        ("chatops.apigw.approve-button.json", true),
    ] {
        let e = sample(name);
        let body = e["body"].as_str().expect("body");
        let ts = e["headers"]["x-slack-request-timestamp"]
            .as_str()
            .expect("ts");
        let now: i64 = ts.parse().expect("seconds");
        assert_eq!(
            verify(
                SigningSecret::new(SLACK_DOCS_SECRET).as_ref(),
                Some(ts),
                e["headers"]["x-slack-signature"].as_str(),
                body.as_bytes(),
                now,
            ),
            Ok(()),
            "{name}"
        );
        let post = payloads::parse(body.as_bytes()).expect(name);
        assert_eq!(matches!(post, SlackPost::Click(_)), is_click, "{name}");
    }
}

#[test]
fn the_events_api_sample_verifies() {
    let e = sample("chatops.apigw.app-mention.json");
    let body = e["body"].as_str().expect("body");
    let ts = e["headers"]["x-slack-request-timestamp"]
        .as_str()
        .expect("ts");
    assert_eq!(
        verify(
            SigningSecret::new(SLACK_DOCS_SECRET).as_ref(),
            Some(ts),
            e["headers"]["x-slack-signature"].as_str(),
            body.as_bytes(),
            ts.parse().expect("seconds"),
        ),
        Ok(())
    );
    let v: Value = serde_json::from_str(body).expect("json");
    assert_eq!(v["event"]["type"], "app_mention");
}
