//! Slack's request signing (v0): `X-Slack-Signature: v0=hex(HMAC-SHA256(secret,
//! "v0:{X-Slack-Request-Timestamp}:{raw body}"))`, compared in constant time, with the
//! timestamp at most five minutes from now so a captured request cannot be replayed later.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a request's timestamp may be from now, in seconds (Slack's recommendation).
pub const MAX_SKEW_SECONDS: i64 = 5 * 60;

/// The app's signing secret, from `PAVED_SLACK_SIGNING_SECRET`. Never logged.
#[derive(Clone)]
pub struct SigningSecret(String);

impl SigningSecret {
    pub fn new(secret: impl Into<String>) -> Option<Self> {
        let secret = secret.into();
        (!secret.trim().is_empty()).then_some(Self(secret))
    }

    pub fn from_env() -> Option<Self> {
        std::env::var("PAVED_SLACK_SIGNING_SECRET")
            .ok()
            .and_then(Self::new)
    }

    /// The `v0=` signature of `body` sent at `timestamp` (what Slack computes).
    pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(b"v0:");
        mac.update(timestamp.as_bytes());
        mac.update(b":");
        mac.update(body);
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(<set>)")
    }
}

/// Why a request was refused (each a 401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotConfigured,
    Missing(&'static str),
    Stale,
    Mismatch,
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Self::NotConfigured => {
                "Slack is not configured: set PAVED_SLACK_SIGNING_SECRET to accept its requests"
                    .into()
            }
            Self::Missing(header) => format!("the {header} header is missing or unreadable"),
            Self::Stale => format!(
                "the request's timestamp is more than {MAX_SKEW_SECONDS} seconds from now (a replay?)"
            ),
            Self::Mismatch => "the Slack signature does not match the body".into(),
        }
    }
}

/// Checks one request: `timestamp` and `signature` are its `X-Slack-Request-Timestamp` and
/// `X-Slack-Signature` headers, `now` the current time in seconds since the epoch.
pub fn verify(
    secret: Option<&SigningSecret>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Refusal> {
    let secret = secret.ok_or(Refusal::NotConfigured)?;
    let timestamp = timestamp.ok_or(Refusal::Missing("X-Slack-Request-Timestamp"))?;
    let signature = signature.ok_or(Refusal::Missing("X-Slack-Signature"))?;
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Refusal::Missing("X-Slack-Request-Timestamp"))?;
    // `abs_diff` cannot overflow: a crafted `i64::MIN` or `i64::MAX` is only very stale.
    if now.abs_diff(sent) > MAX_SKEW_SECONDS.unsigned_abs() {
        return Err(Refusal::Stale);
    }
    let expected = secret.sign(timestamp.trim(), body);
    if bool::from(expected.as_bytes().ct_eq(signature.trim().as_bytes())) {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of Slack's "Verifying requests from Slack" page, verbatim.
    const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const SLACK_TIMESTAMP: &str = "1531420618";
    const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SLACK_SIGNATURE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn check(ts: &str, sig: &str, body: &str, now: i64) -> Result<(), Refusal> {
        verify(
            SigningSecret::new(SLACK_SECRET).as_ref(),
            Some(ts),
            Some(sig),
            body.as_bytes(),
            now,
        )
    }

    #[test]
    fn slacks_documented_example_verifies() {
        let now = 1_531_420_618 + 30;
        assert_eq!(
            check(SLACK_TIMESTAMP, SLACK_SIGNATURE, SLACK_BODY, now),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_timestamp_or_signature_is_refused() {
        let now = 1_531_420_618;
        let tampered = SLACK_BODY.replace("roadrunner", "coyote");
        assert_eq!(
            check(SLACK_TIMESTAMP, SLACK_SIGNATURE, &tampered, now),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            check("1531420619", SLACK_SIGNATURE, SLACK_BODY, now),
            Err(Refusal::Mismatch)
        );
        let other = SLACK_SIGNATURE.replace("a2114d", "a2114e");
        assert_eq!(
            check(SLACK_TIMESTAMP, &other, SLACK_BODY, now),
            Err(Refusal::Mismatch)
        );
    }

    #[test]
    fn requests_more_than_five_minutes_off_are_refused_either_way() {
        let sent = 1_531_420_618;
        assert_eq!(
            check(SLACK_TIMESTAMP, SLACK_SIGNATURE, SLACK_BODY, sent + 300),
            Ok(())
        );
        assert_eq!(
            check(SLACK_TIMESTAMP, SLACK_SIGNATURE, SLACK_BODY, sent + 301),
            Err(Refusal::Stale)
        );
        assert_eq!(
            check(SLACK_TIMESTAMP, SLACK_SIGNATURE, SLACK_BODY, sent - 301),
            Err(Refusal::Stale)
        );
    }

    #[test]
    fn extreme_timestamps_are_stale_not_a_panic() {
        let secret = SigningSecret::new(SLACK_SECRET);
        let sent = 1_531_420_618;
        let huge = "99999999999999999999999999";
        for now in [i64::MIN, -1, 0, sent, i64::MAX] {
            for ts in [i64::MIN, i64::MIN + 1, -1, i64::MAX - 1, i64::MAX] {
                if now.abs_diff(ts) <= 300 {
                    continue;
                }
                let ts = ts.to_string();
                // Signed correctly for the crafted timestamp: only its age refuses it.
                let signature = secret
                    .as_ref()
                    .expect("secret")
                    .sign(&ts, SLACK_BODY.as_bytes());
                assert_eq!(
                    check(&ts, &signature, SLACK_BODY, now),
                    Err(Refusal::Stale),
                    "timestamp {ts} at {now}"
                );
            }
            // Beyond i64: unreadable, so missing.
            assert_eq!(
                check(huge, SLACK_SIGNATURE, SLACK_BODY, now),
                Err(Refusal::Missing("X-Slack-Request-Timestamp"))
            );
        }
        // Both extremes at once, and an exact extreme that matches now, still verify by age.
        let max = i64::MAX.to_string();
        let signed = secret
            .as_ref()
            .expect("secret")
            .sign(&max, SLACK_BODY.as_bytes());
        assert_eq!(check(&max, &signed, SLACK_BODY, i64::MAX), Ok(()));
        let min = i64::MIN.to_string();
        let signed = secret
            .as_ref()
            .expect("secret")
            .sign(&min, SLACK_BODY.as_bytes());
        assert_eq!(check(&min, &signed, SLACK_BODY, i64::MIN + 300), Ok(()));
        assert_eq!(
            check(&min, &signed, SLACK_BODY, i64::MIN + 301),
            Err(Refusal::Stale)
        );
    }

    #[test]
    fn nothing_is_accepted_without_a_secret_or_headers() {
        let now = 1_531_420_618;
        assert_eq!(
            verify(
                None,
                Some(SLACK_TIMESTAMP),
                Some(SLACK_SIGNATURE),
                SLACK_BODY.as_bytes(),
                now
            ),
            Err(Refusal::NotConfigured)
        );
        let secret = SigningSecret::new(SLACK_SECRET);
        assert_eq!(
            verify(
                secret.as_ref(),
                None,
                Some(SLACK_SIGNATURE),
                SLACK_BODY.as_bytes(),
                now
            ),
            Err(Refusal::Missing("X-Slack-Request-Timestamp"))
        );
        assert_eq!(
            verify(
                secret.as_ref(),
                Some("yesterday"),
                Some(SLACK_SIGNATURE),
                SLACK_BODY.as_bytes(),
                now
            ),
            Err(Refusal::Missing("X-Slack-Request-Timestamp"))
        );
        assert_eq!(
            verify(
                secret.as_ref(),
                Some(SLACK_TIMESTAMP),
                None,
                SLACK_BODY.as_bytes(),
                now
            ),
            Err(Refusal::Missing("X-Slack-Signature"))
        );
        assert!(SigningSecret::new("  ").is_none());
    }
}
