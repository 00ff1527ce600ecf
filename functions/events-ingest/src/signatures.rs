//! Webhook authenticity, each as its sender documents it. A source with no secret configured
//! is refused: nothing is ever accepted unsigned.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotConfigured(&'static str),
    Missing(&'static str),
    Mismatch,
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Self::NotConfigured(setting) => {
                format!("this source is not configured: set {setting} to accept its webhooks")
            }
            Self::Missing(header) => format!("the {header} header is missing"),
            Self::Mismatch => "the signature does not match the body".into(),
        }
    }
}

/// The webhook secrets, from `PAVED_GITHUB_WEBHOOK_SECRET`, `PAVED_GITLAB_WEBHOOK_TOKEN` and
/// `PAVED_PAGERDUTY_WEBHOOK_SECRET`. Never logged.
#[derive(Clone, Default)]
pub struct WebhookSecrets {
    pub github: Option<String>,
    pub gitlab: Option<String>,
    pub pagerduty: Option<String>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("github", &self.github.as_ref().map(|_| "<set>"))
            .field("gitlab", &self.gitlab.as_ref().map(|_| "<set>"))
            .field("pagerduty", &self.pagerduty.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl WebhookSecrets {
    pub fn from_env() -> Self {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            github: get("PAVED_GITHUB_WEBHOOK_SECRET"),
            gitlab: get("PAVED_GITLAB_WEBHOOK_TOKEN"),
            pagerduty: get("PAVED_PAGERDUTY_WEBHOOK_SECRET"),
        }
    }
}

fn hmac_matches(secret: &str, body: &[u8], hex_signature: &str) -> bool {
    let Ok(expected) = hex::decode(hex_signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
pub fn github(secret: Option<&str>, header: Option<&str>, body: &[u8]) -> Result<(), Refusal> {
    let secret = secret.ok_or(Refusal::NotConfigured("PAVED_GITHUB_WEBHOOK_SECRET"))?;
    let header = header.ok_or(Refusal::Missing("X-Hub-Signature-256"))?;
    let hex = header.strip_prefix("sha256=").ok_or(Refusal::Mismatch)?;
    hmac_matches(secret, body, hex)
        .then_some(())
        .ok_or(Refusal::Mismatch)
}

/// GitLab: `X-Gitlab-Token` equals the configured token (compared in constant time).
pub fn gitlab(token: Option<&str>, header: Option<&str>) -> Result<(), Refusal> {
    let token = token.ok_or(Refusal::NotConfigured("PAVED_GITLAB_WEBHOOK_TOKEN"))?;
    let header = header.ok_or(Refusal::Missing("X-Gitlab-Token"))?;
    bool::from(token.as_bytes().ct_eq(header.as_bytes()))
        .then_some(())
        .ok_or(Refusal::Mismatch)
}

/// PagerDuty v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`, HMAC-SHA256 of the body; any
/// one matching signature is enough (PagerDuty sends several while a secret rotates).
pub fn pagerduty(secret: Option<&str>, header: Option<&str>, body: &[u8]) -> Result<(), Refusal> {
    let secret = secret.ok_or(Refusal::NotConfigured("PAVED_PAGERDUTY_WEBHOOK_SECRET"))?;
    let header = header.ok_or(Refusal::Missing("X-PagerDuty-Signature"))?;
    header
        .split(',')
        .filter_map(|s| s.trim().strip_prefix("v1="))
        .any(|hex| hmac_matches(secret, body, hex))
        .then_some(())
        .ok_or(Refusal::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn github_documented_example_verifies() {
        // docs.github.com, "Validating webhook deliveries": secret "It's a Secret to Everybody",
        // payload "Hello, World!".
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            github(
                Some("It's a Secret to Everybody"),
                Some(header),
                b"Hello, World!"
            ),
            Ok(())
        );
        assert_eq!(
            github(Some("another secret"), Some(header), b"Hello, World!"),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            github(None, Some(header), b"Hello, World!"),
            Err(Refusal::NotConfigured("PAVED_GITHUB_WEBHOOK_SECRET"))
        );
        assert_eq!(
            github(Some("s"), None, b"x"),
            Err(Refusal::Missing("X-Hub-Signature-256"))
        );
        assert_eq!(
            github(Some("s"), Some("sha1=abc"), b"x"),
            Err(Refusal::Mismatch)
        );
    }

    #[test]
    fn pagerduty_accepts_any_listed_signature() {
        let body = br#"{"event":{"id":"01"}}"#;
        let good = sign("pd-secret", body);
        let header = format!("v1=deadbeef,v1={good}");
        assert_eq!(pagerduty(Some("pd-secret"), Some(&header), body), Ok(()));
        assert_eq!(
            pagerduty(Some("pd-secret"), Some("v1=deadbeef"), body),
            Err(Refusal::Mismatch)
        );
    }

    #[test]
    fn gitlab_token_must_match() {
        assert_eq!(gitlab(Some("t0k3n"), Some("t0k3n")), Ok(()));
        assert_eq!(gitlab(Some("t0k3n"), Some("t0k3")), Err(Refusal::Mismatch));
        assert_eq!(
            gitlab(None, Some("t0k3n")),
            Err(Refusal::NotConfigured("PAVED_GITLAB_WEBHOOK_TOKEN"))
        );
    }
}
