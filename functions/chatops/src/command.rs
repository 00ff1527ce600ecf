//! What a chat user asked for: `/paved <text>` parsed once into a [`Command`], so the rest of
//! the function never looks at raw text. Anything that does not parse is [`Command::Help`]
//! with the reason, never an error.

use serde_json::{Map, Value};

/// One command of `/paved`.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `help`, an empty command, or one that did not parse (`problem` says why).
    Help { problem: Option<String> },
    /// `search <term>`: catalog entities matching a term.
    Search { term: String },
    /// `service <ref>`: one entity, e.g. `payments` or `component:default/payments`.
    Service { reference: String },
    /// `request <template> <name> key=value...`: a self-service request. `environment` and
    /// `owner` are read from the pairs; the others are the template's parameters.
    Request {
        template: String,
        name: String,
        environment: Option<String>,
        owner: Option<String>,
        parameters: Map<String, Value>,
    },
    /// `status <request-id>`
    Status { id: String },
    /// `approve <request-id>`
    Approve { id: String },
    /// `reject <request-id>`
    Reject { id: String },
    /// `dora [team]`: the organisation's DORA figures, or one team's.
    Dora { team: Option<String> },
    /// `scorecard <ref>`: a service's production-readiness level and failing rules.
    Scorecard { reference: String },
    /// `resources [team]`: the live resources the caller may see (or one owning team's), with
    /// their `Synced` and `Ready` conditions and what drifted.
    Resources { team: Option<String> },
    /// `reconcile <request-id>`: observe a live resource now (and repair it under `enforce`).
    Reconcile { id: String },
}

/// The longest argument `resources` and `reconcile` take: a team's ref or a request id is far
/// shorter, and a refusal never echoes more than this.
pub const MAX_ARGUMENT: usize = 200;

/// The commands, as `/paved help` lists them.
pub const USAGE: &[(&str, &str)] = &[
    ("help", "this list"),
    (
        "search <term>",
        "find services, APIs, templates, teams in the catalog",
    ),
    (
        "service <ref>",
        "one catalog entity: owner, lifecycle, links",
    ),
    (
        "request <template> <name> key=value...",
        "ask for a resource from a golden path (environment=..., owner=... and the template's parameters)",
    ),
    ("status <request-id>", "where a request is"),
    (
        "approve <request-id>",
        "approve a request that waits for you",
    ),
    ("reject <request-id>", "reject it"),
    (
        "dora [team]",
        "the latest DORA figures, for the organisation or a team",
    ),
    (
        "scorecard <ref>",
        "a service's production-readiness level and what it misses",
    ),
    (
        "resources [team]",
        "live resources (yours, or a team's): Synced, Ready and what drifted",
    ),
    (
        "reconcile <request-id>",
        "observe a live resource now (repairing drift under enforce); the result appears in its status",
    ),
];

impl Command {
    /// The command's name, for logs and the direct-invocation envelope.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Help { .. } => "help",
            Self::Search { .. } => "search",
            Self::Service { .. } => "service",
            Self::Request { .. } => "request",
            Self::Status { .. } => "status",
            Self::Approve { .. } => "approve",
            Self::Reject { .. } => "reject",
            Self::Dora { .. } => "dora",
            Self::Scorecard { .. } => "scorecard",
            Self::Resources { .. } => "resources",
            Self::Reconcile { .. } => "reconcile",
        }
    }

    /// Parses the text after `/paved`.
    pub fn parse(text: &str) -> Self {
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some((&verb, args)) = words.split_first() else {
            return Self::Help { problem: None };
        };
        Self::from_parts(&verb.to_ascii_lowercase(), args)
    }

    /// A command from its name and arguments (the direct-invocation envelope's form).
    pub fn from_parts(verb: &str, args: &[&str]) -> Self {
        let help = |problem: String| Self::Help {
            problem: Some(problem),
        };
        let one = |usage: &str| match args {
            [one] => Ok((*one).to_owned()),
            _ => Err(format!("usage: /paved {usage}")),
        };
        let parsed = match verb {
            "help" | "" => return Self::Help { problem: None },
            "search" if !args.is_empty() => Ok(Self::Search {
                term: args.join(" "),
            }),
            "search" => Err("usage: /paved search <term>".to_owned()),
            "service" => one("service <ref>").map(|reference| Self::Service { reference }),
            "status" => one("status <request-id>").map(|id| Self::Status { id }),
            "approve" => one("approve <request-id>").map(|id| Self::Approve { id }),
            "reject" => one("reject <request-id>").map(|id| Self::Reject { id }),
            "dora" => match args {
                [] => Ok(Self::Dora { team: None }),
                [team] => Ok(Self::Dora {
                    team: Some((*team).to_owned()),
                }),
                _ => Err("usage: /paved dora [team]".to_owned()),
            },
            "scorecard" => one("scorecard <ref>").map(|reference| Self::Scorecard { reference }),
            "resources" => match args {
                [] => Ok(Self::Resources { team: None }),
                [team] => bounded("team", team).map(|team| Self::Resources { team: Some(team) }),
                _ => Err("usage: /paved resources [team]".to_owned()),
            },
            "reconcile" => one("reconcile <request-id>")
                .and_then(|id| bounded("request id", &id))
                .map(|id| Self::Reconcile { id }),
            "request" => parse_request(args),
            other => Err(format!("unknown command '{other}'")),
        };
        parsed.unwrap_or_else(help)
    }
}

/// `value` if it is at most [`MAX_ARGUMENT`] characters; a refusal does not repeat it.
fn bounded(what: &str, value: &str) -> Result<String, String> {
    if value.chars().count() <= MAX_ARGUMENT {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "that {what} is too long: at most {MAX_ARGUMENT} characters"
        ))
    }
}

fn parse_request(args: &[&str]) -> Result<Command, String> {
    const USAGE: &str = "usage: /paved request <template> <name> key=value...";
    let [template, name, pairs @ ..] = args else {
        return Err(USAGE.to_owned());
    };
    if template.contains('=') || name.contains('=') {
        return Err(USAGE.to_owned());
    }
    let mut environment = None;
    let mut owner = None;
    let mut parameters = Map::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("'{pair}' is not key=value; {USAGE}"));
        };
        if key.is_empty() {
            return Err(format!("'{pair}' has no key; {USAGE}"));
        }
        match key {
            "environment" | "env" => environment = Some(value.to_owned()),
            "owner" => owner = Some(value.to_owned()),
            _ => {
                if parameters.insert(key.to_owned(), scalar(value)).is_some() {
                    return Err(format!("'{key}' is given twice"));
                }
            }
        }
    }
    Ok(Command::Request {
        template: (*template).to_owned(),
        name: (*name).to_owned(),
        environment,
        owner,
        parameters,
    })
}

/// `10` is a number, `true` a boolean, anything else a string: the template's JSON Schema then
/// says whether the value fits.
fn scalar(value: &str) -> Value {
    match serde_json::from_str::<Value>(value) {
        Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
        _ => Value::String(value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_command_parses() {
        assert_eq!(Command::parse("  "), Command::Help { problem: None });
        assert_eq!(Command::parse("HELP"), Command::Help { problem: None });
        assert_eq!(
            Command::parse("search payments api"),
            Command::Search {
                term: "payments api".into()
            }
        );
        assert_eq!(
            Command::parse("service component:default/payments"),
            Command::Service {
                reference: "component:default/payments".into()
            }
        );
        assert_eq!(
            Command::parse("status req-1"),
            Command::Status { id: "req-1".into() }
        );
        assert_eq!(
            Command::parse("approve req-1"),
            Command::Approve { id: "req-1".into() }
        );
        assert_eq!(
            Command::parse("reject req-1"),
            Command::Reject { id: "req-1".into() }
        );
        assert_eq!(Command::parse("dora"), Command::Dora { team: None });
        assert_eq!(
            Command::parse("scorecard payments"),
            Command::Scorecard {
                reference: "payments".into()
            }
        );
        assert_eq!(
            Command::parse("dora team-a"),
            Command::Dora {
                team: Some("team-a".into())
            }
        );
        assert_eq!(
            Command::parse("resources"),
            Command::Resources { team: None }
        );
        assert_eq!(
            Command::parse("Resources group:default/team-a"),
            Command::Resources {
                team: Some("group:default/team-a".into())
            }
        );
        assert_eq!(
            Command::parse("reconcile req-1"),
            Command::Reconcile { id: "req-1".into() }
        );
        assert_eq!(
            Command::from_parts("reconcile", &["req-1"]).name(),
            "reconcile"
        );
    }

    #[test]
    fn a_request_reads_environment_owner_and_typed_parameters() {
        let Command::Request {
            template,
            name,
            environment,
            owner,
            parameters,
        } = Command::parse(
            "request postgres-database orders-db env=production owner=team-a size=small storageGb=20 ha=true",
        )
        else {
            panic!("not a request");
        };
        assert_eq!(
            (template.as_str(), name.as_str()),
            ("postgres-database", "orders-db")
        );
        assert_eq!(environment.as_deref(), Some("production"));
        assert_eq!(owner.as_deref(), Some("team-a"));
        assert_eq!(
            Value::Object(parameters),
            json!({"size": "small", "storageGb": 20, "ha": true})
        );
    }

    #[test]
    fn what_does_not_parse_is_help_with_the_reason() {
        for (text, reason) in [
            ("deploy everything", "unknown command 'deploy'"),
            ("search", "usage: /paved search"),
            ("service", "usage: /paved service"),
            ("status a b", "usage: /paved status"),
            ("request postgres-database", "usage: /paved request"),
            (
                "request postgres-database db size",
                "'size' is not key=value",
            ),
            ("request postgres-database db a=1 a=2", "'a' is given twice"),
            ("dora a b", "usage: /paved dora"),
            ("resources team-a team-b", "usage: /paved resources [team]"),
            ("reconcile", "usage: /paved reconcile <request-id>"),
            (
                "reconcile req-1 req-2",
                "usage: /paved reconcile <request-id>",
            ),
        ] {
            let Command::Help {
                problem: Some(problem),
            } = Command::parse(text)
            else {
                panic!("{text} parsed");
            };
            assert!(problem.contains(reason), "{text}: {problem}");
        }
    }

    #[test]
    fn resource_arguments_are_bounded_and_never_echoed() {
        let long = "x".repeat(MAX_ARGUMENT + 1);
        for text in [format!("resources {long}"), format!("reconcile {long}")] {
            let Command::Help {
                problem: Some(problem),
            } = Command::parse(&text)
            else {
                panic!("a {}-character argument parsed", long.len());
            };
            assert!(problem.contains("too long"), "{problem}");
            assert!(!problem.contains(&long[..50]), "{problem}");
        }
        let longest = "x".repeat(MAX_ARGUMENT);
        assert_eq!(
            Command::parse(&format!("resources {longest}")),
            Command::Resources {
                team: Some(longest)
            }
        );
    }
}
