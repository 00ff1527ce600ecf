//! Scoring one entity: each rule against its catalog fields and its metrics, and the level it
//! holds, the highest one whose rules (and every lower level's) all pass.

use serde::Serialize;
use serde_json::Value;

use super::definition::{Band, Check, Rule, Scorecard};
use crate::catalog::lookup_path;
use crate::delivery::ServiceActivity;

/// What is known about a service's delivery.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceMetrics<'a> {
    /// Its entry in the latest DORA report (`None`: not in the report).
    pub dora: Option<&'a Value>,
    /// Its recent production activity (`None`: never deployed to production).
    pub activity: Option<&'a ServiceActivity>,
    /// Live resources of its owning team drifted for more than a day.
    pub drifted_resources_1d: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleResult {
    pub id: String,
    pub title: String,
    pub level: String,
    pub passed: bool,
    /// Why it passed or failed, in a few words.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    pub scorecard: String,
    pub version: u32,
    pub entity_ref: String,
    /// The level held, `None` below the first.
    pub level: Option<String>,
    /// The next level up, if any, and what it is missing is in `rules`.
    pub next_level: Option<String>,
    pub rules: Vec<RuleResult>,
}

/// Scores `entity` (its catalog JSON). `owner_is_group`: its owner is a Group in the catalog.
pub fn evaluate(
    card: &Scorecard,
    entity_ref: &str,
    entity: &Value,
    owner_is_group: bool,
    metrics: ServiceMetrics<'_>,
) -> Evaluation {
    let rules: Vec<RuleResult> = card
        .rules
        .iter()
        .map(|rule| check(rule, entity, owner_is_group, metrics))
        .collect();
    let mut level = None;
    for candidate in &card.levels {
        let holds = rules
            .iter()
            .filter(|r| &r.level == candidate)
            .all(|r| r.passed);
        if !holds {
            break;
        }
        level = Some(candidate.clone());
    }
    let next_level = match &level {
        None => card.levels.first().cloned(),
        Some(l) => card.rank(l).and_then(|i| card.levels.get(i + 1)).cloned(),
    };
    Evaluation {
        scorecard: card.id.clone(),
        version: card.version,
        entity_ref: entity_ref.to_owned(),
        level,
        next_level,
        rules,
    }
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn check(rule: &Rule, entity: &Value, owner_is_group: bool, m: ServiceMetrics<'_>) -> RuleResult {
    let (passed, detail) = match &rule.check {
        Check::FieldPresent(path) => {
            let found = lookup_path(entity, path).is_some_and(|(_, v)| present(v));
            (
                found,
                if found {
                    format!("{path} is set")
                } else {
                    format!("{path} is missing")
                },
            )
        }
        Check::AnyAnnotation(keys) => {
            let annotations = entity.pointer("/metadata/annotations");
            match keys.iter().find(|k| {
                annotations
                    .and_then(|a| a.get(k.as_str()))
                    .is_some_and(present)
            }) {
                Some(k) => (true, format!("annotated {k}")),
                None => (false, format!("none of {} is set", keys.join(", "))),
            }
        }
        Check::OwnerIsGroup(wanted) => (
            owner_is_group == *wanted,
            if owner_is_group {
                "owned by a Group of the catalog".into()
            } else {
                "its owner is not a Group of the catalog".into()
            },
        ),
        Check::LinkPresent(kind) => {
            let kind_lower = kind.to_lowercase();
            let found = entity
                .pointer("/metadata/links")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|l| {
                    let field = |k: &str| {
                        l.get(k)
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_lowercase()
                    };
                    field("type") == kind_lower
                        || field("icon") == kind_lower
                        || field("title").contains(&kind_lower)
                });
            (
                found,
                if found {
                    format!("has a {kind} link")
                } else {
                    format!("no {kind} link")
                },
            )
        }
        Check::MetricAtLeast { metric, value } => compare(metric, m, |x| x >= *value, "≥", *value),
        Check::MetricAtMost { metric, value } => compare(metric, m, |x| x <= *value, "≤", *value),
        Check::BandAtLeast { metric, band } => {
            match m
                .dora
                .and_then(|d| d.pointer(&format!("/bands/{metric}")))
                .and_then(Value::as_str)
            {
                Some(text) => match Band::parse(text) {
                    Some(b) => (b >= *band, format!("{metric} band is {text}")),
                    None => (false, format!("{metric} band is {text}, not a band")),
                },
                None => (
                    false,
                    format!("no {metric} band (not enough deployments in the DORA report)"),
                ),
            }
        }
    };
    RuleResult {
        id: rule.id.clone(),
        title: rule.title.clone(),
        level: rule.level.clone(),
        passed,
        detail,
    }
}

/// A metric's value: `production_deployments_30d` from the activity (0 when never deployed),
/// anything else from the service's DORA figures.
fn metric_value(metric: &str, m: ServiceMetrics<'_>) -> Option<f64> {
    if metric == "drifted_resources_1d" {
        return Some(m.drifted_resources_1d as f64);
    }
    if metric == "production_deployments_30d" {
        return Some(
            m.activity
                .map_or(0.0, |a| a.production_deployments_30d as f64),
        );
    }
    m.dora?.get(metric)?.as_f64()
}

fn compare(
    metric: &str,
    m: ServiceMetrics<'_>,
    holds: impl Fn(f64) -> bool,
    op: &str,
    bound: f64,
) -> (bool, String) {
    match metric_value(metric, m) {
        Some(x) => (holds(x), format!("{metric} is {x} (needs {op} {bound})")),
        None => (false, format!("no {metric} figure for this service")),
    }
}
