//! Deployment and request environments, and the one rule for which of them are production.
//!
//! The metrics spec (R1) counts `production` and `prod`, compared case-insensitively. DORA,
//! the scorecards' "deployed to production" rules and the adoption figures all ask
//! [`Environment::is_production`], so a team deploying to `prod` is active everywhere or
//! nowhere.

use std::fmt;

/// The environments that count as production by default (metrics spec, R1).
pub const PRODUCTION_ENVIRONMENTS: &[&str] = &["production", "prod"];

/// An environment's name as a deployment or a request carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Environment(String);

impl Environment {
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a production environment (R1's default list, any case).
    pub fn is_production(&self) -> bool {
        is_production(&self.0)
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// [`Environment::is_production`] for a name not wrapped yet.
pub fn is_production(environment: &str) -> bool {
    PRODUCTION_ENVIRONMENTS
        .iter()
        .any(|p| environment.trim().eq_ignore_ascii_case(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_is_production_or_prod_in_any_case() {
        for yes in ["production", "prod", "PROD", "Production", " prod "] {
            assert!(Environment::new(yes).is_production(), "{yes}");
        }
        for no in ["staging", "development", "pre-prod", "prod-eu", ""] {
            assert!(!Environment::new(no).is_production(), "{no}");
        }
    }
}
