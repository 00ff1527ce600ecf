//! The catalog function over HTTP, in-process, on a fresh embedded store per test.

use paved_tests::{
    ADMIN_GROUP, DEFAULT_TEMPLATES, admin, component, generated_catalog, group, spawn_app,
    spawn_app_with, token,
};
use serde_json::{Value, json};

fn names(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn assert_problem(status: u16, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], expected_status);
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn entities_are_served_by_name_and_uid_with_relations_both_ways() {
    let app = spawn_app().await;
    let t = admin();
    let (s, _) = app.import(&t, "\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: Payments}
spec: {type: service, lifecycle: production, owner: team-a, providesApis: [payments-api], dependsOn: ['resource:payments-db'], system: billing}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-a}
spec: {type: team, children: [], members: [alice]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: alice}
spec: {memberOf: [team-a]}
").await;
    assert_eq!(s, 200);

    // by-name is case-insensitive and carries the etag.
    let r = app
        .get(
            "/api/catalog/entities/by-name/component/default/payments",
            &t,
        )
        .await;
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
    let entity: Value = r.json().await.expect("json");
    assert_eq!(
        etag,
        format!("\"{}\"", entity["metadata"]["etag"].as_str().expect("etag"))
    );
    let rels: Vec<(String, String)> = entity["relations"]
        .as_array()
        .expect("relations")
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap_or("").into(),
                r["targetRef"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    for expected in [
        ("ownedBy", "group:default/team-a"),
        ("providesApi", "api:default/payments-api"),
        ("dependsOn", "resource:default/payments-db"),
        ("partOf", "system:default/billing"),
    ] {
        assert!(
            rels.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} in {rels:?}"
        );
    }
    let (_, team) = app
        .get_json("/api/catalog/entities/by-name/group/default/team-a", &t)
        .await;
    let team_rels = team["relations"].to_string();
    assert!(
        team_rels.contains("ownerOf") && team_rels.contains("component:default/Payments"),
        "{team_rels}"
    );
    assert!(team_rels.contains("hasMember") && team_rels.contains("user:default/alice"));
    let (_, alice) = app
        .get_json("/api/catalog/entities/by-name/user/default/alice", &t)
        .await;
    assert!(alice["relations"].to_string().contains("memberOf"));

    let uid = entity["metadata"]["uid"].as_str().expect("uid");
    let (s, by_uid) = app
        .get_json(&format!("/api/catalog/entities/by-uid/{uid}"), &t)
        .await;
    assert_eq!((s, &by_uid["metadata"]["name"]), (200, &json!("Payments")));

    let (s, body) = app
        .get_json("/api/catalog/entities/by-name/component/default/nope", &t)
        .await;
    assert_problem(s, &body, 404, "not_found");
}

#[tokio::test]
async fn by_query_filters_orders_projects_and_pages_with_cursors() {
    let app = spawn_app().await;
    let t = admin();
    let (s, _) = app.import(&t, generated_catalog(45, 3)).await;
    assert_eq!(s, 200);

    // OR across filter parameters, AND inside one.
    let (s, body) = app
        .get_json("/api/catalog/entities/by-query?filter=kind=component,spec.owner=team-0001&filter=kind=group,metadata.name=team-0002&limit=100", &t)
        .await;
    assert_eq!(s, 200);
    assert_eq!(body["totalItems"], 16);
    assert!(names(&body).contains(&"team-0002".to_owned()));

    // Paging forward with the cursor alone, then back.
    let first = "/api/catalog/entities/by-query?filter=kind=component&orderField=metadata.name,desc&limit=20&fields=metadata.name,kind";
    let (_, p1) = app.get_json(first, &t).await;
    assert_eq!(p1["totalItems"], 45);
    assert_eq!(names(&p1)[0], "svc-00044");
    assert_eq!(
        p1["items"][0],
        json!({"kind": "Component", "metadata": {"name": "svc-00044"}}),
        "fields projects"
    );
    assert!(p1["pageInfo"].get("prevCursor").is_none());
    let next = p1["pageInfo"]["nextCursor"].as_str().expect("next");
    let (_, p2) = app
        .get_json(
            &format!("/api/catalog/entities/by-query?cursor={next}&limit=20"),
            &t,
        )
        .await;
    assert_eq!(names(&p2)[0], "svc-00024");
    let next = p2["pageInfo"]["nextCursor"].as_str().expect("next");
    let (_, p3) = app
        .get_json(
            &format!("/api/catalog/entities/by-query?cursor={next}&limit=20"),
            &t,
        )
        .await;
    assert_eq!(
        names(&p3),
        [
            "svc-00004",
            "svc-00003",
            "svc-00002",
            "svc-00001",
            "svc-00000"
        ]
    );
    assert!(p3["pageInfo"].get("nextCursor").is_none());
    let prev = p3["pageInfo"]["prevCursor"].as_str().expect("prev");
    let (_, back) = app
        .get_json(
            &format!("/api/catalog/entities/by-query?cursor={prev}&limit=20"),
            &t,
        )
        .await;
    assert_eq!(names(&back), names(&p2));

    // Full text: a case-insensitive substring of the named fields.
    let (_, ft) = app
        .get_json("/api/catalog/entities/by-query?fullTextFilterTerm=SVC-0004&fullTextFilterFields=metadata.name&limit=20", &t)
        .await;
    assert_eq!(ft["totalItems"], 5);
    let (_, ft) = app
        .get_json(
            "/api/catalog/entities/by-query?fullTextFilterTerm=team%200002",
            &t,
        )
        .await;
    assert_eq!(
        names(&ft),
        ["team-0002"],
        "the default fields include the title"
    );

    // Existence filters and relations.
    let (_, rel) = app
        .get_json("/api/catalog/entities/by-query?filter=relations.ownedby=group:default/team-0000&limit=100", &t)
        .await;
    assert_eq!(rel["totalItems"], 15);
    let (_, exists) = app.get_json("/api/catalog/entities/by-query?filter=metadata.annotations.github.com/project-slug&limit=0", &t).await;
    assert_eq!(
        (
            exists["totalItems"].clone(),
            exists["items"].as_array().map(Vec::len)
        ),
        (json!(45), Some(0))
    );
}

#[tokio::test]
async fn facets_by_refs_and_the_legacy_list() {
    let app = spawn_app().await;
    let t = admin();
    app.import(&t, generated_catalog(10, 2)).await;

    let (s, f) = app
        .get_json(
            "/api/catalog/entity-facets?facet=spec.owner&facet=kind&filter=kind=component",
            &t,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        f["facets"]["spec.owner"],
        json!([{"value": "team-0000", "count": 5}, {"value": "team-0001", "count": 5}])
    );
    assert_eq!(
        f["facets"]["kind"],
        json!([{"value": "Component", "count": 10}])
    );

    let r = app
        .post_json(
            "/api/catalog/entities/by-refs?filter=spec.owner=team-0000",
            &t,
            &json!({"entityRefs": ["component:default/svc-00000", "component:default/missing", "component:default/svc-00001", "component:svc-00002"], "fields": ["metadata.name"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["items"],
        json!([{"metadata": {"name": "svc-00000"}}, null, null, {"metadata": {"name": "svc-00002"}}]),
        "in order, null when missing or filtered out"
    );

    let r = app
        .get(
            "/api/catalog/entities?filter=kind=group&order=desc:metadata.name&fields=metadata.name",
            &t,
        )
        .await;
    let list: Value = r.json().await.expect("json");
    assert_eq!(
        list,
        json!([{"metadata": {"name": "team-0001"}}, {"metadata": {"name": "team-0000"}}])
    );
}

#[tokio::test]
async fn by_refs_answers_are_bounded_in_refs_and_bytes() {
    let app = spawn_app().await;
    let t = admin();
    let mut big = component("big", "team-a");
    big["metadata"]["description"] = json!("x".repeat(900 * 1024));
    let r = app.post_json("/v1/entities", &t, &big).await;
    assert!(r.status().is_success(), "{:?}", r.text().await);

    // A few copies are fine.
    let r = app
        .post_json(
            "/api/catalog/entities/by-refs",
            &t,
            &json!({"entityRefs": vec!["component:default/big"; 4]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(4));

    // The same large entity asked for many times is refused before it is copied.
    let r = app
        .post_json(
            "/api/catalog/entities/by-refs",
            &t,
            &json!({"entityRefs": vec!["component:default/big"; 40]}),
        )
        .await;
    let status = r.status().as_u16();
    assert_problem(
        status,
        &r.json().await.expect("json"),
        422,
        "answer_too_large",
    );

    // And no call names more than a thousand refs.
    let refs: Vec<String> = (0..1001)
        .map(|i| format!("component:default/c{i}"))
        .collect();
    let r = app
        .post_json(
            "/api/catalog/entities/by-refs",
            &t,
            &json!({"entityRefs": refs}),
        )
        .await;
    let status = r.status().as_u16();
    assert_problem(status, &r.json().await.expect("json"), 400, "too_many_refs");
}

#[tokio::test]
async fn upserts_honour_if_match_and_report_what_changed() {
    let app = spawn_app().await;
    let alice = token("alice", &["team-a"]);
    let r = app
        .post_json("/v1/entities", &alice, &component("svc", "team-a"))
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.expect("json");
    let etag = created["metadata"]["etag"]
        .as_str()
        .expect("etag")
        .to_owned();
    assert_eq!(created["metadata"]["generation"], 1);

    // The same body again changes nothing, not even the etag.
    let r = app
        .post_json("/v1/entities", &alice, &component("svc", "team-a"))
        .await;
    assert_eq!(r.status(), 200);
    let same: Value = r.json().await.expect("json");
    assert_eq!(same["metadata"]["etag"], etag.as_str());

    // A change with the current etag wins and bumps the generation.
    let mut changed = component("svc", "team-a");
    changed["spec"]["lifecycle"] = json!("deprecated");
    let r = app
        .http
        .post(app.url("/v1/entities"))
        .bearer_auth(&alice)
        .header("if-match", format!("\"{etag}\""))
        .json(&changed)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let updated: Value = r.json().await.expect("json");
    assert_ne!(updated["metadata"]["etag"], etag.as_str());
    assert_eq!(updated["metadata"]["generation"], 2);
    assert_eq!(
        updated["metadata"]["uid"], created["metadata"]["uid"],
        "the uid is stable"
    );

    // A stale etag, or an etag for an entity that does not exist, is refused.
    changed["spec"]["lifecycle"] = json!("production");
    let r = app
        .http
        .post(app.url("/v1/entities"))
        .bearer_auth(&alice)
        .header("if-match", &etag)
        .json(&changed)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    assert_problem(
        status,
        &r.json().await.expect("json"),
        412,
        "precondition_failed",
    );
    let r = app
        .http
        .post(app.url("/v1/entities"))
        .bearer_auth(&alice)
        .header("if-match", &etag)
        .json(&component("other", "team-a"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 412);

    // YAML bodies work too.
    let r = app
        .http
        .post(app.url("/v1/entities"))
        .bearer_auth(&alice)
        .header("content-type", "application/yaml")
        .body("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: from-yaml}\nspec: {type: service, lifecycle: x, owner: team-a}\n")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn two_writers_with_the_same_etag_exactly_one_wins() {
    let app = spawn_app().await;
    let alice = token("alice", &["team-a"]);
    let r = app
        .post_json("/v1/entities", &alice, &component("contended", "team-a"))
        .await;
    let etag = r.json::<Value>().await.expect("json")["metadata"]["etag"]
        .as_str()
        .expect("etag")
        .to_owned();

    let writers = (0..8).map(|i| {
        let (http, url, alice, etag) = (
            app.http.clone(),
            app.url("/v1/entities"),
            alice.clone(),
            etag.clone(),
        );
        let mut body = component("contended", "team-a");
        body["metadata"]["description"] = json!(format!("writer {i}"));
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(alice)
                .header("if-match", etag)
                .json(&body)
                .send()
                .await
                .expect("send")
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for w in writers {
        statuses.push(w.await.expect("join"));
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412, 412, 412, 412, 412, 412, 412]);
}

#[tokio::test]
async fn imports_are_all_or_nothing_with_a_report_per_document() {
    let app = spawn_app().await;
    let t = admin();
    let (s, body) = app
        .import(
            &t,
            "\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: good}
spec: {type: service, lifecycle: production, owner: team-a}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: 'bad name!'}
spec: {type: service, lifecycle: production}
---
apiVersion: backstage.io/v1alpha1
kind: Widget
metadata: {name: w}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: GOOD}
spec: {type: service, lifecycle: production, owner: team-a}
",
        )
        .await;
    assert_problem(s, &body, 422, "import_rejected");
    let docs = body["documents"].as_array().expect("documents");
    let summary: Vec<(u64, &str)> = docs
        .iter()
        .map(|d| {
            (
                d["document"].as_u64().unwrap_or(99),
                d["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "invalid_entity"),
            (2, "unknown_kind"),
            (3, "duplicate_entity")
        ]
    );
    let fields: Vec<&str> = docs[0]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["metadata.name", "spec.owner"]);
    assert_eq!(
        app.catalog.read().len(),
        DEFAULT_TEMPLATES,
        "nothing was written"
    );
    let (s, _) = app
        .get_json("/api/catalog/entities/by-name/component/default/good", &t)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_duplicate_import_is_idempotent() {
    let app = spawn_app().await;
    let t = admin();
    let catalog = generated_catalog(30, 3);
    let (s, first) = app.import(&t, catalog.clone()).await;
    assert_eq!((s, first["created"].clone()), (200, json!(33)));
    let (_, before) = app
        .get_json(
            "/api/catalog/entities/by-name/component/default/svc-00007",
            &t,
        )
        .await;
    let (s, again) = app.import(&t, catalog).await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            again["created"].clone(),
            again["updated"].clone(),
            again["unchanged"].clone()
        ),
        (json!(0), json!(0), json!(33))
    );
    let (_, after) = app
        .get_json(
            "/api/catalog/entities/by-name/component/default/svc-00007",
            &t,
        )
        .await;
    assert_eq!(before["metadata"]["etag"], after["metadata"]["etag"]);
    assert_eq!(app.catalog.read().len(), 33 + DEFAULT_TEMPLATES);
}

#[tokio::test]
async fn bad_input_gets_a_4xx_problem_with_a_stable_code() {
    let app = spawn_app_with(catalog_api::Limits {
        entity_body: 2048,
        import_body: 4096,
    })
    .await;
    let t = admin();
    let post = |body: &'static str, ct: &'static str| {
        let (http, url, t) = (app.http.clone(), app.url("/v1/entities"), t.clone());
        async move {
            let r = http
                .post(url)
                .bearer_auth(t)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .expect("send");
            let status = r.status().as_u16();
            assert_eq!(r.headers()["content-type"], "application/problem+json");
            (status, r.json::<Value>().await.expect("problem json"))
        }
    };
    let (s, b) = post("{\"kind\": ", "application/json").await;
    assert_problem(s, &b, 400, "malformed_json");
    let (s, b) = post("kind: [unclosed", "application/yaml").await;
    assert_problem(s, &b, 400, "malformed_yaml");
    let (s, b) = post(
        r#"{"apiVersion":"backstage.io/v1alpha1","kind":"Widget","metadata":{"name":"x"}}"#,
        "application/json",
    )
    .await;
    assert_problem(s, &b, 422, "unknown_kind");
    let (s, b) = post(r#"{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"-x-"},"spec":{"type":"s","lifecycle":"l","owner":"team-a"}}"#, "application/json").await;
    assert_problem(s, &b, 422, "invalid_entity");
    assert_eq!(b["errors"][0]["field"], "metadata.name");
    let (s, b) = post(r#"{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"x"},"spec":{"type":"s","lifecycle":"l","owner":"group:a/b/c"}}"#, "application/json").await;
    assert_problem(s, &b, 422, "invalid_entity");
    assert_eq!(b["errors"][0]["field"], "spec.owner");
    let (s, b) = post(r#"{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"x"},"spec":{"type":"s","owner":"team-a"}}"#, "application/json").await;
    assert_problem(s, &b, 422, "invalid_entity");
    assert_eq!(b["errors"][0]["field"], "spec.lifecycle");

    // Over the size limits.
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(4096));
    let r = app
        .http
        .post(app.url("/v1/entities"))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    assert_problem(
        status,
        &r.json().await.expect("json"),
        413,
        "payload_too_large",
    );
    let (s, b) = app.import(&t, generated_catalog(20, 1)).await;
    assert_problem(s, &b, 413, "payload_too_large");

    // Query mistakes.
    for (path, code) in [
        (
            "/api/catalog/entities/by-query?filtr=kind=component",
            "unknown_query_parameter",
        ),
        (
            "/api/catalog/entities/by-query?cursor=bogus",
            "invalid_cursor",
        ),
        (
            "/api/catalog/entities/by-query?orderField=metadata.name,sideways",
            "invalid_order",
        ),
        ("/api/catalog/entities/by-query?limit=lots", "invalid_query"),
        ("/api/catalog/entities/by-query?filter==x", "invalid_filter"),
        ("/api/catalog/entity-facets", "invalid_query"),
    ] {
        let (s, b) = app.get_json(path, &t).await;
        assert_problem(s, &b, 400, code);
    }
    let r = app
        .http
        .post(app.url("/api/catalog/entities/by-refs"))
        .bearer_auth(&t)
        .json(&json!({"entityRefs": ["no-kind"]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let r = app
        .http
        .post(app.url("/api/catalog/entities/by-refs"))
        .bearer_auth(&t)
        .body("[")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn callers_need_a_token_and_ownership_to_write() {
    let app = spawn_app().await;
    let (alice, bob) = (token("alice", &["team-a"]), token("bob", &["team-b"]));

    let r = app
        .http
        .get(app.url("/api/catalog/entities/by-query"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let forged = paved_http::mint_token(
        b"another-secret-another-secret-123",
        "root",
        &[ADMIN_GROUP.to_owned()],
        60,
    )
    .expect("mint");
    let r = app
        .post_json("/v1/entities", &forged, &component("x", "team-a"))
        .await;
    assert_eq!(r.status(), 401);

    // Any authenticated user reads; only owners write.
    assert_eq!(
        app.post_json("/v1/entities", &alice, &component("svc", "team-a"))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.get("/api/catalog/entities/by-name/component/default/svc", &bob)
            .await
            .status(),
        200
    );
    let r = app
        .post_json("/v1/entities", &bob, &component("svc", "team-b"))
        .await;
    let status = r.status().as_u16();
    assert_problem(status, &r.json().await.expect("json"), 403, "forbidden");
    assert_eq!(
        app.post_json("/v1/entities", &bob, &component("bobs", "team-a"))
            .await
            .status(),
        403,
        "not for another team"
    );
    assert_eq!(
        app.post_json("/v1/entities", &alice, &group("team-a"))
            .await
            .status(),
        403,
        "groups are admin-only"
    );
    assert_eq!(
        app.post_json("/v1/entities", &admin(), &group("team-a"))
            .await
            .status(),
        201
    );
    let (s, b) = app
        .import(&bob, serde_yaml_doc(&component("svc2", "team-a")))
        .await;
    assert_problem(s, &b, 403, "import_rejected");

    // Deleting needs ownership too.
    let (_, svc) = app
        .get_json("/api/catalog/entities/by-name/component/default/svc", &bob)
        .await;
    let uid = svc["metadata"]["uid"].as_str().expect("uid");
    let path = format!("/api/catalog/entities/by-uid/{uid}");
    assert_eq!(
        app.http
            .delete(app.url(&path))
            .bearer_auth(&bob)
            .send()
            .await
            .expect("send")
            .status(),
        403
    );
    assert_eq!(
        app.http
            .delete(app.url(&path))
            .bearer_auth(&alice)
            .send()
            .await
            .expect("send")
            .status(),
        204
    );
    assert_eq!(app.get(&path, &alice).await.status(), 404);
    assert_eq!(
        app.http
            .delete(app.url(&path))
            .bearer_auth(&alice)
            .send()
            .await
            .expect("send")
            .status(),
        404
    );
    let (_, team) = app
        .get_json("/api/catalog/entities/by-name/group/default/team-a", &alice)
        .await;
    assert_eq!(
        team["relations"],
        json!([]),
        "the deleted entity's relations are gone"
    );
}

fn serde_yaml_doc(v: &Value) -> String {
    // JSON is valid YAML.
    v.to_string()
}

#[tokio::test]
async fn the_openapi_document_lists_the_catalog() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.expect("json");
    for path in [
        "/api/catalog/entities/by-query",
        "/api/catalog/entity-facets",
        "/v1/entities",
        "/v1/entities/import",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} in the OpenAPI document"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn restarting_reloads_the_catalog_from_the_store() {
    let app = spawn_app().await;
    let t = admin();
    app.import(&t, generated_catalog(12, 2)).await;
    let store = paved_sqlite::SqliteStore::open(&app.dir.path().join("paved.db")).expect("open");
    let reloaded = paved_core::catalog::CatalogRepository::load(std::sync::Arc::new(store))
        .await
        .expect("load");
    assert_eq!(reloaded.read().len(), 14 + DEFAULT_TEMPLATES);
    let index = reloaded.read();
    let view = index.get_by_key("group:default/team-0001").expect("group");
    assert!(
        String::from_utf8_lossy(&view.json).contains("ownerOf"),
        "relations are rebuilt on load"
    );
}

#[tokio::test]
async fn golden_paths_are_listed_and_owned_by_the_platform_team() {
    let app = spawn_app().await;
    let alice = token("alice", &["team-a"]);
    let (s, body) = app.get_json("/v1/templates", &alice).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "dynamodb-table",
            "postgres-database",
            "service",
            "sqs-queue"
        ]
    );
    assert_eq!(
        body["items"][1]["spec"]["parameters"][0]["properties"]["storage_gb"]["type"],
        "integer"
    );

    // Teams may not change them, not even the team that owns them: a Template says what the
    // platform does, with the platform's rights, so only platform admins write one.
    let mut pg = body["items"][1].clone();
    pg["metadata"]["description"] = json!("hijacked");
    assert_eq!(
        app.post_json("/v1/entities", &alice, &pg).await.status(),
        403
    );
    let platform = token("carol", &["platform-team"]);
    assert_eq!(
        app.post_json("/v1/entities", &platform, &pg).await.status(),
        403
    );
    let mut own = pg.clone();
    own["metadata"]["name"] = json!("team-a-database");
    own["spec"]["owner"] = json!("team-a");
    let r = app.post_json("/v1/entities", &alice, &own).await;
    assert_eq!(r.status(), 403, "a team's own template");
    let problem: Value = r.json().await.expect("json");
    assert_eq!(problem["code"], "forbidden");
    assert_eq!(
        app.post_json("/v1/entities", &admin(), &pg).await.status(),
        200
    );

    // A template with a broken parameter schema is refused with the field named.
    pg["spec"]["parameters"] = json!([{"type": "object", "properties": {"x": {"type": 5}}}]);
    let r = app.post_json("/v1/entities", &admin(), &pg).await;
    assert_eq!(r.status(), 422);
    let problem: Value = r.json().await.expect("json");
    assert_eq!(problem["errors"][0]["field"], "spec.parameters[0]");
}

#[tokio::test]
async fn cold_starts_racing_to_install_the_golden_paths_both_succeed() {
    use std::sync::Arc;

    use paved_core::catalog::CatalogRepository;
    use paved_sqlite::SqliteStore;

    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("paved.db")).expect("open"));
    // Two containers load the empty catalog before either installs the golden paths.
    let first = CatalogRepository::load(Arc::clone(&store) as _)
        .await
        .expect("load");
    let second = CatalogRepository::load(Arc::clone(&store) as _)
        .await
        .expect("load");
    catalog_api::install_default_templates(&first)
        .await
        .expect("the first installs them");
    // The second's writes lose the race (created-only-if-absent): it must not fail its init.
    catalog_api::install_default_templates(&second)
        .await
        .expect("the second finds them installed");
    for repo in [&first, &second] {
        let index = repo.read();
        for name in [
            "service",
            "postgres-database",
            "sqs-queue",
            "dynamodb-table",
        ] {
            assert!(
                index
                    .get_by_key(&format!("template:default/{name}"))
                    .is_some(),
                "{name}"
            );
        }
    }
    // Both at once, on a fresh store, too.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("paved.db")).expect("open"));
    let (a, b) = (
        CatalogRepository::load(Arc::clone(&store) as _)
            .await
            .expect("load"),
        CatalogRepository::load(Arc::clone(&store) as _)
            .await
            .expect("load"),
    );
    let (ra, rb) = tokio::join!(
        catalog_api::install_default_templates(&a),
        catalog_api::install_default_templates(&b)
    );
    ra.expect("a");
    rb.expect("b");
}

#[tokio::test]
async fn a_stored_entity_that_does_not_decode_is_left_out_not_fatal() {
    use std::sync::Arc;

    use paved_core::catalog::{CatalogRepository, ENTITY_PARTITION};
    use paved_core::ports::{Condition, Item, Key, Table};
    use paved_sqlite::SqliteStore;

    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("paved.db")).expect("open"));
    let good = CatalogRepository::load(Arc::clone(&store) as _)
        .await
        .expect("load");
    good.upsert(
        component("good", "team-a"),
        None,
        &paved_core::catalog::PlatformWriter,
    )
    .await
    .expect("write");
    for (sk, entity) in [
        ("component:default/not-json", json!("{not json")),
        (
            "component:default/no-kind",
            json!(r#"{"metadata":{"name":"x"}}"#),
        ),
    ] {
        let mut attrs = serde_json::Map::new();
        attrs.insert("entity".into(), entity);
        store
            .put(
                Item::new(Key::new(ENTITY_PARTITION, sk), attrs),
                Condition::Always,
            )
            .await
            .expect("put");
    }
    // A restart serves what still reads back, and leaves the corrupt items alone in the table.
    let reloaded = CatalogRepository::load(Arc::clone(&store) as _)
        .await
        .expect("a corrupt item does not take the catalog down");
    assert_eq!(reloaded.read().len(), 1);
    assert!(
        reloaded
            .read()
            .get_by_key("component:default/good")
            .is_some()
    );
}
