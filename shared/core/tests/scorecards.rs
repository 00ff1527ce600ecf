//! Scorecards: the default definition, levels held only when every lower level holds, the
//! checks, refused definitions, and the Port and Cortex exports.

use paved_core::delivery::ServiceActivity;
use paved_core::scorecards::{Scorecard, ServiceMetrics, evaluate, export};
use serde_json::{Value, json};

fn service(annotations: Value, links: Value) -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": "payments", "description": "Takes the money", "annotations": annotations, "links": links},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}
    })
}

fn silver_service() -> Value {
    service(
        json!({"pagerduty.com/service-id": "P123", "paved.dev/template": "service"}),
        json!([{"url": "https://docs.example.com/payments", "title": "Docs", "type": "docs"}]),
    )
}

fn level(e: &paved_core::scorecards::Evaluation) -> Option<&str> {
    e.level.as_deref()
}

#[test]
fn levels_stack_bronze_silver_gold() {
    let card = Scorecard::production_readiness();
    assert_eq!(card.levels, ["Bronze", "Silver", "Gold"]);
    let recent = ServiceActivity {
        production_deployments_30d: 4,
        last_production_deployment: None,
    };
    let elite = json!({"service": "payments", "unrecovered_failures": 0,
        "bands": {"lead_time": "elite", "change_failure_rate": "high"}});
    let metrics = ServiceMetrics {
        dora: Some(&elite),
        activity: Some(&recent),
        drifted_resources_1d: 0,
    };

    let gold = evaluate(
        &card,
        "component:default/payments",
        &silver_service(),
        true,
        metrics,
    );
    assert_eq!(level(&gold), Some("Gold"), "{gold:#?}");
    assert_eq!(gold.next_level, None);
    assert!(gold.rules.iter().all(|r| r.passed));
    // One of its team's resources drifted for more than a day: Silver's rule fails, Bronze.
    let drifting = evaluate(
        &card,
        "component:default/payments",
        &silver_service(),
        true,
        ServiceMetrics {
            drifted_resources_1d: 1,
            ..metrics
        },
    );
    assert_eq!(level(&drifting), Some("Bronze"), "{drifting:#?}");
    assert!(
        drifting
            .rules
            .iter()
            .any(|r| r.id == "no-lasting-drift" && !r.passed)
    );

    // Gold-level metrics without Silver's on-call annotation: Bronze, not Gold.
    let no_on_call = service(
        json!({"paved.dev/template": "service"}),
        json!([{"url": "https://docs.example.com", "title": "Docs", "type": "docs"}]),
    );
    let e = evaluate(
        &card,
        "component:default/payments",
        &no_on_call,
        true,
        metrics,
    );
    assert_eq!(level(&e), Some("Bronze"));
    assert_eq!(e.next_level.as_deref(), Some("Silver"));
    let failing: Vec<&str> = e
        .rules
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(failing, ["on-call"]);

    // An owner that is not a Group of the catalog: no level at all.
    let e = evaluate(
        &card,
        "component:default/payments",
        &silver_service(),
        false,
        metrics,
    );
    assert_eq!(level(&e), None);
    assert_eq!(e.next_level.as_deref(), Some("Bronze"));
}

#[test]
fn metrics_decide_silver_and_gold() {
    let card = Scorecard::production_readiness();
    // Never deployed to production: Silver's "deployed in the last 30 days" fails.
    let e = evaluate(
        &card,
        "c",
        &silver_service(),
        true,
        ServiceMetrics::default(),
    );
    assert_eq!(level(&e), Some("Bronze"));
    let deployed = e
        .rules
        .iter()
        .find(|r| r.id == "deployed-recently")
        .expect("rule");
    assert!(!deployed.passed);
    assert!(
        deployed.detail.contains("production_deployments_30d is 0"),
        "{}",
        deployed.detail
    );

    // Deployed, but a medium lead time and an unrecovered failure: Silver.
    let recent = ServiceActivity {
        production_deployments_30d: 1,
        last_production_deployment: None,
    };
    let dora = json!({"unrecovered_failures": 1, "bands": {"lead_time": "medium", "change_failure_rate": "elite"}});
    let e = evaluate(
        &card,
        "c",
        &silver_service(),
        true,
        ServiceMetrics {
            dora: Some(&dora),
            activity: Some(&recent),
            drifted_resources_1d: 0,
        },
    );
    assert_eq!(level(&e), Some("Silver"));
    let failing: Vec<&str> = e
        .rules
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(failing, ["lead-time-high", "no-unrecovered-failure"]);

    // Not in the DORA report at all: Gold's band rules fail with the reason.
    let e = evaluate(
        &card,
        "c",
        &silver_service(),
        true,
        ServiceMetrics {
            dora: None,
            activity: Some(&recent),
            drifted_resources_1d: 0,
        },
    );
    assert_eq!(level(&e), Some("Silver"));
    assert!(
        e.rules
            .iter()
            .any(|r| r.detail.contains("no lead_time band"))
    );
}

#[test]
fn empty_fields_do_not_count_and_links_match_by_type_or_title() {
    let card = Scorecard::production_readiness();
    let mut blank = silver_service();
    blank["metadata"]["description"] = json!("  ");
    let e = evaluate(&card, "c", &blank, true, ServiceMetrics::default());
    assert_eq!(level(&e), None);

    let titled = service(
        json!({"pagerduty.com/service-id": "P1", "backstage.io/source-template": "template:default/x"}),
        json!([{"url": "https://wiki", "title": "Runbook and docs"}]),
    );
    let e = evaluate(&card, "c", &titled, true, ServiceMetrics::default());
    for id in ["docs-link", "golden-path", "on-call"] {
        assert!(
            e.rules.iter().any(|r| r.id == id && r.passed),
            "{id}: {e:#?}"
        );
    }
}

#[test]
fn definitions_that_cannot_be_evaluated_are_refused() {
    let base = "id: x\nversion: 1\ntitle: X\nlevels: [One]\n";
    let ok = format!(
        "{base}rules:\n  - {{id: a, title: A, level: One, check: {{fieldPresent: metadata.description}}}}\n"
    );
    assert!(Scorecard::from_yaml(&ok).is_ok());
    for (bad, why) in [
        (
            format!(
                "{base}rules:\n  - {{id: a, title: A, level: Two, check: {{fieldPresent: x}}}}\n"
            ),
            "not one of",
        ),
        (
            format!(
                "{base}rules:\n  - {{id: a, title: A, level: One, check: {{fieldPresent: x}}}}\n  - {{id: a, title: B, level: One, check: {{fieldPresent: y}}}}\n"
            ),
            "used twice",
        ),
        (
            format!(
                "{base}rules:\n  - {{id: a, title: A, level: One, check: {{runScript: rm}}}}\n"
            ),
            "not valid",
        ),
        (format!("{base}rules: []\n"), "needs levels and rules"),
    ] {
        let err = Scorecard::from_yaml(&bad).expect_err(why).to_string();
        assert!(err.contains(why), "{err}");
    }
}

#[test]
fn exports_carry_every_level_and_rule() {
    let card = Scorecard::production_readiness();
    let port = export::to_port(&card);
    let levels: Vec<&str> = port["levels"]
        .as_array()
        .expect("levels")
        .iter()
        .filter_map(|l| l["title"].as_str())
        .collect();
    assert_eq!(levels, ["Basic", "Bronze", "Silver", "Gold"]);
    assert_eq!(port["identifier"], "production_readiness");
    let rules = port["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), card.rules.len());
    let lead = rules
        .iter()
        .find(|r| r["identifier"] == "lead_time_high")
        .expect("rule");
    assert_eq!(lead["level"], "Gold");
    assert_eq!(lead["query"]["combinator"], "or");
    assert_eq!(
        lead["query"]["conditions"].as_array().map(Vec::len),
        Some(2),
        "high or elite"
    );

    let cortex: Value = serde_yaml::from_str(&export::to_cortex(&card)).expect("YAML");
    assert_eq!(cortex["tag"], "production-readiness");
    assert_eq!(cortex["ladder"]["levels"][2]["name"], "Gold");
    assert_eq!(cortex["ladder"]["levels"][2]["rank"], 3);
    let rules = cortex["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), card.rules.len());
    assert!(
        rules
            .iter()
            .any(|r| r["expression"] == "description != null")
    );
    assert!(
        rules
            .iter()
            .any(|r| r["expression"] == "ownership.teams().length > 0")
    );
}
