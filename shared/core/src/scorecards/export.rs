//! Scorecards in Port's and Cortex's formats, so a team moving between tools keeps its rules.
//!
//! - Port: the body of `POST /v1/blueprints/{blueprint}/scorecards` (levels with Port's
//!   colours and its implicit first level "Basic"; rules as `and`/`or` queries over blueprint
//!   properties and relations).
//! - Cortex: a scorecard descriptor (Scorecards as code: `tag`, `ladder`, rules as CQL).
//!
//! Both tools score their own copy of the data, so each check names the property (Port) or
//! the CQL (Cortex) that carries the same fact; `docs/scorecards.md` lists the mapping.

use serde_json::{Value, json};

use super::definition::{Band, Check, Scorecard};

/// Port's level colours, lowest first (after "Basic").
const PORT_COLOURS: [&str; 6] = ["bronze", "silver", "gold", "green", "turquoise", "purple"];
/// Cortex ladder colours, lowest first.
const CORTEX_COLOURS: [&str; 6] = [
    "#c38b5f", "#8c9298", "#cda400", "#3c9d4e", "#2aa3a3", "#7b5cc4",
];

/// A property name for an annotation or a field: Port identifiers allow `[A-Za-z0-9_]`.
fn property(name: &str) -> String {
    let last = name.rsplit('.').next().unwrap_or(name);
    let base = if name.starts_with("metadata.annotations") || name.contains('/') {
        name
    } else {
        last
    };
    base.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn bands_at_least(band: Band) -> Vec<&'static str> {
    [
        (Band::Low, "low"),
        (Band::Medium, "medium"),
        (Band::High, "high"),
        (Band::Elite, "elite"),
    ]
    .into_iter()
    .filter(|(b, _)| *b >= band)
    .map(|(_, name)| name)
    .collect()
}

fn port_query(check: &Check) -> Value {
    let and = |conditions: Vec<Value>| json!({"combinator": "and", "conditions": conditions});
    let or = |conditions: Vec<Value>| json!({"combinator": "or", "conditions": conditions});
    match check {
        Check::FieldPresent(path) => and(vec![
            json!({"property": property(path), "operator": "isNotEmpty"}),
        ]),
        Check::AnyAnnotation(keys) => or(keys
            .iter()
            .map(|k| json!({"property": property(k), "operator": "isNotEmpty"}))
            .collect()),
        Check::OwnerIsGroup(true) => {
            and(vec![json!({"relation": "team", "operator": "isNotEmpty"})])
        }
        Check::OwnerIsGroup(false) => and(vec![json!({"relation": "team", "operator": "isEmpty"})]),
        Check::LinkPresent(kind) => and(vec![
            json!({"property": format!("{}_url", property(kind)), "operator": "isNotEmpty"}),
        ]),
        Check::MetricAtLeast { metric, value } => and(vec![
            json!({"property": metric, "operator": ">=", "value": value}),
        ]),
        Check::MetricAtMost { metric, value } => and(vec![
            json!({"property": metric, "operator": "<=", "value": value}),
        ]),
        Check::BandAtLeast { metric, band } => or(bands_at_least(*band)
            .into_iter()
            .map(|b| json!({"property": format!("{metric}_band"), "operator": "=", "value": b}))
            .collect()),
    }
}

/// The scorecard as Port's scorecard JSON.
pub fn to_port(card: &Scorecard) -> Value {
    let mut levels = vec![json!({"title": "Basic", "color": "paleBlue"})];
    levels.extend(card.levels.iter().enumerate().map(
        |(i, l)| json!({"title": l, "color": PORT_COLOURS.get(i).copied().unwrap_or("darkGray")}),
    ));
    let rules: Vec<Value> = card
        .rules
        .iter()
        .map(|r| {
            json!({
                "identifier": property(&r.id),
                "title": r.title,
                "level": r.level,
                "query": port_query(&r.check),
            })
        })
        .collect();
    json!({
        "identifier": property(&card.id),
        "title": card.title,
        "levels": levels,
        "rules": rules,
    })
}

fn cql(check: &Check) -> String {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    match check {
        Check::FieldPresent(path) if path == "metadata.description" => "description != null".into(),
        Check::FieldPresent(path) => format!("custom({}) != null", quote(&property(path))),
        Check::AnyAnnotation(keys) => keys
            .iter()
            .map(|k| format!("custom({}) != null", quote(k)))
            .collect::<Vec<_>>()
            .join(" OR "),
        Check::OwnerIsGroup(true) => "ownership.teams().length > 0".into(),
        Check::OwnerIsGroup(false) => "ownership.teams().length == 0".into(),
        Check::LinkPresent(kind) => format!("links({}).length > 0", quote(kind)),
        Check::MetricAtLeast { metric, value } => {
            format!("custom({}) >= {value}", quote(&format!("paved.{metric}")))
        }
        Check::MetricAtMost { metric, value } => {
            format!("custom({}) <= {value}", quote(&format!("paved.{metric}")))
        }
        Check::BandAtLeast { metric, band } => {
            let key = quote(&format!("paved.{metric}_band"));
            bands_at_least(*band)
                .into_iter()
                .map(|b| format!("custom({key}) == {}", quote(b)))
                .collect::<Vec<_>>()
                .join(" OR ")
        }
    }
}

/// The scorecard as a Cortex scorecard descriptor (YAML).
pub fn to_cortex(card: &Scorecard) -> String {
    let levels: Vec<Value> = card
        .levels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({"name": l, "rank": i + 1, "color": CORTEX_COLOURS.get(i).copied().unwrap_or("#666666")})
        })
        .collect();
    let rules: Vec<Value> = card
        .rules
        .iter()
        .map(|r| {
            json!({
                "title": r.title,
                "identifier": r.id,
                "expression": cql(&r.check),
                "weight": 1,
                "level": r.level,
            })
        })
        .collect();
    let descriptor = json!({
        "tag": card.id,
        "name": card.title,
        "description": card.description,
        "draft": false,
        "ladder": {"name": card.title, "levels": levels},
        "rules": rules,
        "filter": {"category": "SERVICE"},
    });
    serde_yaml::to_string(&descriptor).unwrap_or_default()
}
