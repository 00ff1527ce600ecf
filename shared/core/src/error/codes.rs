//! Every stable `code` a problem+json answer can carry, with its HTTP status and meaning. The
//! README's error table is generated from [`ErrorCode::ALL`] and checked by a test
//! (`PAVED_UPDATE_README=1 cargo test -p paved-core error_table` rewrites it).

use std::fmt;

macro_rules! error_codes {
    ($($variant:ident = $code:literal, $status:literal, $meaning:literal;)*) => {
        /// A stable, machine-readable error code (the problem's `code`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(#[doc = $meaning] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order the README lists them.
            pub const ALL: &[ErrorCode] = &[$(Self::$variant,)*];

            /// The code as clients match on it (`snake_case`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)*
                }
            }

            /// The HTTP status an answer with this code has.
            pub const fn status(self) -> u16 {
                match self {
                    $(Self::$variant => $status,)*
                }
            }

            /// What it means, in one sentence.
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(Self::$variant => $meaning,)*
                }
            }
        }
    };
}

error_codes! {
    // 400: the input cannot be read at all.
    MalformedJson = "malformed_json", 400, "The body is not valid JSON.";
    MalformedYaml = "malformed_yaml", 400, "The body is not valid YAML.";
    MalformedBody = "malformed_body", 400, "The body is not in the form its content type says.";
    MalformedPayload = "malformed_payload", 400, "A webhook's payload does not parse as its source publishes it.";
    UnreadableBody = "unreadable_body", 400, "The body could not be read.";
    YamlTooLargeExpanded = "yaml_too_large_expanded", 400, "The YAML's aliases expand past twice the body's size plus 64 KiB.";
    InvalidQuery = "invalid_query", 400, "A query parameter cannot be read.";
    UnknownQueryParameter = "unknown_query_parameter", 400, "The query names a parameter the route does not take.";
    InvalidFilter = "invalid_filter", 400, "A catalog `filter` cannot be read.";
    InvalidOrder = "invalid_order", 400, "An `orderField` cannot be read.";
    InvalidCursor = "invalid_cursor", 400, "The cursor is not one this API issued for these filters.";
    InvalidScope = "invalid_scope", 400, "A metrics scope is not `org`, `team:<name>` or `service:<name>`.";
    InvalidHeader = "invalid_header", 400, "A header cannot be read.";
    InvalidIdempotencyKey = "invalid_idempotency_key", 400, "`Idempotency-Key` is not 1-255 visible ASCII characters.";
    InvalidEntityRef = "invalid_entity_ref", 400, "An entity reference cannot be parsed.";
    InvalidRef = "invalid_ref", 400, "A reference in the path cannot be parsed.";
    TooManyRefs = "too_many_refs", 400, "A by-refs query names more than 1000 entities.";
    TokenError = "token_error", 400, "A token cannot be made from these claims.";
    UnknownStep = "unknown_step", 400, "A task names a step its request does not have.";
    // 401, 403
    Unauthenticated = "unauthenticated", 401, "No token, or one that does not verify.";
    Forbidden = "forbidden", 403, "The caller may not do this (for an import: to any of its documents).";
    // 404, 409, 412, 413
    NotFound = "not_found", 404, "No such thing visible to the caller.";
    Conflict = "conflict", 409, "A concurrent change, or the same key still in progress; retry.";
    PreconditionFailed = "precondition_failed", 412, "`If-Match` names an etag that is no longer current.";
    PayloadTooLarge = "payload_too_large", 413, "The body is over the route's limit.";
    // 422: readable, but it breaks a rule; nothing was written.
    InvalidRequest = "invalid_request", 422, "The request body does not fit {template, name, owner, environment, parameters}.";
    InvalidName = "invalid_name", 422, "A resource name is not 1-63 ASCII letters, digits, `-` and `_`.";
    InvalidOwner = "invalid_owner", 422, "The owner is not a group or user reference.";
    UnknownOwner = "unknown_owner", 422, "The owner is not a Group or User in the catalog.";
    UnknownTemplate = "unknown_template", 422, "No template has this name.";
    InvalidTemplate = "invalid_template", 422, "The template cannot serve a request (no type, no steps, a bad schema).";
    InvalidParameters = "invalid_parameters", 422, "The parameters break the template's JSON Schema.";
    DriverNotConfigured = "driver_not_configured", 422, "No driver is configured for the template's resource type.";
    PlanFailed = "plan_failed", 422, "The driver cannot plan this request.";
    PolicyViolation = "policy_violation", 422, "A guardrail refuses the request.";
    InvalidResourcePatch = "invalid_resource_patch", 422, "A resource's `managementPolicy` or `ignoreFields` breaks its rules.";
    NotLive = "not_live", 422, "The request's resource is not live (not READY), so it is not reconciled.";
    LeakNotActionable = "leak_not_actionable", 422, "The leak names no request of this platform (unmarked, or another installation's), so it is not adopted or deleted from here.";
    InvalidTransition = "invalid_transition", 422, "The request's status does not allow this.";
    IdempotencyKeyReused = "idempotency_key_reused", 422, "The same `Idempotency-Key` came with another body.";
    ImportRejected = "import_rejected", 422, "At least one document of the import was refused; nothing was written.";
    InvalidEntity = "invalid_entity", 422, "An entity breaks the catalog's rules.";
    UnknownKind = "unknown_kind", 422, "An entity's kind is not one the catalog knows.";
    DuplicateEntity = "duplicate_entity", 422, "An import names the same entity twice.";
    NameTaken = "name_taken", 422, "Another live request holds this resource name.";
    NotTheServiceComponent = "not_the_service_component", 422, "A service's catalog-info.yaml is not exactly its own Component.";
    InvalidPolicy = "invalid_policy", 422, "The guardrails do not compile or their tests fail.";
    InvalidScorecard = "invalid_scorecard", 422, "A scorecard definition breaks its rules.";
    EntityTooLarge = "entity_too_large", 422, "An entity is too large to store, even compressed.";
    AnswerTooLarge = "answer_too_large", 422, "The answer would be over 16 MiB.";
    // 5xx: the server's fault; logged with the cause, never blamed on the caller.
    Internal = "internal", 500, "The server failed (corrupt stored data, a bug); it was logged.";
    StorageUnavailable = "storage_unavailable", 500, "The store failed (503 when it throttles); it was logged.";
    Unavailable = "unavailable", 503, "A service paved depends on did not answer; retry.";
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The full table (`docs/reference.md`): one row per code, by status.
pub fn markdown_table() -> String {
    let mut rows: Vec<&ErrorCode> = ErrorCode::ALL.iter().collect();
    rows.sort_by_key(|c| c.status());
    let mut out = String::from("| Status | Code | Meaning |\n|---|---|---|\n");
    for c in rows {
        out.push_str(&format!(
            "| {} | `{}` | {} |\n",
            c.status(),
            c.as_str(),
            c.meaning()
        ));
    }
    out
}

/// The README's short table: one row per status, with its codes.
pub fn markdown_summary() -> String {
    let mut statuses: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.status()).collect();
    statuses.sort_unstable();
    statuses.dedup();
    let mut out = String::from("| Status | Codes |\n|---|---|\n");
    for status in statuses {
        let codes: Vec<String> = ErrorCode::ALL
            .iter()
            .filter(|c| c.status() == status)
            .map(|c| format!("`{c}`"))
            .collect();
        out.push_str(&format!("| {status} | {} |\n", codes.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert!(
                c.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{c}"
            );
        }
    }

    /// Replaces what is between `<!-- error-codes:start -->` and `<!-- error-codes:end -->`
    /// in `file` (relative to the repository) with `table`, or checks that it is `table`.
    fn generated_in(file: &str, table: &str) {
        const START: &str = "<!-- error-codes:start -->\n";
        const END: &str = "<!-- error-codes:end -->";
        let path = format!("{}/../../{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect(file);
        let (Some(a), Some(b)) = (text.find(START), text.find(END)) else {
            panic!("{file} has no {START:?} ... {END:?} markers");
        };
        if &text[a + START.len()..b] == table {
            return;
        }
        if std::env::var_os("PAVED_UPDATE_README").is_some() {
            let updated = format!("{}{table}{}", &text[..a + START.len()], &text[b..]);
            std::fs::write(&path, updated).expect("write");
            return;
        }
        panic!(
            "{file}'s error table is out of date; run PAVED_UPDATE_README=1 cargo test -p paved-core error_table\n{table}"
        );
    }

    /// The README's and `docs/reference.md`'s tables are generated from [`ErrorCode::ALL`].
    #[test]
    fn error_tables_in_the_docs_are_generated_from_the_codes() {
        generated_in("README.md", &markdown_summary());
        generated_in("docs/reference.md", &markdown_table());
    }
}
