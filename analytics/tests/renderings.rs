//! The Markdown and CSV renderings carry the report's figures.

use chrono::NaiveDate;
use paved_analytics::dora::{self, Analysis, DoraSettings};
use paved_analytics::generate::{GeneratorSettings, generate};
use paved_analytics::input::EventTables;
use paved_analytics::render::{Format, render};
use paved_analytics::window::ReportWindow;

fn analysis() -> Analysis {
    let records = generate(
        &GeneratorSettings {
            services: 12,
            days: 40,
            deploys_per_day: 30.0,
            seed: 5,
            end: NaiveDate::from_ymd_opt(2026, 11, 23).expect("date"),
        },
        |_| {},
    );
    let window = ReportWindow::parse(
        Some("2026-10-19"),
        Some("2026-11-23"),
        None,
        chrono::Utc::now(),
    )
    .expect("window");
    let tables = EventTables::from_records(&records).expect("tables");
    dora::analyse(&tables, &DoraSettings::new(window)).expect("analysis")
}

#[test]
fn csv_has_one_row_per_scope_with_every_figure() {
    let analysis = analysis();
    let report = &analysis.report;
    let csv = render(&analysis, Format::Csv).expect("csv");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().expect("header").clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 1 + report.teams.len() + report.services.len());
    let field = |row: &csv::StringRecord, name: &str| {
        let index = header.iter().position(|h| h == name).expect("column");
        row[index].to_owned()
    };
    assert_eq!(field(&rows[0], "scope"), "org");
    assert_eq!(
        field(&rows[0], "deployments"),
        report.org.deployments.to_string()
    );
    assert_eq!(
        field(&rows[0], "change_failure_rate").parse::<f64>().ok(),
        report.org.change_failure_rate
    );
    let last = rows.last().expect("a service row");
    let service = report.services.last().expect("a service");
    assert_eq!(field(last, "service"), service.service);
    assert_eq!(field(last, "team"), service.team);
}

#[test]
fn markdown_summarises_the_org_and_names_the_spec() {
    let analysis = analysis();
    let md = render(&analysis, Format::Markdown).expect("md");
    let org = &analysis.report.org;
    assert!(md.starts_with("# DORA metrics, 2026-10-19T00:00:00Z to 2026-11-23T00:00:00Z (UTC)"));
    assert!(md.contains(&format!("{} deployments", org.deployments)));
    assert!(md.contains(&format!(
        "{:.1} %",
        org.change_failure_rate.expect("rate") * 100.0
    )));
    assert!(md.contains("paved metrics spec version 1"));
    for team in &analysis.report.teams {
        assert!(md.contains(&format!("| {} |", team.team)));
    }
}

#[test]
fn json_is_the_spec_output() {
    let analysis = analysis();
    let json: serde_json::Value =
        serde_json::from_str(&render(&analysis, Format::Json).expect("json")).expect("valid json");
    assert_eq!(json["spec_version"], "1");
    assert_eq!(json["window"]["timezone"], "UTC");
    assert_eq!(json["org"]["deployments"], analysis.report.org.deployments);
    assert!(
        json.get("weekly").is_none(),
        "the chart series are not part of the spec output"
    );
}
