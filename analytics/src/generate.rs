//! `paved generate events`: a seeded, realistic synthetic dataset of the spec's tables, for
//! demos, property tests and the benchmark.
//!
//! What makes it realistic: service activity is skewed (a few busy services, a long tail),
//! weekdays are busier than weekends, production deployments are mixed with staging ones and
//! failed runs, each deployment ships the commits authored since the previous one (the first
//! ships old history), rollbacks and hotfixes follow some deployments, and incidents are
//! linked to their deployment by id, by commit, by service only, or not at all.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::input::{ChangeRecord, DeploymentRecord, EventRecords, IncidentRecord, ServiceRecord};

/// What to generate. The same settings (and build) give the same rows.
#[derive(Debug, Clone)]
pub struct GeneratorSettings {
    pub services: usize,
    pub days: u32,
    /// Deployment rows per day across the organisation, every environment and status.
    pub deploys_per_day: f64,
    pub seed: u64,
    /// The day after the last generated day (UTC).
    pub end: NaiveDate,
}

/// Services per team, on average.
const TEAM_SIZE: usize = 10;
const STAGING_SHARE: f64 = 0.15;
const FAILED_RUN_SHARE: f64 = 0.04;
const ROLLBACK_SHARE: f64 = 0.02;
const HOTFIX_SHARE: f64 = 0.03;
/// Incidents per successful production deployment: 50,000 in 9 million rows.
const INCIDENT_SHARE: f64 = 0.007;

pub fn generate(settings: &GeneratorSettings, mut progress: impl FnMut(u64)) -> EventRecords {
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let team_count = settings.services.div_ceil(TEAM_SIZE).max(1);
    let start = settings.end - Duration::days(i64::from(settings.days));
    let weights: Vec<f64> = (0..settings.services)
        .map(|_| 0.05 + rng.random::<f64>().powi(3))
        .collect();
    let total_weight: f64 = weights.iter().sum();
    let total_rows = settings.deploys_per_day * f64::from(settings.days);

    let mut records = EventRecords {
        services: Some(Vec::with_capacity(settings.services)),
        ..EventRecords::default()
    };
    records.deployments.reserve(total_rows as usize);
    for (index, weight) in weights.iter().enumerate() {
        let service = format!("svc-{index:05}");
        let team = format!("team-{:03}", rng.random_range(0..team_count));
        if let Some(services) = records.services.as_mut() {
            services.push(ServiceRecord {
                service: service.clone(),
                team,
            });
        }
        let expected = total_rows * weight / total_weight;
        let rows = expected.floor() as usize + usize::from(rng.random::<f64>() < expected.fract());
        let mut times: Vec<DateTime<Utc>> = (0..rows)
            .map(|_| working_time(&mut rng, start, settings.days))
            .collect();
        times.sort_unstable();
        ServiceHistory::new(&service).generate(&mut rng, &times, &mut records);
        progress(1);
    }
    records
}

/// A moment on a random day, weekdays three times as likely as weekends, mostly in working
/// hours.
fn working_time(rng: &mut StdRng, start: NaiveDate, days: u32) -> DateTime<Utc> {
    loop {
        let day = start + Duration::days(i64::from(rng.random_range(0..days.max(1))));
        let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        if weekend && rng.random::<f64>() > 0.33 {
            continue;
        }
        let second = if rng.random::<f64>() < 0.85 {
            rng.random_range(8 * 3600..19 * 3600)
        } else {
            rng.random_range(0..86_400)
        };
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        return midnight + Duration::seconds(second);
    }
}

fn sha(rng: &mut StdRng) -> String {
    let bytes: [u8; 20] = rng.random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One service's deployments, commits and incidents, generated in time order.
struct ServiceHistory<'a> {
    service: &'a str,
    count: usize,
    last_production: Option<DateTime<Utc>>,
    heads: Vec<String>,
}

impl<'a> ServiceHistory<'a> {
    fn new(service: &'a str) -> Self {
        Self {
            service,
            count: 0,
            last_production: None,
            heads: Vec::new(),
        }
    }

    fn generate(&mut self, rng: &mut StdRng, times: &[DateTime<Utc>], out: &mut EventRecords) {
        for &finished_at in times {
            self.count += 1;
            let deploy_id = format!("{}-{}", self.service, self.count);
            let staging = rng.random::<f64>() < STAGING_SHARE;
            let failed_run = rng.random::<f64>() < FAILED_RUN_SHARE;
            if staging || failed_run {
                out.deployments.push(DeploymentRecord {
                    deploy_id,
                    service: self.service.to_owned(),
                    environment: if staging { "staging" } else { "production" }.to_owned(),
                    status: if failed_run { "failure" } else { "success" }.to_owned(),
                    kind: None,
                    commit_sha: self.heads.last().cloned(),
                    finished_at,
                    changes: Vec::new(),
                });
                continue;
            }
            let roll = rng.random::<f64>();
            let kind = if self.heads.len() >= 2 && roll < ROLLBACK_SHARE {
                "rollback"
            } else if self.last_production.is_some() && roll < ROLLBACK_SHARE + HOTFIX_SHARE {
                "hotfix"
            } else {
                "normal"
            };
            let changes = match kind {
                "rollback" => Vec::new(),
                "hotfix" => vec![self.commit(rng, finished_at, Duration::minutes(120), out)],
                _ => {
                    let since = match self.last_production {
                        // The first deployment ships history: up to a year old.
                        None => Duration::days(rng.random_range(30..365)),
                        Some(previous) => (finished_at - previous).max(Duration::minutes(2)),
                    };
                    // 1-6 commits, and one more for a third of them: 3.8 on average, so the
                    // issue's scale (9 M deployment rows a quarter) ships ~27 M changes.
                    let commits = rng.random_range(1..=6) + usize::from(rng.random_bool(1.0 / 3.0));
                    (0..commits)
                        .map(|_| self.commit(rng, finished_at, since, out))
                        .collect()
                }
            };
            let commit_sha = match kind {
                "rollback" => self.heads.get(self.heads.len() - 2).cloned(),
                _ => changes.last().cloned(),
            };
            if let Some(head) = &commit_sha {
                self.heads.push(head.clone());
            }
            self.last_production = Some(finished_at);
            if rng.random::<f64>() < INCIDENT_SHARE {
                out.incidents.push(self.incident(
                    rng,
                    &deploy_id,
                    commit_sha.as_deref(),
                    finished_at,
                ));
            }
            out.deployments.push(DeploymentRecord {
                deploy_id,
                service: self.service.to_owned(),
                environment: if rng.random::<f64>() < 0.5 {
                    "production"
                } else {
                    "prod"
                }
                .to_owned(),
                status: "success".to_owned(),
                kind: (kind != "normal" || rng.random::<f64>() < 0.5).then(|| kind.to_owned()),
                commit_sha,
                finished_at,
                changes,
            });
        }
    }

    /// A commit authored in the `within` before `deployed_at`; rarely after it (clock skew) or
    /// missing from the changes table (a force-push).
    fn commit(
        &self,
        rng: &mut StdRng,
        deployed_at: DateTime<Utc>,
        within: Duration,
        out: &mut EventRecords,
    ) -> String {
        let sha = sha(rng);
        let span = within.num_seconds().max(60);
        let mut authored_at = deployed_at - Duration::seconds(rng.random_range(30..=span));
        let odd = rng.random::<f64>();
        if odd < 0.002 {
            authored_at = deployed_at + Duration::seconds(rng.random_range(1..600));
        }
        if (0.002..0.005).contains(&odd) {
            return sha;
        }
        out.changes.push(ChangeRecord {
            sha: sha.clone(),
            service: self.service.to_owned(),
            authored_at,
        });
        sha
    }

    fn incident(
        &self,
        rng: &mut StdRng,
        deploy_id: &str,
        commit_sha: Option<&str>,
        deployed_at: DateTime<Utc>,
    ) -> IncidentRecord {
        let created_at = deployed_at + Duration::minutes(rng.random_range(1..=360));
        let resolved_at = (rng.random::<f64>() > 0.03).then(|| {
            // Mostly under a few hours, with a long tail of days.
            let minutes = (rng.random::<f64>().powi(3) * 4.0 * 24.0 * 60.0) as i64 + 5;
            created_at + Duration::minutes(minutes)
        });
        let link = rng.random::<f64>();
        IncidentRecord {
            incident_id: format!("inc-{}-{}", deploy_id, rng.random::<u32>()),
            service: (link < 0.95).then(|| self.service.to_owned()),
            created_at,
            resolved_at,
            deploy_id: (link < 0.45).then(|| deploy_id.to_owned()),
            commit_sha: (0.45..0.70)
                .contains(&link)
                .then(|| commit_sha.map(str::to_owned))
                .flatten(),
        }
    }
}
