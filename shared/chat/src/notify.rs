//! Notifications to Slack about a request: it waits for an approval (to the approvers'
//! channel, with the buttons), or it became READY or FAILED (back to the requester: the slash
//! command's `response_url` while it lives, else a direct message from the bot).
//!
//! They travel on the notifications queue as [`ChatNotification`]s; the worker delivers each
//! once ([`crate::notify`] only sends). A failed post is an error, so the queue retries it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::Url;
use reqwest::redirect::Policy;

use serde_json::{Value, json};

use crate::blocks::{ephemeral, escape, section};
use crate::messages::request_blocks;
use crate::origins::ChatOrigin;

/// The queue message and what happened, defined with the other worker messages in
/// `paved_core::messages` (the worker reads every queue body into one tagged enum).
pub use paved_core::messages::{ChatEvent, ChatNotification};

/// Where Slack notifications go, from the environment:
/// - `PAVED_SLACK_APPROVALS_WEBHOOK`: an incoming webhook of the approvers' channel;
/// - `PAVED_SLACK_BOT_TOKEN`: the bot's token, for direct messages (`chat.postMessage`);
/// - `PAVED_SLACK_API_URL`: Slack's Web API (default `https://slack.com/api`).
///
/// Secrets are never logged.
#[derive(Clone, Default)]
pub struct SlackTargets {
    pub approvals_webhook: Option<String>,
    /// Where drift, repairs and unrepairable resources are told (`PAVED_SLACK_RESOURCES_WEBHOOK`:
    /// the platform's resources channel; the message names the owning team).
    pub resources_webhook: Option<String>,
    pub bot_token: Option<String>,
    pub api_url: String,
}

impl std::fmt::Debug for SlackTargets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackTargets")
            .field(
                "approvals_webhook",
                &self.approvals_webhook.as_ref().map(|_| "<set>"),
            )
            .field(
                "resources_webhook",
                &self.resources_webhook.as_ref().map(|_| "<set>"),
            )
            .field("bot_token", &self.bot_token.as_ref().map(|_| "<set>"))
            .field("api_url", &self.api_url)
            .finish()
    }
}

impl SlackTargets {
    /// The targets, or `None` when Slack is not set up at all (none of
    /// `PAVED_SLACK_SIGNING_SECRET`, `PAVED_SLACK_APPROVALS_WEBHOOK`, `PAVED_SLACK_BOT_TOKEN`,
    /// nor `PAVED_SLACK_NOTIFICATIONS=on`, which the worker on AWS has: it delivers to
    /// `response_url`s without any secret): then no chat notification is queued.
    pub fn from_env() -> Option<Self> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let targets = Self {
            approvals_webhook: get("PAVED_SLACK_APPROVALS_WEBHOOK"),
            resources_webhook: get("PAVED_SLACK_RESOURCES_WEBHOOK"),
            bot_token: get("PAVED_SLACK_BOT_TOKEN"),
            api_url: get("PAVED_SLACK_API_URL").unwrap_or_else(|| "https://slack.com/api".into()),
        };
        let used = get("PAVED_SLACK_NOTIFICATIONS").is_some_and(|v| v == "on")
            || get("PAVED_SLACK_SIGNING_SECRET").is_some()
            || targets.approvals_webhook.is_some()
            || targets.bot_token.is_some();
        used.then_some(targets)
    }
}

/// Why a delivery failed; every one is retried by the queue.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("posting to Slack failed: {0}")]
    Transport(String),
    #[error("Slack refused the post ({status}): {body}")]
    Refused { status: u16, body: String },
    /// The URL is not one paved posts to ([`reply_url`]); nothing was sent.
    #[error("not posting to that URL: {0}")]
    NotAllowed(String),
}

/// The URL a caller gave for a reply (a direct invocation's `reply_to`), parsed, if paved may
/// post to it: `https://` to a named host or a routable address, or `http://` to loopback
/// only (`localhost`, `127.0.0.0/8`, `[::1]`: a local stand-in). Refused: anything that does
/// not parse as a URL, other schemes, user info (`https://hooks.slack.com@evil.example/` goes
/// to `evil.example`), and link-local, unspecified, broadcast or multicast addresses (the
/// cloud metadata services live at `169.254.169.254` and `[fd00:ec2::254]`) in any spelling
/// the URL standard reads as one (`0251.0376.0251.0376`, `2852039166`, `[::ffff:a9fe:a9fe]`).
///
/// The host is compared exactly, after parsing, never as a prefix of the text; the result is
/// what is posted to, so the check and the request cannot read the URL differently.
pub fn reply_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a URL with user info (user@host) is not accepted".into());
    }
    let host = match url.host_str() {
        Some(host) if !host.is_empty() => host,
        _ => return Err("the URL has no host".into()),
    };
    // The parser writes an address host canonically: dotted decimal, or `[v6]`.
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .and_then(|h| h.parse::<Ipv6Addr>().ok())
            .map(|v6| v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
    };
    match url.scheme() {
        "https" => match ip {
            Some(ip) if !routable(ip) => Err(format!(
                "{ip} is a link-local, metadata, unspecified, broadcast or multicast address"
            )),
            _ => Ok(url),
        },
        "http" => {
            let loopback = match ip {
                Some(ip) => ip.is_loopback(),
                None => host.eq_ignore_ascii_case("localhost"),
            };
            if loopback {
                Ok(url)
            } else {
                Err(
                    "plain http:// is accepted only to loopback (localhost, 127.0.0.1, [::1])"
                        .into(),
                )
            }
        }
        other => Err(format!("the scheme {other}: is not https:")),
    }
}

fn routable_v4(v4: Ipv4Addr) -> bool {
    // 0.0.0.0/8 is "this network": Linux connects 0.0.0.0 to the local host.
    !(v4.is_link_local() || v4.is_broadcast() || v4.is_multicast() || v4.octets()[0] == 0)
}

/// Whether an address may be posted to over https: not link-local (the metadata services),
/// unspecified, broadcast or multicast.
fn routable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => routable_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            // fe80::/10 link-local; fd00:ec2::254 is EC2's metadata service over IPv6.
            let link_local = (s[0] & 0xffc0) == 0xfe80;
            let metadata = v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
            // An IPv4 address inside one (`::a.b.c.d`, NAT64's `64:ff9b::a.b.c.d`) is judged
            // as that address; `::1` is loopback, not 0.0.0.1.
            let embedded = (s[..6] == [0; 6] && !v6.is_loopback()
                || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0])
            .then(|| Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32));
            !(link_local
                || metadata
                || v6.is_unspecified()
                || v6.is_multicast()
                || embedded.is_some_and(|v4| !routable_v4(v4)))
        }
    }
}

/// Resolves host names to the addresses [`routable`] allows, only: a `reply_to` whose name
/// resolves to the metadata service (or any link-local address) is refused at connect time,
/// which [`reply_url`], reading only what the URL says, cannot see.
struct RoutableOnly;

impl reqwest::dns::Resolve for RoutableOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = keep_routable(&host, found)?;
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The addresses of `host` that may be posted to; none is an error naming the host.
fn keep_routable(host: &str, addresses: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, String> {
    let kept: Vec<SocketAddr> = addresses
        .into_iter()
        .filter(|a| {
            let ip = match a.ip() {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
                v4 => v4,
            };
            routable(ip)
        })
        .collect();
    if kept.is_empty() {
        Err(format!(
            "{host} resolves to no address paved may post to (link-local, metadata, unspecified, broadcast or multicast only)"
        ))
    } else {
        Ok(kept)
    }
}

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Posted(&'static str),
    /// Nowhere to post (no origin, no webhook or no token): logged, not retried.
    NoTarget(&'static str),
}

/// Sends notifications to Slack over HTTPS (rustls with ring).
#[derive(Debug, Clone)]
pub struct SlackNotifier {
    /// Built on the first post, not at start-up: building it reads and parses the system's CA
    /// certificates (4-6 ms here), which a cold start that posts nothing should not pay.
    http: Arc<OnceLock<Result<reqwest::Client, String>>>,
    targets: SlackTargets,
}

impl SlackNotifier {
    pub fn new(targets: SlackTargets) -> Self {
        // One process-wide crypto provider; another caller may have installed it already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            http: Arc::default(),
            targets,
        }
    }

    fn client(&self) -> Result<&reqwest::Client, DeliveryError> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    // A redirect would take a post checked for one host to another (a
                    // `reply_to` that answers 307 to the metadata service): never followed.
                    .redirect(Policy::none())
                    // And a name that resolves to one is refused the same way.
                    .dns_resolver(RoutableOnly)
                    .connect_timeout(Duration::from_secs(3))
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| format!("building the Slack client: {e}"))
            })
            .as_ref()
            .map_err(|e| DeliveryError::Transport(e.clone()))
    }

    /// Delivers one notification about `request` (its API view), given where it came from.
    pub async fn deliver(
        &self,
        note: &ChatNotification,
        request: &Value,
        origin: Option<&ChatOrigin>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Delivered, DeliveryError> {
        match note.event {
            ChatEvent::Drifted | ChatEvent::Repaired | ChatEvent::Unrepairable => {
                let Some(webhook) = &self.targets.resources_webhook else {
                    return Ok(Delivered::NoTarget(
                        "PAVED_SLACK_RESOURCES_WEBHOOK is not set",
                    ));
                };
                let text = resource_text(note.event, request);
                self.post(
                    webhook,
                    &json!({"text": text, "blocks": [section(&text)]}),
                    None,
                )
                .await?;
                Ok(Delivered::Posted("resources channel"))
            }
            ChatEvent::ApprovalNeeded => {
                let Some(webhook) = &self.targets.approvals_webhook else {
                    return Ok(Delivered::NoTarget(
                        "PAVED_SLACK_APPROVALS_WEBHOOK is not set",
                    ));
                };
                let (text, mut blocks) = request_blocks(request, "needs your approval");
                blocks.insert(0, section(":raised_hand: *An approval is needed*"));
                self.post(webhook, &json!({"text": text, "blocks": blocks}), None)
                    .await?;
                Ok(Delivered::Posted("approvals channel"))
            }
            ChatEvent::Ready | ChatEvent::Failed => {
                let verb = if note.event == ChatEvent::Ready {
                    "is ready"
                } else {
                    "failed"
                };
                let (text, blocks) = request_blocks(request, verb);
                let Some(origin) = origin else {
                    return Ok(Delivered::NoTarget("the request did not come from Slack"));
                };
                if let Some(url) = origin.live_response_url(now) {
                    self.post(url, &ephemeral(text, blocks), None).await?;
                    return Ok(Delivered::Posted("response_url"));
                }
                let Some(token) = &self.targets.bot_token else {
                    return Ok(Delivered::NoTarget(
                        "the response_url expired and PAVED_SLACK_BOT_TOKEN is not set",
                    ));
                };
                let url = format!(
                    "{}/chat.postMessage",
                    self.targets.api_url.trim_end_matches('/')
                );
                let body = json!({"channel": origin.slack_user, "text": text, "blocks": blocks});
                self.post(&url, &body, Some(token)).await?;
                Ok(Delivered::Posted("direct message"))
            }
        }
    }

    /// Posts a message to a channel (or a thread) as the bot: `chat.postMessage`.
    pub async fn post_message(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
        blocks: &[Value],
    ) -> Result<(), DeliveryError> {
        let Some(token) = &self.targets.bot_token else {
            return Err(DeliveryError::Refused {
                status: 0,
                body: "PAVED_SLACK_BOT_TOKEN is not set".into(),
            });
        };
        let url = format!(
            "{}/chat.postMessage",
            self.targets.api_url.trim_end_matches('/')
        );
        let mut body = json!({"channel": channel, "text": text, "blocks": blocks});
        if let Some(ts) = thread_ts {
            body["thread_ts"] = json!(ts);
        }
        self.post(&url, &body, Some(token)).await
    }

    /// Whether a bot token is configured (needed for [`post_message`](Self::post_message)).
    pub fn has_bot_token(&self) -> bool {
        self.targets.bot_token.is_some()
    }

    /// Posts a message to a `response_url`-like URL a caller gave (no token), if
    /// [`reply_url`] accepts it; a redirect it answers is a refusal, not followed.
    pub async fn post_to(&self, url: &str, body: &Value) -> Result<(), DeliveryError> {
        let url = reply_url(url).map_err(DeliveryError::NotAllowed)?;
        self.post(url.as_str(), body, None).await
    }

    async fn post(
        &self,
        url: &str,
        body: &Value,
        token: Option<&str>,
    ) -> Result<(), DeliveryError> {
        let mut request = self.client()?.post(url).json(body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request
            .send()
            .await
            .map_err(|e| DeliveryError::Transport(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        // The Web API answers 200 with {"ok": false, "error": ...} when it refuses.
        let refused_in_body = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("ok").and_then(Value::as_bool))
            == Some(false);
        if !(200..300).contains(&status) || refused_in_body {
            return Err(DeliveryError::Refused {
                status,
                body: text.chars().take(200).collect(),
            });
        }
        Ok(())
    }
}

/// One line about a resource transition, from the resource's API view (`type`, `name`,
/// `environment`, `owner`, `drift`), every value escaped for Slack's mrkdwn.
fn resource_text(event: ChatEvent, resource: &Value) -> String {
    let field = |k: &str| escape(resource.get(k).and_then(Value::as_str).unwrap_or("?"));
    let paths: Vec<String> = resource
        .get("drift")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(|x| x.get("path").and_then(Value::as_str))
                .take(10)
                .map(escape)
                .collect()
        })
        .unwrap_or_default();
    let what = format!(
        "{} `{}` in {} (owner {}, {})",
        field("type"),
        field("name"),
        field("environment"),
        field("owner"),
        field("id")
    );
    match event {
        ChatEvent::Drifted => format!(
            ":warning: *Drift* on {what}: {}",
            if paths.is_empty() {
                "see its status".into()
            } else {
                paths.join(", ")
            }
        ),
        ChatEvent::Repaired => format!(":white_check_mark: *Repaired* {what}"),
        _ => format!(
            ":rotating_light: *Unrepairable* {what}: {}",
            if paths.is_empty() {
                "see its status".into()
            } else {
                paths.join(", ")
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_message_names_its_kind_and_event() {
        let n = ChatNotification::new("req-1", ChatEvent::ApprovalNeeded);
        let v: Value = serde_json::from_str(&n.to_json()).expect("json");
        assert_eq!(
            v,
            json!({"kind": "chat", "requestId": "req-1", "event": "approval_needed"})
        );
        assert_eq!(n.delivery_key(), "req-1#approval_needed");
        let back: ChatNotification = serde_json::from_value(v).expect("parses");
        assert_eq!(back, n);
    }

    #[test]
    fn a_response_url_is_used_for_thirty_minutes() {
        let at = chrono::Utc::now();
        let o = ChatOrigin {
            request_id: "req-1".into(),
            slack_user: "U1".into(),
            response_url: Some("https://hooks.slack.com/x".into()),
            at,
        };
        assert!(
            o.live_response_url(at + chrono::Duration::minutes(29))
                .is_some()
        );
        assert!(
            o.live_response_url(at + chrono::Duration::minutes(31))
                .is_none()
        );
    }

    #[test]
    fn names_that_resolve_to_metadata_or_link_local_addresses_are_refused() {
        let at = |ip: &str| SocketAddr::new(ip.parse().expect("ip"), 443);
        for only_bad in [
            vec![at("169.254.169.254")],
            vec![at("fd00:ec2::254")],
            vec![at("::ffff:169.254.169.254"), at("fe80::1")],
            vec![at("0.0.0.0"), at("224.0.0.1")],
        ] {
            let err = keep_routable("evil.example", only_bad.clone()).expect_err("refused");
            assert!(err.contains("evil.example"), "{err}");
        }
        // A name with a usable address keeps only those.
        assert_eq!(
            keep_routable(
                "mixed.example",
                vec![at("169.254.169.254"), at("93.184.215.14")]
            ),
            Ok(vec![at("93.184.215.14")])
        );
        assert_eq!(
            keep_routable("localhost", vec![at("127.0.0.1"), at("::1")]),
            Ok(vec![at("127.0.0.1"), at("::1")])
        );
    }

    #[tokio::test]
    async fn the_resolver_keeps_what_the_system_resolves_for_a_usable_name() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().expect("name");
        let found: Vec<SocketAddr> = RoutableOnly
            .resolve(name)
            .await
            .expect("resolves")
            .collect();
        assert!(!found.is_empty());
        assert!(found.iter().all(|a| a.ip().is_loopback()), "{found:?}");
    }

    #[test]
    fn reply_urls_are_parsed_and_their_hosts_compared_exactly() {
        for good in [
            "https://hooks.slack.com/commands/T1/2/x",
            "https://example.com:8443/reply?x=1",
            "https://10.0.0.7/internal-bot",
            "https://[2001:db8::1]/x",
            "HTTPS://HOOKS.SLACK.COM/x",
            "http://127.0.0.1:8080/reply",
            "http://127.8.9.10/reply",
            "http://localhost:3000/x",
            "http://LOCALHOST/x",
            "http://[::1]:9000/x",
            // Spellings of 127.0.0.1 the URL standard reads as that address.
            "http://127.1/x",
            "http://0x7f.0.0.1/x",
            "http://2130706433/x",
            "http://[::ffff:127.0.0.1]/x",
        ] {
            assert!(reply_url(good).is_ok(), "{good}: {:?}", reply_url(good));
        }
        for bad in [
            // The old prefix check let each of these through.
            "http://127.0.0.1.evil.example/x",
            "http://127.0.0.1@evil.example/x",
            "http://localhost.evil.example/x",
            "http://localhost@evil.example/x",
            "http://localhost:80@evil.example/x",
            "http://127.0.0.1:8080@169.254.169.254/latest",
            "https://hooks.slack.com@evil.example/",
            "https://hooks.slack.com:443@evil.example/",
            "https://user:pass@hooks.slack.com/x",
            "https://:pass@hooks.slack.com/x",
            // Metadata and link-local, however written.
            "https://169.254.169.254/latest/meta-data/",
            "https://169.254.170.2/v2/credentials",
            "https://0251.0376.0251.0376/",
            "https://0xa9.0xfe.0xa9.0xfe/",
            "https://2852039166/",
            "https://169.254.43518/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:a9fe:a9fe]/",
            "https://[::169.254.169.254]/",
            "https://[64:ff9b::169.254.169.254]/",
            "https://[fd00:ec2::254]/latest",
            "https://[fe80::1]/",
            "https://[fe80::1%25eth0]/",
            "https://0.0.0.0/",
            "https://0/",
            "https://[::]/",
            "https://255.255.255.255/",
            "https://224.0.0.1/",
            "http://169.254.169.254/latest",
            // Plain http beyond loopback, other schemes, no host, not a URL.
            "http://hooks.slack.com/x",
            "http://10.0.0.7/x",
            "http://[2001:db8::1]/x",
            "http://0.0.0.0:8080/x",
            "ftp://hooks.slack.com/x",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "data:text/plain,hi",
            "https://",
            "https:///",
            "hooks.slack.com/x",
            "/relative/path",
            "",
        ] {
            assert!(reply_url(bad).is_err(), "{bad} was accepted");
        }
        // What is posted to is the parsed URL, read the way reqwest reads it.
        let parsed = reply_url("https://hooks.slack.com\\@evil.example/").expect("parses");
        assert_eq!(parsed.host_str(), Some("hooks.slack.com"));
    }

    /// A local server whose `/reply` answers `status` with `Location: /target`, counting the
    /// requests that reach `/target`.
    async fn redirecting(status: u16) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        let app = axum::Router::new()
            .route(
                "/reply",
                axum::routing::post(move || async move {
                    (
                        axum::http::StatusCode::from_u16(status).expect("status"),
                        [(axum::http::header::LOCATION, "/target")],
                        "moved",
                    )
                }),
            )
            .route(
                "/target",
                axum::routing::any(move || {
                    counted.fetch_add(1, Ordering::SeqCst);
                    async { "{\"ok\": true}" }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (url, hits)
    }

    #[tokio::test]
    async fn a_redirect_from_the_reply_target_is_not_followed() {
        use std::sync::atomic::Ordering;
        let notifier = SlackNotifier::new(SlackTargets::default());
        for status in [301, 302, 303, 307, 308] {
            let (url, hits) = redirecting(status).await;
            // The target itself is reachable: the server works and counts.
            notifier
                .post_to(&format!("{url}/target"), &json!({"text": "direct"}))
                .await
                .expect("the target answers 200");
            assert_eq!(hits.load(Ordering::SeqCst), 1);
            let answer = notifier
                .post_to(&format!("{url}/reply"), &json!({"text": "hi"}))
                .await;
            match answer {
                Err(DeliveryError::Refused { status: got, .. }) => assert_eq!(got, status),
                other => panic!("{status}: {other:?}"),
            }
            assert_eq!(hits.load(Ordering::SeqCst), 1, "{status} was followed");
        }
        // A URL reply_url refuses is not even requested.
        let refused = notifier
            .post_to("https://169.254.169.254/latest", &json!({"text": "hi"}))
            .await;
        assert!(
            matches!(refused, Err(DeliveryError::NotAllowed(_))),
            "{refused:?}"
        );
    }
}
