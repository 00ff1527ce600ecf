//! Scorecards (metrics spec v1, "Adoption scorecards"): versioned definitions in YAML
//! ([`definition`]), scored over the catalog and the delivery metrics ([`evaluate`]), summed
//! per team, and exported to Port's and Cortex's formats ([`export`]).

pub mod definition;
pub mod evaluate;
pub mod export;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use crate::Error;
use crate::catalog::{CatalogIndex, EntityView, Kind};
use crate::delivery::{DeliveryStore, ServiceActivity};

pub use definition::{Band, Check, Rule, Scorecard, ScorecardSet};
pub use evaluate::{Evaluation, RuleResult, ServiceMetrics, evaluate};

/// The delivery metrics scorecards read: the latest DORA report's services and the services'
/// recent activity, both stored by the DORA job.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    /// The report's `services` list, and where each service is in it (not a copy of each).
    services: Vec<Value>,
    position: HashMap<String, usize>,
    activity: BTreeMap<String, ServiceActivity>,
    /// Live resources drifted for more than a day, per owning team (as the requests index
    /// spells owners).
    drifted_1d: HashMap<String, usize>,
}

impl MetricsSnapshot {
    pub async fn load(events: &DeliveryStore) -> Result<Self, Error> {
        let report = events.latest_report().await?.map(|(r, _)| r);
        let activity = events.latest_activity().await?;
        let drifted =
            crate::resources::ResourceRepository::new(std::sync::Arc::clone(events.table()))
                .drifted_since_before(chrono::Utc::now() - chrono::Duration::days(1))
                .await?;
        Ok(Self::new(report, activity).with_drift(drifted))
    }

    /// With the count of resources drifted for more than a day, per owning team.
    pub fn with_drift(mut self, drifted_1d: HashMap<String, usize>) -> Self {
        self.drifted_1d = drifted_1d;
        self
    }

    /// Takes the report's `services` list as it is; only the names are indexed.
    pub fn new(report: Option<Value>, activity: BTreeMap<String, ServiceActivity>) -> Self {
        let services = match report {
            Some(Value::Object(mut r)) => match r.remove("services") {
                Some(Value::Array(list)) => list,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let position = services
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((s.get("service")?.as_str()?.to_owned(), i)))
            .collect();
        Self {
            services,
            position,
            activity,
            drifted_1d: HashMap::new(),
        }
    }

    pub fn service(&self, name: &str) -> ServiceMetrics<'_> {
        ServiceMetrics {
            dora: self.position.get(name).map(|&i| &self.services[i]),
            activity: self.activity.get(name),
            drifted_resources_1d: 0,
        }
    }

    /// [`service`](Self::service), with the drift of its owning team's resources.
    pub fn service_owned_by(&self, name: &str, owner: Option<&str>) -> ServiceMetrics<'_> {
        ServiceMetrics {
            drifted_resources_1d: owner
                .and_then(|o| self.drifted_1d.get(&crate::requests::owner_key(o)))
                .copied()
                .unwrap_or(0),
            ..self.service(name)
        }
    }
}

/// Scores one catalog entity.
pub fn score(
    card: &Scorecard,
    index: &CatalogIndex,
    view: &EntityView,
    metrics: &MetricsSnapshot,
) -> Evaluation {
    let owner_is_group = view
        .owner
        .as_ref()
        .is_some_and(|o| o.kind() == "group" && index.get_by_ref(o).is_some());
    let entity: Value = serde_json::from_slice(&view.json).unwrap_or(Value::Null);
    evaluate(
        card,
        &view.entity_ref.to_string(),
        &entity,
        owner_is_group,
        metrics.service_owned_by(
            view.entity_ref.name(),
            view.owner.as_ref().map(ToString::to_string).as_deref(),
        ),
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LevelCount {
    /// A level's name, or `"none"` for entities below the first.
    pub level: String,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailingRule {
    pub id: String,
    pub title: String,
    pub level: String,
    pub failing: usize,
}

/// How a team's (or the organisation's) entities score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Distribution {
    pub scorecard: String,
    pub version: u32,
    /// The owning Group's name; `None` for the whole organisation.
    pub team: Option<String>,
    pub entities: usize,
    /// Lowest first, `none` before the first level.
    pub levels: Vec<LevelCount>,
    /// The rules that fail most often first (rules that never fail are left out).
    pub failing_rules: Vec<FailingRule>,
}

fn distribution_of(
    card: &Scorecard,
    team: Option<String>,
    evaluations: &[Evaluation],
) -> Distribution {
    let mut levels: Vec<LevelCount> = std::iter::once("none".to_owned())
        .chain(card.levels.iter().cloned())
        .map(|level| LevelCount { level, count: 0 })
        .collect();
    let mut failing: Vec<FailingRule> = card
        .rules
        .iter()
        .map(|r| FailingRule {
            id: r.id.clone(),
            title: r.title.clone(),
            level: r.level.clone(),
            failing: 0,
        })
        .collect();
    for e in evaluations {
        let slot = e
            .level
            .as_ref()
            .and_then(|l| card.rank(l))
            .map_or(0, |i| i + 1);
        levels[slot].count += 1;
        for (i, r) in e.rules.iter().enumerate() {
            if !r.passed {
                failing[i].failing += 1;
            }
        }
    }
    failing.retain(|f| f.failing > 0);
    // Most failed first; ties in the definition's order (a stable sort).
    failing.sort_by_key(|f| std::cmp::Reverse(f.failing));
    Distribution {
        scorecard: card.id.clone(),
        version: card.version,
        team,
        entities: evaluations.len(),
        levels,
        failing_rules: failing,
    }
}

/// The entities a scorecard scores, with their owning team's name.
fn scored<'a>(
    card: &Scorecard,
    index: &'a CatalogIndex,
) -> impl Iterator<Item = (&'a EntityView, Option<String>)> + 'a {
    let kind = Kind::parse(&card.applies_to);
    index
        .ids()
        .filter_map(|id| index.view(id))
        .filter(move |v| Some(v.kind) == kind)
        .map(|v| {
            let team = v
                .owner
                .as_ref()
                .filter(|o| o.kind() == "group")
                .map(|o| o.name().to_owned());
            (v, team)
        })
}

/// The organisation's distribution (`team: None`) or one team's.
pub fn distribution(
    card: &Scorecard,
    index: &CatalogIndex,
    metrics: &MetricsSnapshot,
    team: Option<&str>,
) -> Distribution {
    let evaluations: Vec<Evaluation> = scored(card, index)
        .filter(|(_, t)| team.is_none() || t.as_deref() == team)
        .map(|(v, _)| score(card, index, v, metrics))
        .collect();
    distribution_of(card, team.map(str::to_owned), &evaluations)
}

/// Every team's distribution, by team name (entities with no owning Group under `""`).
pub fn distribution_by_team(
    card: &Scorecard,
    index: &CatalogIndex,
    metrics: &MetricsSnapshot,
) -> Vec<Distribution> {
    let mut by_team: BTreeMap<String, Vec<Evaluation>> = BTreeMap::new();
    for (v, team) in scored(card, index) {
        by_team
            .entry(team.unwrap_or_default())
            .or_default()
            .push(score(card, index, v, metrics));
    }
    by_team
        .into_iter()
        .map(|(team, evaluations)| distribution_of(card, Some(team), &evaluations))
        .collect()
}
