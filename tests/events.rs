//! Every sample in `events/` is a real event of a real trigger: named
//! `<function>.<trigger>.<case>.json`, deserialized with `aws_lambda_events` (the types the
//! Lambda runtimes use), and matched against `infra/template.yaml`: the function exists, and an
//! API Gateway sample's route is one of that function's routes. And every trigger of every
//! function in the template has a sample.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use serde_yaml::Value;

/// The template's functions by binary name, with their triggers (`apigw` with the route key,
/// `sqs`, `schedule`).
fn template_triggers() -> BTreeMap<String, BTreeSet<(String, String)>> {
    let doc: Value = serde_yaml::from_str(paved_aws::stack::TEMPLATE).expect("the template");
    let mut out = BTreeMap::new();
    for (_, resource) in doc["Resources"].as_mapping().expect("resources") {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("every function names its binary")
            .to_owned();
        let mut triggers = BTreeSet::new();
        if let Some(events) = resource["Properties"]["Events"].as_mapping() {
            for (_, e) in events {
                let p = &e["Properties"];
                let trigger = match e["Type"].as_str().expect("event type") {
                    "HttpApi" => (
                        "apigw".to_owned(),
                        format!(
                            "{} {}",
                            p["Method"].as_str().expect("method"),
                            p["Path"].as_str().expect("path")
                        ),
                    ),
                    "SQS" => ("sqs".to_owned(), String::new()),
                    "Schedule" | "ScheduleV2" => ("schedule".to_owned(), String::new()),
                    other => panic!("{binary}: no sample kind for trigger {other}"),
                };
                triggers.insert(trigger);
            }
        }
        out.insert(binary, triggers);
    }
    out
}

#[test]
fn every_sample_is_a_real_event_of_a_trigger_in_the_template() {
    let functions = template_triggers();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut covered: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("events/") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_owned();
        let parts: Vec<&str> = name.split('.').collect();
        assert!(
            parts.len() == 4 && parts[3] == "json",
            "{name}: samples are named <function>.<trigger>.<case>.json"
        );
        let (function, trigger) = (parts[0], parts[1]);
        let routes = functions
            .get(function)
            .unwrap_or_else(|| panic!("{name}: no function {function} in the template"));
        let text = std::fs::read_to_string(&path).expect("read");
        match trigger {
            "apigw" => {
                let e: ApiGatewayV2httpRequest = serde_json::from_str(&text)
                    .unwrap_or_else(|err| panic!("{name}: not an API Gateway v2 event: {err}"));
                let route = e.route_key.clone().expect("routeKey");
                assert!(
                    routes.contains(&("apigw".into(), route.clone())),
                    "{name}: {route} is not a route of {function} in the template ({routes:?})"
                );
                assert_eq!(e.version.as_deref(), Some("2.0"), "{name}");
                covered.insert((function.into(), "apigw".into(), route));
            }
            "sqs" => {
                let e: SqsEvent = serde_json::from_str(&text)
                    .unwrap_or_else(|err| panic!("{name}: not an SQS event: {err}"));
                assert!(!e.records.is_empty(), "{name}: an empty batch");
                for r in &e.records {
                    assert_eq!(r.event_source.as_deref(), Some("aws:sqs"), "{name}");
                    assert!(
                        r.attributes.contains_key("ApproximateReceiveCount"),
                        "{name}"
                    );
                }
                covered.insert((function.into(), "sqs".into(), String::new()));
            }
            "schedule" => {
                let e: EventBridgeEvent = serde_json::from_str(&text)
                    .unwrap_or_else(|err| panic!("{name}: not an EventBridge event: {err}"));
                assert_eq!(e.detail_type, "Scheduled Event", "{name}");
                covered.insert((function.into(), "schedule".into(), String::new()));
            }
            "invoke" => {
                let _: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|err| panic!("{name}: not JSON: {err}"));
            }
            other => panic!("{name}: unknown trigger {other} (apigw, sqs, schedule, invoke)"),
        }
        files += 1;
    }
    assert!(files > 0);
    for (function, triggers) in &functions {
        for (kind, route) in triggers {
            assert!(
                covered.contains(&(function.clone(), kind.clone(), route.clone())),
                "no sample in events/ for {function}'s {kind} trigger {route}"
            );
        }
    }
}
