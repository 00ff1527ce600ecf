//! Opaque page cursors for `GET /v1/requests`: base64url of a versioned position (the last
//! request's creation time and id, newest first) and a fingerprint of the filters it was
//! issued for. A cursor that does not decode, has another version, or comes back with other
//! filters is refused with 400 `invalid_cursor`, never silently misread.

use crate::Error;
use crate::ErrorCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const VERSION: u8 = 1;

/// Where the next page starts: after this request in newest-first order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Position {
    pub created_at: DateTime<Utc>,
    pub id: String,
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    v: u8,
    /// The first 16 hex digits of the filters' SHA-256.
    f: String,
    at: Position,
}

/// A short fingerprint of the filters (as normalised strings, in a fixed order).
pub(super) fn fingerprint(filters: &[Option<&str>]) -> String {
    let mut h = Sha256::new();
    for f in filters {
        h.update(f.unwrap_or("\u{0}").as_bytes());
        h.update([0xff]);
    }
    hex::encode(h.finalize())[..16].to_owned()
}

pub(super) fn encode(filters: &str, at: Position) -> String {
    let c = Cursor {
        v: VERSION,
        f: filters.to_owned(),
        at,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
}

pub(super) fn decode(cursor: &str, filters: &str) -> Result<Position, Error> {
    let bad = |why: &str| {
        Error::bad_request(
            ErrorCode::InvalidCursor,
            format!("the cursor {why}; start again without it"),
        )
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| bad("is not one this API issued"))?;
    let c: Cursor =
        serde_json::from_slice(&bytes).map_err(|_| bad("is not one this API issued"))?;
    if c.v != VERSION {
        return Err(bad("is from another version of paved"));
    }
    if c.f != filters {
        return Err(bad("was issued for other filters"));
    }
    Ok(c.at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_tampering() {
        let f = fingerprint(&[Some("READY"), None]);
        let at = Position {
            created_at: Utc::now(),
            id: "req-1".into(),
        };
        let c = encode(&f, at.clone());
        assert_eq!(decode(&c, &f).expect("valid"), at);
        let other = fingerprint(&[Some("FAILED"), None]);
        assert_eq!(
            decode(&c, &other).expect_err("other filters").code(),
            "invalid_cursor"
        );
        assert_eq!(
            decode("not base64!", &f).expect_err("junk").code(),
            "invalid_cursor"
        );
        let v9 = URL_SAFE_NO_PAD
            .encode(br#"{"v":9,"f":"x","at":{"created_at":"2026-01-01T00:00:00Z","id":"r"}}"#);
        assert_eq!(
            decode(&v9, &f).expect_err("version").code(),
            "invalid_cursor"
        );
        assert_ne!(
            fingerprint(&[Some("a"), None]),
            fingerprint(&[None, Some("a")])
        );
    }
}
