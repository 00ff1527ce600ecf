//! Which request made a resource. Names are deterministic (a retry must find its own earlier
//! attempt), so a name can outlive its request: a cancelled, failed or deleted request frees
//! its name, and the next request may make a new thing under it. Every driver therefore
//! stamps the request id on what it creates, in the same place it creates it (PostgreSQL:
//! a comment on the database and the role; git: a config entry in the bare repository; SQS
//! and DynamoDB: a tag), and reads it back before it adopts, undoes or deletes:
//!
//! - create: absent → make it, marked; ours → an earlier attempt, finish it; anything else
//!   (another request's, or no marker at all) → [`codes::NAME_TAKEN`], untouched;
//! - undo and delete: absent → nothing to do; ours → remove it; anything else →
//!   [`codes::NOT_OWNED`], untouched.

use paved_core::provisioning::{DriverError, codes};
use sha2::{Digest, Sha256};

/// The tag key (SQS, DynamoDB) and the prefix of the marker text (PostgreSQL comments).
pub const TAG: &str = "paved:request-id";

/// The marker text naming `request_id`: `paved:request-id=<id>`.
pub fn marker(request_id: &str) -> String {
    format!("{TAG}={request_id}")
}

/// The request id a marker text names, if it is one of paved's.
pub fn parse(text: &str) -> Option<&str> {
    text.trim()
        .strip_prefix(TAG)?
        .strip_prefix('=')
        .filter(|id| !id.is_empty())
}

/// A short, stable, filesystem- and identifier-safe token of a request id, for names that
/// belong to one request only (a pending database, a staging directory).
pub fn request_token(request_id: &str) -> String {
    hex::encode(&Sha256::digest(request_id.as_bytes())[..8])
}

/// What a deterministic name holds, as seen by one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Nothing by that name.
    Absent,
    /// Made by this request (an earlier attempt, or the step being undone).
    Ours,
    /// Something else: another request's (its id), or one without paved's marker (`None`).
    Other(Option<String>),
}

impl Holder {
    /// From a lookup: `None` when nothing has the name, else the request id its marker names
    /// (`None` for no marker).
    pub fn of(found: Option<Option<String>>, request_id: &str) -> Self {
        match found {
            None => Self::Absent,
            Some(Some(id)) if id == request_id => Self::Ours,
            Some(other) => Self::Other(other),
        }
    }

    /// For a create: `Ok(true)` when it is ours already, `Ok(false)` when the name is free,
    /// [`codes::NAME_TAKEN`] otherwise.
    pub fn for_create(self, what: &str) -> Result<bool, DriverError> {
        match self {
            Self::Absent => Ok(false),
            Self::Ours => Ok(true),
            Self::Other(by) => Err(DriverError::NonRetryable {
                code: codes::NAME_TAKEN,
                message: format!(
                    "{what} exists already and {}; it is left alone, pick another name",
                    whose(&by)
                ),
            }),
        }
    }

    /// For an undo or delete: `Ok(true)` when it is ours to remove, `Ok(false)` when nothing
    /// is there, [`codes::NOT_OWNED`] otherwise.
    pub fn for_removal(self, what: &str) -> Result<bool, DriverError> {
        match self {
            Self::Absent => Ok(false),
            Self::Ours => Ok(true),
            Self::Other(by) => Err(not_owned(format!(
                "{what} {}, not by this request; it is left alone",
                whose(&by)
            ))),
        }
    }
}

fn whose(by: &Option<String>) -> String {
    match by {
        Some(id) => format!("was made by request {id}"),
        None => "carries no paved marker (paved did not make it)".to_owned(),
    }
}

/// A [`codes::NOT_OWNED`] refusal.
pub fn not_owned(message: impl Into<String>) -> DriverError {
    DriverError::NonRetryable {
        code: codes::NOT_OWNED,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_decide_who_may_touch_what() {
        assert_eq!(marker("req-1"), "paved:request-id=req-1");
        assert_eq!(parse(&marker("req-1")), Some("req-1"));
        assert_eq!(parse("paved:request-id="), None);
        assert_eq!(parse("made by hand"), None);

        assert_eq!(Holder::of(None, "req-1"), Holder::Absent);
        assert_eq!(
            Holder::of(Some(Some("req-1".into())), "req-1"),
            Holder::Ours
        );
        let theirs = Holder::of(Some(Some("req-2".into())), "req-1");
        assert_eq!(theirs, Holder::Other(Some("req-2".into())));
        let unmarked = Holder::of(Some(None), "req-1");

        assert_eq!(Holder::Absent.for_create("x"), Ok(false));
        assert_eq!(Holder::Ours.for_create("x"), Ok(true));
        let e = theirs
            .clone()
            .for_create("the database d")
            .expect_err("taken");
        assert_eq!(e.code(), "NonRetryable.NameTaken");
        assert!(e.to_string().contains("req-2"), "{e}");
        let e = unmarked
            .clone()
            .for_create("the database d")
            .expect_err("taken");
        assert_eq!(e.code(), "NonRetryable.NameTaken");
        assert!(e.to_string().contains("no paved marker"), "{e}");

        assert_eq!(Holder::Absent.for_removal("x"), Ok(false));
        assert_eq!(Holder::Ours.for_removal("x"), Ok(true));
        assert_eq!(
            theirs.for_removal("x").expect_err("refused").code(),
            "NonRetryable.NotOwned"
        );
        assert_eq!(
            unmarked.for_removal("x").expect_err("refused").code(),
            "NonRetryable.NotOwned"
        );

        assert_eq!(request_token("req-1"), request_token("req-1"));
        assert_ne!(request_token("req-1"), request_token("req-2"));
        assert_eq!(request_token("req-1").len(), 16);
    }
}
