//! `paved report dora`: from a generated folder in every format, and from the platform's store.

use std::sync::Arc;

use paved::analytics::{
    DataFormat, DoraArgs, GenerateCommand, GenerateEventsArgs, ReportCommand, ReportFormat,
};
use paved_core::delivery::{DeliveryStore, DeploymentRecord};

fn dora(
    input: Option<std::path::PathBuf>,
    data: std::path::PathBuf,
    format: ReportFormat,
    out: std::path::PathBuf,
) -> ReportCommand {
    ReportCommand::Dora(DoraArgs {
        store: input.is_none(),
        input,
        data,
        from: Some("2026-10-24".into()),
        to: Some("2026-11-23".into()),
        timezone: "UTC".into(),
        format,
        out: Some(out),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_events_report_in_every_format() {
    let dir = tempfile::tempdir().expect("dir");
    let events = dir.path().join("events");
    paved::analytics::generate_events(GenerateCommand::Events(GenerateEventsArgs {
        services: 8,
        days: 30,
        deploys_per_day: 40.0,
        seed: 3,
        out: events.clone(),
        format: DataFormat::Ndjson,
        end: chrono::NaiveDate::from_ymd_opt(2026, 11, 23),
    }))
    .expect("generate");
    for (format, name) in [
        (ReportFormat::Json, "report.json"),
        (ReportFormat::Html, "report.html"),
        (ReportFormat::Md, "report.md"),
        (ReportFormat::Csv, "report.csv"),
    ] {
        let out = dir.path().join(name);
        paved::analytics::report(dora(
            Some(events.clone()),
            dir.path().into(),
            format,
            out.clone(),
        ))
        .await
        .expect("report");
        assert!(
            std::fs::metadata(&out).expect("written").len() > 100,
            "{name}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("json"))
            .expect("parse");
    assert_eq!(json["spec_version"], "1");
    assert!(json["org"]["deployments"].as_u64().is_some_and(|n| n > 100));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_reads_the_platforms_store() {
    let dir = tempfile::tempdir().expect("dir");
    let store = paved_sqlite::SqliteStore::open(&dir.path().join("paved.db")).expect("db");
    let events = DeliveryStore::new(Arc::new(store));
    events
        .save_deployment(&DeploymentRecord {
            deploy_id: "d-1".into(),
            service: "checkout".into(),
            environment: "production".into(),
            status: "success".into(),
            kind: None,
            commit_sha: None,
            finished_at: "2026-11-10T10:00:00Z".parse().expect("time"),
            changes: Vec::new(),
        })
        .await
        .expect("save");
    let out = dir.path().join("report.json");
    paved::analytics::report(dora(
        None,
        dir.path().into(),
        ReportFormat::Json,
        out.clone(),
    ))
    .await
    .expect("report from the store");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("read")).expect("parse");
    assert_eq!(json["org"]["deployments"], 1);
    assert_eq!(json["services"][0]["service"], "checkout");
    assert_eq!(json["services"][0]["team"], "unowned");

    // Over the store the leaders' page has the platform's sections: scorecard levels per team
    // and the adoption figures (here: a catalog with no services yet, and no requests).
    let html = dir.path().join("report.html");
    paved::analytics::report(dora(
        None,
        dir.path().into(),
        ReportFormat::Html,
        html.clone(),
    ))
    .await
    .expect("html from the store");
    let page = std::fs::read_to_string(&html).expect("read");
    for id in ["scorecard-levels", "failing-rules", "adoption"] {
        assert!(page.contains(&format!("id=\"{id}\"")), "{id} missing");
    }
    assert!(page.contains("Production readiness"));
    let md = dir.path().join("report.md");
    paved::analytics::report(dora(None, dir.path().into(), ReportFormat::Md, md.clone()))
        .await
        .expect("markdown from the store");
    let text = std::fs::read_to_string(&md).expect("read");
    assert!(text.contains("### Platform adoption (last week)"), "{text}");
    assert!(text.contains("| Organisation | 0 |"), "{text}");
}
