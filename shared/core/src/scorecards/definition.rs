//! A scorecard definition, read from YAML: ordered levels and rules, each rule a predicate
//! from a small closed set ([`Check`]) so that it can be evaluated, explained, and exported to
//! Port's and Cortex's formats. Parsing refuses what cannot be evaluated.

use crate::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The default "production readiness" scorecard.
pub const PRODUCTION_READINESS: &str = include_str!("production-readiness.yaml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scorecard {
    pub id: String,
    pub version: u32,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The catalog kind it scores (`Component`).
    #[serde(default = "component")]
    pub applies_to: String,
    /// Lowest first.
    pub levels: Vec<String>,
    pub rules: Vec<Rule>,
}

fn component() -> String {
    "Component".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub level: String,
    pub check: Check,
}

/// What a rule checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Check {
    /// A field of the entity (a dotted path) is present and not empty.
    FieldPresent(String),
    /// At least one of these annotations is set.
    AnyAnnotation(Vec<String>),
    /// The owner is a Group that exists in the catalog (`true`), or is not (`false`).
    OwnerIsGroup(bool),
    /// A link whose `type` or `icon` is this, or whose title mentions it.
    LinkPresent(String),
    /// A metric of the service is at least `value`.
    MetricAtLeast { metric: String, value: f64 },
    /// A metric of the service is at most `value`.
    MetricAtMost { metric: String, value: f64 },
    /// A DORA band of the service (`deployment_frequency`, `lead_time`,
    /// `change_failure_rate`, `recovery_time`) is this band or better.
    BandAtLeast { metric: String, band: Band },
}

/// DORA's performance bands, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    Low,
    Medium,
    High,
    Elite,
}

impl Band {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            "elite" => Some(Self::Elite),
            _ => None,
        }
    }
}

impl Scorecard {
    /// Parses and checks a definition: known levels, unique rule ids, at least one rule.
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        let invalid = |message: String| Error::Invalid {
            code: ErrorCode::InvalidScorecard,
            message,
            violations: Vec::new(),
        };
        // Through JSON's data model, so that a check is written as a map (`{fieldPresent: x}`)
        // rather than serde_yaml's `!fieldPresent x` tags.
        let value: serde_json::Value = serde_yaml::from_str(text)
            .map_err(|e| invalid(format!("the scorecard is not valid YAML: {e}")))?;
        let card: Self = serde_json::from_value(value)
            .map_err(|e| invalid(format!("the scorecard is not valid: {e}")))?;
        if card.levels.is_empty() || card.rules.is_empty() {
            return Err(invalid(format!("{}: needs levels and rules", card.id)));
        }
        let mut seen = std::collections::HashSet::new();
        for rule in &card.rules {
            if !card.levels.contains(&rule.level) {
                return Err(invalid(format!(
                    "{}: rule {} is at level {}, which is not one of {:?}",
                    card.id, rule.id, rule.level, card.levels
                )));
            }
            if !seen.insert(rule.id.as_str()) {
                return Err(invalid(format!(
                    "{}: rule id {} is used twice",
                    card.id, rule.id
                )));
            }
        }
        Ok(card)
    }

    pub fn production_readiness() -> Self {
        Self::from_yaml(PRODUCTION_READINESS).expect("the default scorecard is valid")
    }

    /// The position of a level (0 = lowest).
    pub fn rank(&self, level: &str) -> Option<usize> {
        self.levels.iter().position(|l| l == level)
    }
}

/// The scorecards a platform runs: the default, and any `*.yaml` in a directory (a file with
/// the default's id replaces it).
#[derive(Debug, Clone)]
pub struct ScorecardSet {
    pub cards: Vec<Scorecard>,
}

impl Default for ScorecardSet {
    fn default() -> Self {
        Self {
            cards: vec![Scorecard::production_readiness()],
        }
    }
}

impl ScorecardSet {
    /// The default set plus every `*.yaml` / `*.yml` in `dir`.
    pub fn with_dir(dir: &std::path::Path) -> Result<Self, Error> {
        let mut set = Self::default();
        let entries = std::fs::read_dir(dir).map_err(|e| Error::Invalid {
            code: ErrorCode::InvalidScorecard,
            message: format!("reading {}: {e}", dir.display()),
            violations: Vec::new(),
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::Invalid {
                code: ErrorCode::InvalidScorecard,
                message: format!("reading {}: {e}", path.display()),
                violations: Vec::new(),
            })?;
            let card = Scorecard::from_yaml(&text)?;
            set.cards.retain(|c| c.id != card.id);
            set.cards.push(card);
        }
        Ok(set)
    }

    /// `PAVED_SCORECARDS_DIR` if set, else the default.
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var("PAVED_SCORECARDS_DIR") {
            Ok(dir) if !dir.trim().is_empty() => Self::with_dir(std::path::Path::new(&dir)),
            _ => Ok(Self::default()),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Scorecard> {
        self.cards.iter().find(|c| c.id == id)
    }

    /// The default scorecard (production readiness, unless replaced).
    pub fn default_card(&self) -> &Scorecard {
        self.get("production-readiness")
            .or_else(|| self.cards.first())
            .expect("a set always holds a scorecard")
    }
}
