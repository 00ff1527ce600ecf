//! Backstage's naming rules (`KubernetesValidatorFunctions`) and entity references
//! (`[kind:][namespace/]name`).

use std::fmt;

use serde::{Deserialize, Serialize};

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// `metadata.name`: 1–63 characters of `[A-Za-z0-9-_.]`, starting and ending alphanumeric.
pub fn is_valid_object_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && is_alnum(b[0])
        && is_alnum(b[b.len() - 1])
        && b.iter()
            .all(|&c| is_alnum(c) || c == b'-' || c == b'_' || c == b'.')
}

/// A DNS label (`metadata.namespace`): 1–63 of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn is_valid_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// A DNS subdomain: dot-separated DNS labels, at most 253 characters.
pub(super) fn is_valid_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_valid_dns_label)
}

/// `apiVersion`: `prefix/version`, the prefix a DNS subdomain.
pub(super) fn is_valid_api_version(s: &str) -> bool {
    prefix_and_or_suffix(s, is_valid_dns_subdomain, |n| {
        !n.is_empty() && n.len() <= 63 && n.bytes().all(is_alnum)
    })
}

/// A label or annotation key: `[prefix/]name`, the prefix a DNS subdomain.
pub(super) fn is_valid_metadata_key(s: &str) -> bool {
    prefix_and_or_suffix(s, is_valid_dns_subdomain, is_valid_object_name)
}

pub(super) fn is_valid_label_value(s: &str) -> bool {
    s.is_empty() || is_valid_object_name(s)
}

/// A tag: 1–63 of `[a-z0-9:+#]`, dash-separated.
pub(super) fn is_valid_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.split('-').all(|part| {
            !part.is_empty()
                && part.bytes().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b':' | b'+' | b'#')
                })
        })
}

/// A kind as it may appear in a reference: a letter, then letters and digits, at most 63.
pub(super) fn is_valid_kind_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && b.len() <= 63 && b[0].is_ascii_alphabetic() && b.iter().all(|&c| is_alnum(c))
}

fn prefix_and_or_suffix(s: &str, prefix: fn(&str) -> bool, suffix: fn(&str) -> bool) -> bool {
    match s.split_once('/') {
        None => suffix(s),
        Some((p, n)) => !n.contains('/') && prefix(p) && suffix(n),
    }
}

/// What a shorthand reference leaves out: `spec.owner: team-a` means `group:<ns>/team-a`.
#[derive(Debug, Clone, Copy)]
pub struct RefDefaults<'a> {
    pub kind: Option<&'a str>,
    pub namespace: &'a str,
}

/// A parsed entity reference. Kind and namespace are kept lower-case (as Backstage's
/// `stringifyEntityRef` prints them); the name keeps its case. Two refs are the same entity
/// when their [`EntityRef::key`]s are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    kind: String,
    namespace: String,
    name: String,
}

impl EntityRef {
    /// Builds a reference from parts that were already validated as an entity's own.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.to_ascii_lowercase(),
            namespace: namespace.to_ascii_lowercase(),
            name: name.to_owned(),
        }
    }

    /// Parses `[kind:][namespace/]name`, filling the parts it leaves out from `defaults`.
    pub fn parse(input: &str, defaults: RefDefaults<'_>) -> Result<Self, String> {
        let input = input.trim();
        if input.is_empty() {
            return Err("an entity reference must not be empty".into());
        }
        let (kind, rest) = match input.split_once(':') {
            Some((k, rest)) => (Some(k), rest),
            None => (None, input),
        };
        let (namespace, name) = match rest.split_once('/') {
            Some((ns, name)) => (Some(ns), name),
            None => (None, rest),
        };
        let kind = match kind.or(defaults.kind) {
            Some(k) => k,
            None => {
                return Err(format!(
                    "'{input}' has no kind; write it as kind:[namespace/]name, e.g. component:{input}"
                ));
            }
        };
        if !is_valid_kind_name(kind) {
            return Err(format!("'{input}' has an invalid kind '{kind}'"));
        }
        let namespace = namespace.unwrap_or(defaults.namespace);
        if !is_valid_dns_label(&namespace.to_ascii_lowercase()) {
            return Err(format!(
                "'{input}' has an invalid namespace '{namespace}': use 1-63 of a-z, 0-9 and '-'"
            ));
        }
        if name.contains(':') || name.contains('/') {
            return Err(format!(
                "'{input}' is not of the form [kind:][namespace/]name"
            ));
        }
        if !is_valid_object_name(name) {
            return Err(format!(
                "'{input}' has an invalid name '{name}': use 1-63 of A-Z, a-z, 0-9, '-', '_' and '.', starting and ending with a letter or digit"
            ));
        }
        Ok(Self::new(kind, namespace, name))
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The case-insensitive identity of the referenced entity.
    pub fn key(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }

    /// The same reference spelled the one way paved stores and compares principals: all
    /// lower-case. Backstage matches names case-insensitively, so `Team-A` and `team-a` are
    /// one entity; a quota, a filter or "is this the requester" must not see two.
    pub fn canonical(&self) -> Self {
        Self {
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.to_ascii_lowercase(),
        }
    }
}

/// The owner of a request or a resource: a Group (the default kind) or a User, parsed once at
/// the edge and kept canonical ([`EntityRef::canonical`]) from then on, so that every quota,
/// filter and ownership check sees one spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnerRef(EntityRef);

impl OwnerRef {
    /// Parses `[kind:][namespace/]name` as an owner: `team-a` is `group:default/team-a`.
    pub fn parse(input: &str) -> Result<Self, String> {
        let parsed = EntityRef::parse(
            input,
            RefDefaults {
                kind: Some("group"),
                namespace: "default",
            },
        )?;
        if !matches!(parsed.kind(), "group" | "user") {
            return Err(format!(
                "'{input}' is a {}; an owner is a group or a user",
                parsed.kind()
            ));
        }
        Ok(Self(parsed.canonical()))
    }

    pub fn entity_ref(&self) -> &EntityRef {
        &self.0
    }
}

impl fmt::Display for OwnerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.kind, self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEF: RefDefaults<'static> = RefDefaults {
        kind: None,
        namespace: "default",
    };

    #[test]
    fn object_names_follow_backstage() {
        for ok in ["a", "a-b", "A.b_c", "x1", &"a".repeat(63)] {
            assert!(is_valid_object_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a b", "ä", &"a".repeat(64), "a/b"] {
            assert!(!is_valid_object_name(bad), "{bad}");
        }
    }

    #[test]
    fn namespaces_are_dns_labels() {
        assert!(is_valid_dns_label("default"));
        assert!(is_valid_dns_label("team-1"));
        assert!(!is_valid_dns_label("Default"));
        assert!(!is_valid_dns_label("a_b"));
        assert!(!is_valid_dns_label(""));
    }

    #[test]
    fn tags_and_keys() {
        assert!(is_valid_tag("java"));
        assert!(is_valid_tag("c++"));
        assert!(!is_valid_tag("Java"));
        assert!(!is_valid_tag("a--b"));
        assert!(is_valid_metadata_key("backstage.io/techdocs-ref"));
        assert!(!is_valid_metadata_key("a/b/c"));
        assert!(is_valid_api_version("backstage.io/v1alpha1"));
    }

    #[test]
    fn refs_parse_with_defaults() {
        let r = EntityRef::parse(
            "team-a",
            RefDefaults {
                kind: Some("group"),
                namespace: "ns",
            },
        )
        .expect("valid");
        assert_eq!(r.to_string(), "group:ns/team-a");
        let r = EntityRef::parse("Component:default/My-Svc", DEF).expect("valid");
        assert_eq!(r.to_string(), "component:default/My-Svc");
        assert_eq!(r.key(), "component:default/my-svc");
    }

    #[test]
    fn refs_reject_bad_syntax() {
        assert!(EntityRef::parse("", DEF).is_err());
        assert!(
            EntityRef::parse("svc", DEF).is_err(),
            "no kind and no default kind"
        );
        assert!(EntityRef::parse("component:a/b/c", DEF).is_err());
        assert!(EntityRef::parse("component:Bad_NS/x", DEF).is_err());
        assert!(EntityRef::parse("component:default/-x", DEF).is_err());
        assert!(EntityRef::parse("1kind:x", DEF).is_err());
    }
}
