//! Platform adoption (metrics spec v1, "Platform adoption figures"), per team and for the
//! organisation, weekly:
//! - the share of catalog services deployed (a successful production deployment) in the week;
//! - the share of catalog services created from a template;
//! - the self-service success rate, READY ÷ finished (READY or FAILED) requests;
//! - the median time from a request's creation to READY;
//! - weekly active requesters `U_t`, with adoption rate `(U_t − U_{t−1}) / U_{t−1}` and
//!   retention `(U_t − N_t) / U_{t−1}`, `N_t` the first-time requesters of week `t`.
//!
//! Pure: the caller gathers the catalog's services, the requests and the deployments.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// A catalog service: its name, owning team, and whether a template created (or adopted) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFacts {
    pub name: String,
    pub team: Option<String>,
    pub from_template: bool,
}

/// A self-service request, reduced to what adoption counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    pub requester: String,
    /// The owning team's name.
    pub team: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `Some(true)` READY, `Some(false)` FAILED, `None` not finished (or rejected, cancelled).
    pub succeeded: Option<bool>,
    pub ready_at: Option<DateTime<Utc>>,
}

/// A successful production deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployFacts {
    pub service: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Week {
    /// The week's first instant (weeks end at the report's end, 7 days each).
    pub from: DateTime<Utc>,
    pub services: usize,
    pub services_deployed: usize,
    pub deployed_share: Option<f64>,
    pub requests_finished: usize,
    pub success_rate: Option<f64>,
    pub median_minutes_to_ready: Option<f64>,
    pub active_requesters: usize,
    pub new_requesters: usize,
    pub adoption_rate: Option<f64>,
    pub retention: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub services: usize,
    pub from_template: usize,
    pub from_template_share: Option<f64>,
    pub weeks: Vec<Week>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamFigures {
    pub team: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdoptionReport {
    pub spec_version: &'static str,
    pub to: DateTime<Utc>,
    pub weeks: usize,
    pub org: Figures,
    pub teams: Vec<TeamFigures>,
}

fn share(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

fn figures(
    services: &[&ServiceFacts],
    requests: &[&RequestFacts],
    deploys: &[&DeployFacts],
    to: DateTime<Utc>,
    weeks: usize,
) -> Figures {
    let names: BTreeSet<&str> = services.iter().map(|s| s.name.as_str()).collect();
    // Everyone's first request, before any week: a "new" requester is new to paved, not to
    // the window.
    let mut first_request: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    for r in requests {
        let e = first_request
            .entry(r.requester.as_str())
            .or_insert(r.created_at);
        *e = (*e).min(r.created_at);
    }
    let start = to - Duration::weeks(weeks as i64);
    let mut out = Vec::with_capacity(weeks);
    let mut previous_active: Option<usize> = None;
    for w in 0..weeks {
        let from = start + Duration::weeks(w as i64);
        let until = from + Duration::weeks(1);
        let in_week = |t: DateTime<Utc>| t >= from && t < until;
        let deployed: BTreeSet<&str> = deploys
            .iter()
            .filter(|d| in_week(d.at) && names.contains(d.service.as_str()))
            .map(|d| d.service.as_str())
            .collect();
        let week_requests: Vec<&&RequestFacts> =
            requests.iter().filter(|r| in_week(r.created_at)).collect();
        let finished: Vec<bool> = week_requests.iter().filter_map(|r| r.succeeded).collect();
        let to_ready = week_requests
            .iter()
            .filter_map(|r| {
                r.ready_at
                    .map(|t| (t - r.created_at).num_milliseconds() as f64 / 60_000.0)
            })
            .collect();
        let active: BTreeSet<&str> = week_requests.iter().map(|r| r.requester.as_str()).collect();
        let new = active
            .iter()
            .filter(|u| first_request.get(*u).is_some_and(|t| in_week(*t)))
            .count();
        let (adoption_rate, retention) = match previous_active {
            Some(prev) if prev > 0 => (
                Some((active.len() as f64 - prev as f64) / prev as f64),
                Some((active.len() as f64 - new as f64) / prev as f64),
            ),
            _ => (None, None),
        };
        out.push(Week {
            from,
            services: names.len(),
            services_deployed: deployed.len(),
            deployed_share: share(deployed.len(), names.len()),
            requests_finished: finished.len(),
            success_rate: share(finished.iter().filter(|ok| **ok).count(), finished.len()),
            median_minutes_to_ready: median(to_ready),
            active_requesters: active.len(),
            new_requesters: new,
            adoption_rate,
            retention,
        });
        previous_active = Some(active.len());
    }
    let from_template = services.iter().filter(|s| s.from_template).count();
    Figures {
        services: services.len(),
        from_template,
        from_template_share: share(from_template, services.len()),
        weeks: out,
    }
}

/// The organisation's and every team's figures for the `weeks` weeks ending at `to`.
pub fn compute(
    services: &[ServiceFacts],
    requests: &[RequestFacts],
    deploys: &[DeployFacts],
    to: DateTime<Utc>,
    weeks: usize,
) -> AdoptionReport {
    let all_s: Vec<&ServiceFacts> = services.iter().collect();
    let all_r: Vec<&RequestFacts> = requests.iter().collect();
    let all_d: Vec<&DeployFacts> = deploys.iter().collect();
    let org = figures(&all_s, &all_r, &all_d, to, weeks);
    let mut team_names: BTreeSet<&str> =
        services.iter().filter_map(|s| s.team.as_deref()).collect();
    team_names.extend(requests.iter().filter_map(|r| r.team.as_deref()));
    let teams = team_names
        .into_iter()
        .map(|team| {
            let s: Vec<&ServiceFacts> = services
                .iter()
                .filter(|s| s.team.as_deref() == Some(team))
                .collect();
            let r: Vec<&RequestFacts> = requests
                .iter()
                .filter(|r| r.team.as_deref() == Some(team))
                .collect();
            TeamFigures {
                team: team.to_owned(),
                figures: figures(&s, &r, &all_d, to, weeks),
            }
        })
        .collect();
    AdoptionReport {
        spec_version: "1",
        to,
        weeks,
        org,
        teams,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: i64, to: DateTime<Utc>) -> DateTime<Utc> {
        to - Duration::days(day)
    }

    #[test]
    fn the_spec_figures_by_hand() {
        let to = DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        let services = vec![
            ServiceFacts {
                name: "a".into(),
                team: Some("t1".into()),
                from_template: true,
            },
            ServiceFacts {
                name: "b".into(),
                team: Some("t1".into()),
                from_template: false,
            },
            ServiceFacts {
                name: "c".into(),
                team: Some("t2".into()),
                from_template: true,
            },
            ServiceFacts {
                name: "d".into(),
                team: Some("t2".into()),
                from_template: false,
            },
        ];
        let req = |who: &str, team: &str, day: i64, ok: Option<bool>, minutes: i64| RequestFacts {
            requester: who.into(),
            team: Some(team.into()),
            created_at: at(day, to),
            succeeded: ok,
            ready_at: (ok == Some(true)).then(|| at(day, to) + Duration::minutes(minutes)),
        };
        // Week 0 = days 14..7 before `to`, week 1 = days 7..0.
        let requests = vec![
            req("ann", "t1", 20, Some(true), 5), // before the window: makes ann not new later
            req("ann", "t1", 10, Some(true), 4),
            req("bob", "t1", 9, Some(false), 0),
            req("ann", "t1", 3, Some(true), 10),
            req("cat", "t2", 2, Some(true), 20),
            req("dan", "t2", 1, None, 0),
        ];
        let deploys = vec![
            DeployFacts {
                service: "a".into(),
                at: at(8, to),
            },
            DeployFacts {
                service: "a".into(),
                at: at(2, to),
            },
            DeployFacts {
                service: "c".into(),
                at: at(2, to),
            },
            DeployFacts {
                service: "zz".into(),
                at: at(2, to),
            }, // not in the catalog
        ];
        let r = compute(&services, &requests, &deploys, to, 2);
        assert_eq!(r.org.from_template_share, Some(0.5));
        let [w0, w1] = [&r.org.weeks[0], &r.org.weeks[1]];
        assert_eq!(w0.deployed_share, Some(0.25));
        assert_eq!(w1.deployed_share, Some(0.5));
        assert_eq!((w0.requests_finished, w0.success_rate), (2, Some(0.5)));
        assert_eq!(w0.median_minutes_to_ready, Some(4.0));
        assert_eq!(
            (w0.active_requesters, w0.new_requesters),
            (2, 1),
            "bob is new, ann is not"
        );
        assert_eq!(w0.adoption_rate, None, "no previous week inside the window");
        // Week 1: ann, cat, dan active (U=3), cat and dan new (N=2), U_{t-1}=2.
        assert_eq!((w1.active_requesters, w1.new_requesters), (3, 2));
        assert_eq!(w1.adoption_rate, Some(0.5));
        assert_eq!(w1.retention, Some(0.5));
        assert_eq!(
            w1.success_rate,
            Some(1.0),
            "dan's is unfinished and not counted"
        );
        assert_eq!(w1.median_minutes_to_ready, Some(15.0));
        let t2 = r.teams.iter().find(|t| t.team == "t2").expect("t2");
        assert_eq!(t2.figures.services, 2);
        assert_eq!(t2.figures.weeks[1].deployed_share, Some(0.5));
        assert_eq!(t2.figures.weeks[1].active_requesters, 2);
    }
}
