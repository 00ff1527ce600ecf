//! Properties of the computation over generated organisations: a single-team organisation's
//! team figures are the org's, and the order of input rows changes nothing.

use chrono::NaiveDate;
use paved_analytics::dora::{self, DoraReport, DoraSettings};
use paved_analytics::generate::{GeneratorSettings, generate};
use paved_analytics::input::{EventRecords, EventTables};
use paved_analytics::window::ReportWindow;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;

fn dataset(seed: u64, services: usize, deploys_per_day: f64) -> EventRecords {
    generate(
        &GeneratorSettings {
            services,
            days: 45,
            deploys_per_day,
            seed,
            end: NaiveDate::from_ymd_opt(2026, 3, 30).expect("date"),
        },
        |_| {},
    )
}

fn compute(records: &EventRecords, timezone: &str) -> DoraReport {
    let window = ReportWindow::parse(
        Some("2026-02-02"),
        Some("2026-03-30"),
        Some(timezone),
        chrono::Utc::now(),
    )
    .expect("window");
    let tables = EventTables::from_records(records).expect("tables");
    dora::compute(&tables, &DoraSettings::new(window)).expect("report")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn a_single_team_org_has_the_org_figures(
        seed in any::<u64>(),
        services in 1usize..8,
        deploys_per_day in 1.0f64..25.0,
    ) {
        let mut records = dataset(seed, services, deploys_per_day);
        for service in records.services.iter_mut().flatten() {
            service.team = "the-team".to_owned();
        }
        // Incidents without a service count only for the org (R11), so every one has one here.
        for incident in &mut records.incidents {
            incident.service.get_or_insert_with(|| "svc-00000".to_owned());
        }
        let report = compute(&records, "UTC");
        prop_assert_eq!(report.teams.len(), usize::from(!report.services.is_empty()));
        for team in &report.teams {
            prop_assert_eq!(&team.metrics, &report.org);
        }
    }

    #[test]
    fn shuffling_the_rows_changes_nothing(
        seed in any::<u64>(),
        services in 1usize..8,
        deploys_per_day in 1.0f64..25.0,
        timezone in prop::sample::select(vec!["UTC", "Europe/Berlin", "Asia/Kolkata"]),
    ) {
        let records = dataset(seed, services, deploys_per_day);
        let mut shuffled = records.clone();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
        shuffled.deployments.shuffle(&mut rng);
        shuffled.changes.shuffle(&mut rng);
        shuffled.incidents.shuffle(&mut rng);
        if let Some(services) = shuffled.services.as_mut() {
            services.shuffle(&mut rng);
        }
        prop_assert_eq!(compute(&records, timezone), compute(&shuffled, timezone));
    }
}

#[test]
fn generated_data_exercises_every_rule() {
    let records = dataset(7, 20, 60.0);
    let report = compute(&records, "UTC");
    let org = &report.org;
    assert!(org.deployments > 1000, "{org:?}");
    assert!(org.lead_time_samples > 1000);
    assert!(org.failed_deployments > 0 && org.failed_deployments < org.deployments);
    assert!(org.fdrt_samples > 0 && org.ttr_samples > 0);
    assert!(org.rework_rate.is_some_and(|r| r > 0.0));
    assert!(report.diagnostics.lead_time_dropped > 0);
    assert!(report.diagnostics.changes_unknown > 0);
    assert_eq!(report.services.len(), 20);
    assert!(
        (1..=2).contains(&report.teams.len()),
        "20 services make 2 teams of 10"
    );
}
