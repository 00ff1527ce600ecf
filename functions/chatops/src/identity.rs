//! Who a Slack user is on paved: the catalog User annotated `slack.com/user-id: <Slack id>`,
//! with the Groups it is a member of. Nothing in a Slack payload but the verified user id is
//! trusted.

use paved_core::auth::Identity;
use paved_core::catalog::{CatalogRepository, EntityRef, FilterSet, Kind, RefDefaults};
use serde_json::Value;

pub const SLACK_USER_ID: &str = "slack.com/user-id";

/// The paved identity of a Slack user id, if exactly one catalog User carries it.
pub fn identity_of(catalog: &CatalogRepository, slack_user: &str) -> Option<Identity> {
    // Slack ids are upper-case letters and digits; anything else cannot be one.
    if slack_user.is_empty() || !slack_user.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let filter = FilterSet::parse(&[format!(
        "kind=user,metadata.annotations.{SLACK_USER_ID}={slack_user}"
    )])
    .ok()?;
    let index = catalog.read();
    let ids = index.filter_ids(&filter);
    let mut users = ids
        .iter()
        .filter_map(|id| index.view(id))
        .filter(|view| view.kind == Kind::User);
    let user = users.next()?;
    if users.next().is_some() {
        tracing::warn!(
            slack_user,
            "several catalog users carry this Slack id; none is used"
        );
        return None;
    }
    identity_from(&user.entity_ref, &user.json)
}

/// The identity of a catalog User named by reference (a bot's `actor`), if it exists.
pub fn identity_of_user(catalog: &CatalogRepository, user: &EntityRef) -> Option<Identity> {
    if user.kind() != "user" {
        return None;
    }
    let index = catalog.read();
    let view = index.get_by_ref(user)?;
    identity_from(&view.entity_ref, &view.json)
}

/// A User entity's identity: itself and the Groups of its `memberOf` relations.
fn identity_from(user: &EntityRef, json: &[u8]) -> Option<Identity> {
    let entity: Value = serde_json::from_slice(json).ok()?;
    let groups = entity
        .get("relations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.get("type").and_then(Value::as_str) == Some("memberOf"))
        .filter_map(|r| r.get("targetRef").and_then(Value::as_str))
        .filter_map(|target| {
            EntityRef::parse(
                target,
                RefDefaults {
                    kind: Some("group"),
                    namespace: "default",
                },
            )
            .ok()
        })
        .collect::<Vec<_>>();
    Identity::new(user, &groups).ok()
}

/// What an unmapped user is told.
pub fn unmapped_message(slack_user: &str) -> String {
    format!(
        "I don't know who you are on paved yet. Add the annotation `{SLACK_USER_ID}: {slack_user}` to your User entity in the catalog (or ask your platform team), then try again."
    )
}
