//! paved's OpenAPI document: every public route of every function, generated from the
//! handlers' annotations and served by the catalog function from
//! `functions/catalog-api/openapi.json`. `PAVED_UPDATE_OPENAPI=1 cargo test -p paved-tests
//! --test openapi` rewrites the file.

use std::collections::BTreeSet;

use serde_yaml::Value as Yaml;

/// The whole document: the catalog's (with the info and security schemes), then each
/// function's operations.
fn generated() -> utoipa::openapi::OpenApi {
    let mut doc = catalog_api::openapi::openapi();
    for part in [
        requests_api::openapi::openapi(),
        metrics_api::openapi(),
        events_ingest::openapi(),
        chatops::openapi(),
    ] {
        doc.merge(part);
    }
    doc
}

const SERVED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../functions/catalog-api/openapi.json"
);

#[test]
fn the_served_document_is_the_generated_one() {
    let generated = generated();
    if std::env::var_os("PAVED_UPDATE_OPENAPI").is_some() {
        // In the document's own order (`openapi`, `info`, `paths`...), not sorted.
        let text = serde_json::to_string_pretty(&generated).expect("serializes");
        std::fs::write(SERVED, text + "\n").expect("write openapi.json");
        return;
    }
    let served: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SERVED).expect("read")).expect("JSON");
    assert!(
        served == serde_json::to_value(&generated).expect("serializes"),
        "{SERVED} is stale: run `PAVED_UPDATE_OPENAPI=1 cargo test -p paved-tests --test openapi`"
    );
}

/// `(METHOD, path)` of every route API Gateway sends to a function, from the template.
fn gateway_routes() -> BTreeSet<(String, String)> {
    let doc: Yaml = serde_yaml::from_str(paved_aws::stack::TEMPLATE).expect("the template");
    let mut routes = BTreeSet::new();
    for (_, resource) in doc["Resources"].as_mapping().expect("resources") {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, event) in events {
            if event["Type"].as_str() == Some("HttpApi") {
                let p = &event["Properties"];
                routes.insert((
                    p["Method"].as_str().expect("method").to_ascii_uppercase(),
                    p["Path"].as_str().expect("path").to_owned(),
                ));
            }
        }
    }
    routes
}

/// Whether a gateway route (`{x}` one segment, `{proxy+}` any rest) serves a documented path.
fn serves(route: &str, path: &str) -> bool {
    let mut route = route.split('/');
    let mut path = path.split('/');
    loop {
        match (route.next(), path.next()) {
            (None, None) => return true,
            (Some(r), Some(_)) if r.ends_with("+}") => return true,
            (Some(r), Some(p)) if r == p || (r.starts_with('{') && r.ends_with('}')) => {
                let _ = p;
            }
            _ => return false,
        }
    }
}

#[test]
fn every_gateway_route_is_documented_and_every_documented_operation_is_routed() {
    let doc = serde_json::to_value(generated()).expect("serializes");
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        for method in item.as_object().expect("operations").keys() {
            operations.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let routes = gateway_routes();
    for (method, path) in &operations {
        assert!(
            routes
                .iter()
                .any(|(m, r)| (m == method || m == "ANY") && serves(r, path)),
            "{method} {path} is documented but no gateway route serves it"
        );
    }
    for (method, route) in &routes {
        assert!(
            operations
                .iter()
                .any(|(m, p)| (m == method || method == "ANY") && serves(route, p)),
            "{method} {route} is routed but not documented"
        );
    }
    // Every operation says who may call it: a bearer token, or the sender's own signature.
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("operations") {
            let signed = path.starts_with("/v1/events/") && !path.ends_with("/cdevents")
                || path.starts_with("/v1/chatops/");
            let public = path == "/openapi.json";
            assert!(
                signed || public || op.get("security").is_some(),
                "{method} {path} names no security"
            );
        }
    }
}
