//! What each service shipped lately: its successful production deployments in the last 30
//! days and the last one. The DORA job stores it beside the report; scorecards ("deployed to
//! production in the last 30 days") and the adoption figures read it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::DeploymentRecord;
use crate::environment::is_production;

/// How far back "recently" reaches.
pub const RECENT_DAYS: i64 = 30;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceActivity {
    /// Successful production deployments finished in the 30 days before `now`.
    pub production_deployments_30d: u64,
    pub last_production_deployment: Option<DateTime<Utc>>,
}

/// Each deployed service's activity as of `now` (deployments after `now` are not counted).
pub fn service_activity(
    deployments: &[DeploymentRecord],
    now: DateTime<Utc>,
) -> BTreeMap<String, ServiceActivity> {
    let since = now - Duration::days(RECENT_DAYS);
    let mut out: BTreeMap<String, ServiceActivity> = BTreeMap::new();
    for d in deployments {
        if !is_production(&d.environment) || d.status != "success" || d.finished_at > now {
            continue;
        }
        let a = out.entry(d.service.clone()).or_default();
        if d.finished_at > since {
            a.production_deployments_30d += 1;
        }
        if a.last_production_deployment
            .is_none_or(|t| t < d.finished_at)
        {
            a.last_production_deployment = Some(d.finished_at);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(
        service: &str,
        env: &str,
        status: &str,
        days_ago: i64,
        now: DateTime<Utc>,
    ) -> DeploymentRecord {
        DeploymentRecord {
            deploy_id: format!("{service}-{env}-{days_ago}"),
            service: service.into(),
            environment: env.into(),
            status: status.into(),
            kind: None,
            commit_sha: None,
            finished_at: now - Duration::days(days_ago),
            changes: Vec::new(),
        }
    }

    #[test]
    fn only_successful_production_deployments_of_the_last_30_days_count() {
        let now = Utc::now();
        let a = service_activity(
            &[
                deploy("api", "production", "success", 1, now),
                deploy("api", "production", "success", 29, now),
                deploy("api", "production", "success", 31, now),
                deploy("api", "production", "failure", 2, now),
                deploy("api", "staging", "success", 1, now),
                deploy("old", "production", "success", 45, now),
                deploy("web", "staging", "success", 1, now),
            ],
            now,
        );
        assert_eq!(a["api"].production_deployments_30d, 2);
        assert_eq!(
            a["api"].last_production_deployment,
            Some(now - Duration::days(1))
        );
        assert_eq!(a["old"].production_deployments_30d, 0);
        assert!(
            !a.contains_key("web"),
            "staging only is not production activity"
        );
    }

    #[test]
    fn a_team_deploying_to_prod_is_active_as_it_is_in_dora() {
        let now = Utc::now();
        let a = service_activity(
            &[
                deploy("api", "prod", "success", 1, now),
                deploy("web", "PRODUCTION", "success", 2, now),
            ],
            now,
        );
        assert_eq!(a["api"].production_deployments_30d, 1);
        assert_eq!(a["web"].production_deployments_30d, 1);
    }
}
