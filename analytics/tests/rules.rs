//! Every rule of metrics-spec.md (version 1), with hand-worked vectors. The well-known bugs of
//! other tools are regression cases here: a change failure rate above 100%, lead time inflated
//! by pre-history commits, recovery times truncated to hours, dropped offsets, and mixed
//! environments.

mod support;

use paved_analytics::dora::{Band, ServiceMetrics};
use support::*;

const FROM: &str = "2026-03-02"; // a Monday
const TO: &str = "2026-03-30"; // 28 days: four whole ISO weeks, no whole month

fn service<'a>(report: &'a paved_analytics::dora::DoraReport, name: &str) -> &'a ServiceMetrics {
    report
        .services
        .iter()
        .find(|s| s.service == name)
        .unwrap_or_else(|| panic!("service {name} in the report"))
}

#[test]
fn r1_counts_successful_production_deployments_once() {
    let report = report(
        &records(
            vec![
                deploy("d1", "a", "2026-03-03T10:00:00Z"),
                deploy("d2", "a", "2026-03-03T11:00:00Z").env("staging"),
                deploy("d3", "a", "2026-03-03T12:00:00Z").status("failure"),
                deploy("d4", "a", "2026-03-03T13:00:00Z").env("PROD"),
                // A repeated (service, deploy_id) keeps its latest finished_at: outside the window.
                deploy("d5", "a", "2026-03-04T10:00:00Z"),
                deploy("d5", "a", "2026-04-10T10:00:00Z"),
                // The same id in another service is another deployment.
                deploy("d1", "b", "2026-03-05T10:00:00Z"),
            ],
            vec![],
            vec![],
        ),
        FROM,
        TO,
    );
    assert_eq!(report.org.deployments, 3);
    assert_eq!(service(&report, "a").metrics.deployments, 2);
    assert_eq!(service(&report, "b").metrics.deployments, 1);
}

#[test]
fn r2_window_is_half_open() {
    let report = report(
        &records(
            vec![
                deploy("at-from", "a", "2026-03-02T00:00:00Z"),
                deploy("before", "a", "2026-03-01T23:59:59Z"),
                deploy("at-to", "a", "2026-03-30T00:00:00Z"),
            ],
            vec![],
            vec![],
        ),
        FROM,
        TO,
    );
    assert_eq!(report.org.deployments, 1);
    assert_eq!(report.window.from, "2026-03-02T00:00:00Z");
    assert_eq!(report.window.to, "2026-03-30T00:00:00Z");
    assert!((report.org.deploys_per_day - 1.0 / 28.0).abs() < 1e-12);
}

#[test]
fn r2_dates_are_local_midnight_in_the_report_time_zone() {
    // New York is UTC-5 until 8 March 2026 and UTC-4 after.
    let report = report_in(
        &records(
            vec![
                deploy("early", "a", "2026-03-02T04:30:00Z"),
                deploy("first", "a", "2026-03-02T05:00:00Z"),
                deploy("last", "a", "2026-03-30T03:59:00Z"),
                deploy("late", "a", "2026-03-30T04:00:00Z"),
            ],
            vec![],
            vec![],
        ),
        FROM,
        TO,
        "America/New_York",
    );
    assert_eq!(report.window.from, "2026-03-02T05:00:00Z");
    assert_eq!(report.window.to, "2026-03-30T04:00:00Z");
    assert_eq!(report.window.timezone, "America/New_York");
    assert_eq!(report.org.deployments, 2);
    let days = (28.0 * 24.0 - 1.0) / 24.0;
    assert!((report.org.deploys_per_day - 2.0 / days).abs() < 1e-12);
}

#[test]
fn r2_rfc3339_offsets_are_converted_not_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("deployments.ndjson"),
        [
            // 2026-03-01T23:00Z: before the window, though its local date is 2 March.
            r#"{"deploy_id":"d1","service":"a","environment":"production","status":"success","finished_at":"2026-03-02T01:00:00+02:00","changes":[]}"#,
            // 2026-03-02T01:00Z: inside.
            r#"{"deploy_id":"d2","service":"a","environment":"production","status":"success","finished_at":"2026-03-02T03:00:00+02:00","changes":[]}"#,
            // 2026-03-30T01:30Z: after the window, though its local date is 29 March.
            r#"{"deploy_id":"d3","service":"a","environment":"production","status":"success","finished_at":"2026-03-29T23:30:00-02:00","changes":[]}"#,
        ]
        .join("\n"),
    )
    .expect("write");
    std::fs::write(dir.path().join("changes.ndjson"), "").expect("write");
    std::fs::write(dir.path().join("incidents.ndjson"), "").expect("write");
    let tables = paved_analytics::input::read_dir(dir.path()).expect("read");
    let window = paved_analytics::window::ReportWindow::parse(
        Some(FROM),
        Some(TO),
        None,
        chrono::Utc::now(),
    )
    .expect("window");
    let report =
        paved_analytics::dora::compute(&tables, &paved_analytics::dora::DoraSettings::new(window))
            .expect("report");
    assert_eq!(report.org.deployments, 1);
}

#[test]
fn r3_deployment_frequency_counts_days_and_whole_weeks() {
    let mut deployments = vec![
        // Week of 2 March: Monday twice, Tuesday, Wednesday → 3 days.
        deploy("w1a", "a", "2026-03-02T09:00:00Z"),
        deploy("w1b", "a", "2026-03-02T15:00:00Z"),
        deploy("w1c", "a", "2026-03-03T09:00:00Z"),
        deploy("w1d", "a", "2026-03-04T09:00:00Z"),
        // Week of 9 March: nothing → 0 days.
        // Week of 23 March: Sunday 29th → 1 day.
        deploy("w4", "a", "2026-03-29T09:00:00Z"),
    ];
    // Week of 16 March: Monday to Friday → 5 days.
    for day in 16..=20 {
        deployments.push(deploy(
            &format!("w3-{day}"),
            "a",
            &format!("2026-03-{day}T09:00:00Z"),
        ));
    }
    let report = report(&records(deployments, vec![], vec![]), FROM, TO);
    let m = &report.org;
    assert_eq!(m.deployments, 10);
    assert_eq!(m.deployment_days, 9);
    assert!((m.deploys_per_day - 10.0 / 28.0).abs() < 1e-12);
    // Weeks [3, 0, 5, 1] → median of [0, 1, 3, 5] = 2.
    assert_eq!(m.median_deploy_days_per_week, Some(2.0));
    // March is not wholly inside [2 March, 30 March).
    assert_eq!(m.median_deploy_days_per_month, None);
    assert_eq!(m.bands.deployment_frequency, Some(Band::High));
}

#[test]
fn r3_days_are_local_dates() {
    let deployments = vec![
        deploy("late", "a", "2026-03-10T23:30:00Z"),
        deploy("early", "a", "2026-03-11T00:30:00Z"),
    ];
    let data = records(deployments, vec![], vec![]);
    assert_eq!(report(&data, FROM, TO).org.deployment_days, 2);
    // 19:30 and 20:30 on 10 March in New York.
    assert_eq!(
        report_in(&data, FROM, TO, "America/New_York")
            .org
            .deployment_days,
        1
    );
}

#[test]
fn r3_whole_months_and_no_whole_week() {
    let deployments = vec![
        deploy("j1", "a", "2026-01-05T10:00:00Z"),
        deploy("j2", "a", "2026-01-06T10:00:00Z"),
        deploy("m1", "a", "2026-03-10T10:00:00Z"),
    ];
    let data = records(deployments, vec![], vec![]);
    // January 2, February 0, March 1 → median 1.
    let quarter = report(&data, "2026-01-01", "2026-04-01");
    assert_eq!(quarter.org.median_deploy_days_per_month, Some(1.0));
    // Tuesday to Monday holds no whole ISO week: frequency has no band.
    let short = report(&data, "2026-03-03", "2026-03-09");
    assert_eq!(short.org.median_deploy_days_per_week, None);
    assert_eq!(short.org.bands.deployment_frequency, None);
}

/// R4's vectors with each sha written by `sha`: paved groups git's canonical shas (40 lowercase
/// hex digits) on integer keys and any other string on the strings, with the same figures.
fn r4_vectors(sha: &dyn Fn(&str) -> String) -> paved_analytics::dora::DoraReport {
    let ships = |record: paved_analytics::input::DeploymentRecord, names: &[&str]| {
        let shas: Vec<String> = names.iter().map(|name| sha(name)).collect();
        let shas: Vec<&str> = shas.iter().map(String::as_str).collect();
        record.ships(&shas)
    };
    let deployments = vec![
        // The first tracked deployment: its changes are history (regression: years-old commits
        // must not inflate lead time).
        ships(deploy("d0", "a", "2026-03-03T00:00:00Z"), &["old1"]),
        ships(
            deploy("d1", "a", "2026-03-04T00:00:00Z"),
            &["c1", "c2", "old1"],
        ),
        ships(
            deploy("d2", "a", "2026-03-05T00:00:00Z"),
            &["c2", "c3", "c4"],
        ),
        // Another service's deployment of the same sha is not a's.
        deploy("b0", "b", "2026-03-01T00:00:00Z"),
        ships(deploy("b1", "b", "2026-03-06T00:00:00Z"), &["c1"]),
    ];
    let changes = vec![
        change(&sha("old1"), "a", "2024-01-01T00:00:00Z"),
        // A repeated (service, sha) keeps its earliest authored_at.
        change(&sha("c1"), "a", "2026-03-03T23:00:00Z"),
        change(&sha("c1"), "a", "2026-03-03T22:30:00Z"),
        change(&sha("c2"), "a", "2026-03-03T12:00:30Z"),
        // Authored after its deployment: dropped, not a zero.
        change(&sha("c3"), "a", "2026-03-05T01:00:00Z"),
        change(&sha("c1"), "b", "2026-03-05T23:00:00Z"),
        // A service without production deployments ships nothing.
        change(&sha("c4"), "z", "2026-03-01T00:00:00Z"),
    ];
    report(&records(deployments, changes, vec![]), FROM, TO)
}

fn assert_r4_figures(report: &paved_analytics::dora::DoraReport) {
    let a = &service(report, "a").metrics;
    // c1: 90 min, c2: 719.5 min (owned by d1, not d2) → median 404.75.
    assert_eq!(a.lead_time_samples, 2);
    assert_eq!(a.lead_time_median_minutes, Some(404.75));
    let b = &service(report, "b").metrics;
    assert_eq!(b.lead_time_samples, 1);
    assert_eq!(b.lead_time_median_minutes, Some(60.0));
    assert_eq!(report.org.lead_time_samples, 3);
    assert_eq!(report.diagnostics.lead_time_dropped, 1);
    // c4 of a: z's change of the same sha is not a's.
    assert_eq!(report.diagnostics.changes_unknown, 1);
}

/// `name` as a canonical sha, its hex at the front: distinct names, distinct leading bits.
fn git_sha(name: &str) -> String {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:f<40}")
}

#[test]
fn r4_lead_time_skips_the_baseline_and_counts_each_change_once() {
    assert_r4_figures(&r4_vectors(&|name| name.to_owned()));
}

#[test]
fn r4_git_shas_give_the_same_figures() {
    assert_r4_figures(&r4_vectors(&git_sha));
}

#[test]
fn r4_shas_sharing_their_leading_bits_give_the_same_figures() {
    // The hex at the end: every sha starts with the same 32 digits, so a computation keyed on a
    // sha's leading bits would merge them.
    assert_r4_figures(&r4_vectors(&|name| {
        let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{hex:a>40}")
    }));
}

#[test]
fn r4_git_and_other_shas_mixed_give_the_same_figures() {
    assert_r4_figures(&r4_vectors(&|name| match name {
        "c1" | "old1" => name.to_owned(),
        "c2" => git_sha(name).to_uppercase(),
        _ => git_sha(name),
    }));
}

#[test]
fn r4_shas_are_compared_exactly() {
    // An upper-case sha is another string, even where its hex digits are the same.
    let sha = "deadbeef00112233445566778899aabbccddeeff";
    let deployments = vec![
        deploy("d0", "a", "2026-03-03T00:00:00Z"),
        deploy("d1", "a", "2026-03-04T00:00:00Z").ships(&[sha]),
    ];
    let changes = vec![change(&sha.to_uppercase(), "a", "2026-03-03T23:00:00Z")];
    let report = report_of(deployments, changes);
    assert_eq!(report.org.lead_time_samples, 0);
    assert_eq!(report.diagnostics.changes_unknown, 1);
}

fn report_of(
    deployments: Vec<paved_analytics::input::DeploymentRecord>,
    changes: Vec<paved_analytics::input::ChangeRecord>,
) -> paved_analytics::dora::DoraReport {
    report(&records(deployments, changes, vec![]), FROM, TO)
}

#[test]
fn r4_samples_belong_to_deployments_in_the_window() {
    let deployments = vec![
        deploy("d0", "a", "2026-02-01T00:00:00Z"),
        deploy("d1", "a", "2026-02-10T00:00:00Z").ships(&["before", "gone"]),
        deploy("d2", "a", "2026-03-10T00:00:00Z").ships(&["before", "inside"]),
        deploy("d3", "a", "2026-04-10T00:00:00Z").ships(&["after", "missing"]),
    ];
    let changes = vec![
        change("before", "a", "2026-02-09T00:00:00Z"),
        change("inside", "a", "2026-03-09T00:00:00Z"),
        change("after", "a", "2026-04-09T00:00:00Z"),
    ];
    let report = report(&records(deployments, changes, vec![]), FROM, TO);
    assert_eq!(report.org.lead_time_samples, 1);
    assert_eq!(report.org.lead_time_median_minutes, Some(1440.0));
    // `gone` and `missing` are unknown but their deployments are outside the window.
    assert_eq!(report.diagnostics.changes_unknown, 0);
}

#[test]
fn r5_step1_deploy_id_is_limited_to_the_incident_service() {
    let deployments = vec![
        deploy("x", "a", "2026-03-06T10:00:00Z"),
        deploy("x", "b", "2026-03-06T09:00:00Z"),
    ];
    let scoped = report(
        &records(
            deployments.clone(),
            vec![],
            vec![incident("i1", Some("a"), "2026-03-06T11:00:00Z").deploy("x")],
        ),
        FROM,
        TO,
    );
    assert_eq!(service(&scoped, "a").metrics.failed_deployments, 1);
    assert_eq!(service(&scoped, "b").metrics.failed_deployments, 0);
    // Without a service, the earliest deployment with that id wins.
    let unscoped = report(
        &records(
            deployments,
            vec![],
            vec![incident("i1", None, "2026-03-06T11:00:00Z").deploy("x")],
        ),
        FROM,
        TO,
    );
    assert_eq!(service(&unscoped, "a").metrics.failed_deployments, 0);
    assert_eq!(service(&unscoped, "b").metrics.failed_deployments, 1);
}

#[test]
fn r5_step2_commit_sha_matches_the_head_or_the_changes() {
    let deployments = vec![
        deploy("a1", "a", "2026-03-03T10:00:00Z")
            .head("s1")
            .ships(&["s0", "s1"]),
        deploy("b1", "b", "2026-03-04T10:00:00Z").ships(&["s1"]),
        deploy("b2", "b", "2026-03-05T10:00:00Z").head("s1"),
    ];
    let case = |incident| {
        report(
            &records(deployments.clone(), vec![], vec![incident]),
            FROM,
            TO,
        )
    };
    let failed =
        |r: &paved_analytics::dora::DoraReport, s| service(r, s).metrics.failed_deployments;
    let scoped = case(incident("i", Some("b"), "2026-03-20T00:00:00Z").commit("s1"));
    assert_eq!((failed(&scoped, "a"), failed(&scoped, "b")), (0, 1));
    let unscoped = case(incident("i", None, "2026-03-20T00:00:00Z").commit("s1"));
    assert_eq!((failed(&unscoped, "a"), failed(&unscoped, "b")), (1, 0));
    let in_changes = case(incident("i", Some("a"), "2026-03-20T00:00:00Z").commit("s0"));
    assert_eq!((failed(&in_changes, "a"), failed(&in_changes, "b")), (1, 0));
}

#[test]
fn r5_step2_looks_in_every_deployment_of_all_time() {
    // R4 lists each `(service, sha)` once, at its first deployment; R5 finds a commit there even
    // when that deployment is a baseline or finished after the window.
    let deployments = vec![
        deploy("a0", "a", "2026-03-03T10:00:00Z").ships(&["s0"]),
        deploy("a1", "a", "2026-03-04T10:00:00Z").ships(&["s0"]),
        deploy("c0", "c", "2026-03-02T10:00:00Z"),
        deploy("c1", "c", "2026-04-10T10:00:00Z").ships(&["late"]),
    ];
    let case = |incident| {
        report(
            &records(deployments.clone(), vec![], vec![incident]),
            FROM,
            TO,
        )
    };
    let baseline = case(incident("i", Some("a"), "2026-03-20T00:00:00Z").commit("s0"));
    assert_eq!(service(&baseline, "a").metrics.failed_deployments, 1);
    let late = case(incident("i", Some("c"), "2026-03-20T00:00:00Z").commit("late"));
    assert_eq!(
        late.diagnostics.unattributed_incidents, 0,
        "attributed to c1"
    );
    assert_eq!(service(&late, "c").metrics.failed_deployments, 0);
}

#[test]
fn r5_step3_latest_deployment_within_the_attribution_window() {
    let deployments = vec![
        deploy("d1", "a", "2026-03-03T10:00:00Z"),
        deploy("d2", "a", "2026-03-05T10:00:00Z"),
    ];
    let case = |incident| {
        report(
            &records(deployments.clone(), vec![], vec![incident]),
            FROM,
            TO,
        )
    };
    let recent = case(incident("i", Some("a"), "2026-03-05T12:00:00Z"));
    assert_eq!(recent.org.failed_deployments, 1);
    // Recovery through the incident tells which deployment failed: d2 (+0 min to resolve).
    let seven_days =
        case(incident("i", Some("a"), "2026-03-12T10:00:00Z").resolved("2026-03-12T10:00:00Z"));
    assert_eq!(seven_days.org.failed_deployments, 1);
    assert_eq!(seven_days.org.fdrt_median_minutes, Some(7.0 * 24.0 * 60.0));
    let too_late = case(incident("i", Some("a"), "2026-03-12T10:00:01Z"));
    assert_eq!(too_late.org.failed_deployments, 0);
    assert_eq!(too_late.diagnostics.unattributed_incidents, 1);
    // An incident before any deployment of its service finds none.
    let before = case(incident("i", Some("a"), "2026-03-03T09:00:00Z"));
    assert_eq!(before.diagnostics.unattributed_incidents, 1);
}

#[test]
fn r5_first_step_that_finds_a_deployment_wins() {
    let deployments = vec![
        deploy("d1", "a", "2026-03-03T10:00:00Z"),
        deploy("d2", "a", "2026-03-05T10:00:00Z").head("s2"),
    ];
    let incidents = vec![
        incident("i", Some("a"), "2026-03-05T11:00:00Z")
            .deploy("d1")
            .commit("s2")
            .resolved("2026-03-05T11:00:00Z"),
    ];
    let report = report(&records(deployments, vec![], incidents), FROM, TO);
    assert_eq!(report.org.failed_deployments, 1);
    // Attributed to d1 (by id), so recovery is measured from d1: 2 days + 1 h.
    assert_eq!(report.org.fdrt_median_minutes, Some((48.0 + 1.0) * 60.0));
}

#[test]
fn r5_unattributed_counts_incidents_created_in_the_window() {
    let incidents = vec![
        incident("in", None, "2026-03-10T00:00:00Z"),
        incident("out", None, "2026-02-10T00:00:00Z"),
        incident("nowhere", Some("ghost"), "2026-03-11T00:00:00Z").deploy("none"),
    ];
    let report = report(&records(vec![], vec![], incidents), FROM, TO);
    assert_eq!(report.diagnostics.unattributed_incidents, 2);
}

#[test]
fn r6_a_deployment_fails_once_however_many_incidents() {
    // Regression: counting incidents gives 3 / 2 = 150%.
    let deployments = vec![
        deploy("d1", "a", "2026-03-03T10:00:00Z"),
        deploy("d2", "a", "2026-03-04T10:00:00Z"),
    ];
    let incidents = (1..=3)
        .map(|n| incident(&format!("i{n}"), Some("a"), "2026-03-03T11:00:00Z").deploy("d1"))
        .collect();
    let report = report(&records(deployments, vec![], incidents), FROM, TO);
    assert_eq!(report.org.failed_deployments, 1);
    assert_eq!(report.org.change_failure_rate, Some(0.5));
}

#[test]
fn r6_rollback_or_hotfix_within_a_day_fails_the_deployment_before_it() {
    let deployments = vec![
        deploy("d1", "a", "2026-03-03T10:00:00Z"),
        deploy("d2", "a", "2026-03-04T10:00:00Z").kind("rollback"), // 24 h: fails d1
        deploy("d3", "a", "2026-03-10T10:00:00Z"),
        deploy("d4", "a", "2026-03-11T11:00:00Z").kind("hotfix"), // 25 h: too late
        deploy("d5", "b", "2026-03-10T10:00:00Z"),
        deploy("d6", "b", "2026-03-10T10:30:00Z")
            .env("staging")
            .kind("rollback"),
    ];
    let report = report(&records(deployments, vec![], vec![]), FROM, TO);
    assert_eq!(service(&report, "a").metrics.failed_deployments, 1);
    assert_eq!(
        service(&report, "a").metrics.change_failure_rate,
        Some(0.25)
    );
    assert_eq!(service(&report, "b").metrics.failed_deployments, 0);
    assert_eq!(report.org.change_failure_rate, Some(0.2));
}

#[test]
fn r6_no_deployments_means_no_rate() {
    let report = report(&records(vec![], vec![], vec![]), FROM, TO);
    assert_eq!(report.org.change_failure_rate, None);
    assert_eq!(report.org.rework_rate, None);
    assert_eq!(report.org.bands.change_failure_rate, None);
    // Four whole weeks with 0 deployment days each.
    assert_eq!(report.org.median_deploy_days_per_week, Some(0.0));
    assert_eq!(report.org.bands.deployment_frequency, Some(Band::Low));
}

#[test]
fn r3_a_service_with_only_incidents_has_zero_day_weeks() {
    let data = records(
        vec![],
        vec![],
        vec![incident("i", Some("quiet"), "2026-03-05T00:00:00Z")],
    );
    let report = report(&data, FROM, TO);
    let quiet = &service(&report, "quiet").metrics;
    assert_eq!(quiet.deployments, 0);
    assert_eq!(quiet.median_deploy_days_per_week, Some(0.0));
    assert_eq!(quiet.deploys_per_day, 0.0);
}

#[test]
fn r7_recovery_is_the_earliest_candidate_in_minutes() {
    let deployments = vec![
        deploy("a1", "a", "2026-03-03T10:00:00Z"),
        deploy("b1", "b", "2026-03-03T10:00:00Z"),
        deploy("b2", "b", "2026-03-03T13:20:00Z").kind("hotfix"),
        deploy("c1", "c", "2026-03-03T10:00:00Z"),
        deploy("d1", "d", "2026-03-03T10:00:00Z"),
        deploy("d2", "d", "2026-03-05T10:00:00Z"),
        deploy("d3", "d", "2026-03-05T11:40:00Z").kind("rollback"),
        deploy("e1", "e", "2026-03-10T10:00:00Z"),
    ];
    let incidents = vec![
        // All resolved: the latest resolution, +90 min.
        incident("a-i1", Some("a"), "2026-03-03T10:10:00Z")
            .deploy("a1")
            .resolved("2026-03-03T10:30:00Z"),
        incident("a-i2", Some("a"), "2026-03-03T10:20:00Z")
            .deploy("a1")
            .resolved("2026-03-03T11:30:00Z"),
        // One open incident: only the later hotfix counts, +200 min.
        incident("b-i1", Some("b"), "2026-03-03T10:10:00Z")
            .deploy("b1")
            .resolved("2026-03-03T10:20:00Z"),
        incident("b-i2", Some("b"), "2026-03-03T10:10:00Z").deploy("b1"),
        // Open and no later fix: unrecovered.
        incident("c-i1", Some("c"), "2026-03-03T10:10:00Z").deploy("c1"),
        // Resolved +500 min, but a later rollback (not the next deployment) at +2 d 1 h 40 min.
        incident("d-i1", Some("d"), "2026-03-03T10:10:00Z")
            .deploy("d1")
            .resolved("2026-03-03T18:20:00Z"),
        // Resolved before the deployment finished: 0, not negative.
        incident("e-i1", Some("e"), "2026-03-10T09:00:00Z")
            .deploy("e1")
            .resolved("2026-03-10T09:30:00Z"),
    ];
    let report = report(&records(deployments, vec![], incidents), FROM, TO);
    let m = &report.org;
    // Failed: a1, b1, c1, d1, d2 (followed by the rollback within 24 h), e1.
    assert_eq!(m.failed_deployments, 6);
    assert_eq!(m.unrecovered_failures, 1);
    // a1 90, b1 200, d1 500, d2 100, e1 0 → median 100.
    assert_eq!(m.fdrt_samples, 5);
    assert_eq!(m.fdrt_median_minutes, Some(100.0));
    assert_eq!(
        service(&report, "d").metrics.fdrt_median_minutes,
        Some(300.0)
    );
    assert_eq!(service(&report, "e").metrics.fdrt_median_minutes, Some(0.0));
    assert_eq!(service(&report, "c").metrics.unrecovered_failures, 1);
}

#[test]
fn r8_time_to_restore_is_never_truncated() {
    let incidents = vec![
        // Regression: 90 minutes, not 1 hour.
        incident("i1", Some("a"), "2026-03-03T10:00:00Z").resolved("2026-03-03T11:30:00Z"),
        // Created before the window, resolved inside: counts.
        incident("i2", Some("a"), "2026-02-20T00:00:00Z").resolved("2026-03-05T00:00:00Z"),
        // Resolved after the window: does not.
        incident("i3", Some("a"), "2026-03-29T00:00:00Z").resolved("2026-03-30T00:00:00Z"),
        // Resolved before created: 0.
        incident("i4", None, "2026-03-10T00:00:00Z").resolved("2026-03-09T00:00:00Z"),
        incident("i5", Some("a"), "2026-03-10T00:00:00Z").resolved("2026-03-10T00:00:30Z"),
    ];
    let report = report(&records(vec![], vec![], incidents), FROM, TO);
    // 0, 0.5, 90, 18720 → median 45.25.
    assert_eq!(report.org.ttr_samples, 4);
    assert_eq!(report.org.ttr_median_minutes, Some(45.25));
    // Incidents without a service count only for the org: 0.5, 90, 18720.
    assert_eq!(service(&report, "a").metrics.ttr_samples, 3);
    assert_eq!(service(&report, "a").metrics.ttr_median_minutes, Some(90.0));
}

#[test]
fn r9_rework_rate_is_rollbacks_and_hotfixes_over_deployments() {
    let deployments = vec![
        deploy("d1", "a", "2026-03-03T10:00:00Z"),
        deploy("d2", "a", "2026-03-10T10:00:00Z").kind("Rollback"),
        deploy("d3", "a", "2026-03-17T10:00:00Z").kind("hotfix"),
        deploy("d4", "a", "2026-03-24T10:00:00Z").kind("normal"),
        deploy("d5", "a", "2026-03-25T10:00:00Z")
            .kind("hotfix")
            .env("staging"),
    ];
    let report = report(&records(deployments, vec![], vec![]), FROM, TO);
    assert_eq!(report.org.rework_rate, Some(0.5));
}

#[test]
fn r10_medians_interpolate_between_the_middle_values() {
    let deployments = vec![
        deploy("d0", "a", "2026-03-02T00:00:00Z"),
        deploy("d1", "a", "2026-03-03T00:00:00Z").ships(&["c1", "c2", "c3", "c4"]),
    ];
    let changes = vec![
        change("c1", "a", "2026-03-02T23:50:00Z"),
        change("c2", "a", "2026-03-02T23:40:00Z"),
        change("c3", "a", "2026-03-02T23:20:00Z"),
        change("c4", "a", "2026-03-02T22:40:00Z"),
    ];
    let report = report(&records(deployments, changes, vec![]), FROM, TO);
    // 10, 20, 40, 80 → 30.
    assert_eq!(report.org.lead_time_median_minutes, Some(30.0));
}

#[test]
fn r11_teams_pool_their_services_samples() {
    let mut data = records(
        vec![
            deploy("a0", "a", "2026-03-02T00:00:00Z"),
            deploy("a1", "a", "2026-03-03T00:00:00Z").ships(&["a-c"]),
            deploy("b0", "b", "2026-03-02T00:00:00Z"),
            deploy("b1", "b", "2026-03-03T00:00:00Z").ships(&["b-1", "b-2", "b-3"]),
            deploy("c0", "c", "2026-03-02T00:00:00Z"),
        ],
        vec![
            change("a-c", "a", "2026-03-02T23:50:00Z"),
            change("b-1", "b", "2026-03-02T22:20:00Z"),
            change("b-2", "b", "2026-03-02T22:20:00Z"),
            change("b-3", "b", "2026-03-02T22:20:00Z"),
        ],
        vec![incident("z-1", Some("z"), "2026-03-05T00:00:00Z")],
    );
    data.services = owned_by(&[("a", "t1"), ("b", "t1"), ("z", "t2")]);
    let report = report(&data, FROM, TO);
    let t1 = report.teams.iter().find(|t| t.team == "t1").expect("t1");
    // Pooled [10, 100, 100, 100] → 100; the mean of service medians would say 55.
    assert_eq!(t1.metrics.lead_time_median_minutes, Some(100.0));
    assert_eq!(t1.metrics.deployments, 4);
    let services: Vec<(&str, &str)> = report
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.team.as_str()))
        .collect();
    assert_eq!(
        services,
        [("a", "t1"), ("b", "t1"), ("c", "unowned"), ("z", "t2")]
    );
    let teams: Vec<&str> = report.teams.iter().map(|t| t.team.as_str()).collect();
    assert_eq!(teams, ["t1", "t2", "unowned"]);
}

#[test]
fn spec_version_and_json_shape() {
    let report = report(&records(vec![], vec![], vec![]), FROM, TO);
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(json["spec_version"], "1");
    assert_eq!(json["edition"], "2023");
    let org = json["org"].as_object().expect("org");
    let mut keys: Vec<&str> = org.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "bands",
            "change_failure_rate",
            "deployment_days",
            "deployments",
            "deploys_per_day",
            "failed_deployments",
            "fdrt_median_minutes",
            "fdrt_samples",
            "lead_time_median_minutes",
            "lead_time_samples",
            "median_deploy_days_per_month",
            "median_deploy_days_per_week",
            "rework_rate",
            "scores",
            "ttr_median_minutes",
            "ttr_samples",
            "unrecovered_failures",
        ]
    );
    assert_eq!(
        json["org"]["lead_time_median_minutes"],
        serde_json::Value::Null
    );
    assert_eq!(json["diagnostics"]["changes_unknown"], 0);
}
