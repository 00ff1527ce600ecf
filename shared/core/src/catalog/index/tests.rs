//! The read model end to end: relations on both ends, filters, pages, full text and facets.

use serde_json::{Value, json};

use super::{CatalogIndex, FacetCount, StoredEntity};
use crate::catalog::names::EntityRef;
use crate::catalog::query::{
    EntityQuery, FilterSet, FullTextFilter, OrderField, PageRequest, QueryPage, decode_cursor,
};
use crate::catalog::validate_entity;

fn stored(value: Value) -> StoredEntity {
    let valid = validate_entity(value).expect("valid");
    let name = valid.entity_ref.name().to_owned();
    StoredEntity {
        valid,
        uid: format!("uid-{name}"),
        etag: "e1".into(),
        generation: 1,
    }
}

fn component(name: &str, owner: &str, extra: Value) -> StoredEntity {
    let mut spec = json!({"type": "service", "lifecycle": "production", "owner": owner});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    stored(
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": name, "description": format!("The {name} service")}, "spec": spec}),
    )
}

fn group(name: &str) -> StoredEntity {
    stored(
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
        "metadata": {"name": name}, "spec": {"type": "team", "children": []}}),
    )
}

fn rendered(index: &CatalogIndex, key: &str) -> Value {
    serde_json::from_slice(&index.get_by_key(key).expect("present").json).expect("json")
}

fn relations(index: &CatalogIndex, key: &str) -> Vec<String> {
    rendered(index, key)["relations"]
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            format!(
                "{}>{}",
                r["type"].as_str().unwrap_or(""),
                r["targetRef"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn names(index: &CatalogIndex, page: &QueryPage) -> Vec<String> {
    page.ids
        .iter()
        .map(|&id| index.view(id).expect("slot").entity_ref.name().to_owned())
        .collect()
}

#[test]
fn relations_appear_on_both_ends_and_follow_changes() {
    let mut index = CatalogIndex::default();
    index.apply(
        vec![
            component("svc", "Team-A", json!({"dependsOn": ["component:db"]})),
            group("team-a"),
        ],
        &[],
    );
    assert_eq!(
        relations(&index, "component:default/svc"),
        [
            "ownedBy>group:default/Team-A",
            "dependsOn>component:default/db"
        ]
    );
    assert_eq!(
        relations(&index, "group:default/team-a"),
        ["ownerOf>component:default/svc"]
    );

    // The target of a relation may arrive later and still sees it.
    index.apply(vec![component("db", "team-a", json!({}))], &[]);
    assert_eq!(
        relations(&index, "component:default/db"),
        [
            "ownedBy>group:default/team-a",
            "dependencyOf>component:default/svc"
        ]
    );

    // Moving ownership moves the inverse relation.
    index.apply(
        vec![component("svc", "team-b", json!({})), group("team-b")],
        &[],
    );
    assert_eq!(
        relations(&index, "group:default/team-a"),
        ["ownerOf>component:default/db"]
    );
    assert_eq!(
        relations(&index, "group:default/team-b"),
        ["ownerOf>component:default/svc"]
    );
    assert_eq!(
        relations(&index, "component:default/db"),
        ["ownedBy>group:default/team-a"]
    );

    // Removing an entity removes what it declared.
    index.apply(vec![], &[EntityRef::new("component", "default", "svc")]);
    assert_eq!(
        relations(&index, "group:default/team-b"),
        Vec::<String>::new()
    );
    assert!(index.get_by_uid("uid-svc").is_none());
    assert_eq!(index.len(), 3);
}

#[test]
fn filters_or_across_and_within() {
    let mut index = CatalogIndex::default();
    index.apply(
        vec![
            component("a", "team-a", json!({})),
            component("b", "team-b", json!({})),
            group("team-a"),
        ],
        &[],
    );
    let q = |f: &[&str]| {
        let query = EntityQuery {
            filter: FilterSet::parse(f).expect("valid"),
            ..Default::default()
        };
        names(&index, &index.query(&query, &PageRequest::first(100)))
    };
    assert_eq!(q(&["kind=component,spec.owner=TEAM-A"]), ["a"]);
    assert_eq!(q(&["spec.owner=team-a", "spec.owner=team-b"]), ["a", "b"]);
    assert_eq!(
        q(&["kind=group", "relations.ownedby=group:default/team-b"]),
        ["b", "team-a"],
        "default order is by ref"
    );
    assert_eq!(
        q(&["spec.children"]),
        Vec::<String>::new(),
        "an empty list has no value"
    );
    assert_eq!(q(&["spec.lifecycle"]), ["a", "b"]);
    assert_eq!(q(&["kind=nothing"]), Vec::<String>::new());
}

#[test]
fn pages_walk_forward_and_back_with_cursors() {
    let mut index = CatalogIndex::default();
    index.apply(
        (0..7)
            .map(|i| component(&format!("svc-{i}"), "t", json!({})))
            .collect(),
        &[],
    );
    let query = EntityQuery {
        order: vec![OrderField::parse("metadata.name,desc").expect("ok")],
        ..Default::default()
    };
    let p1 = index.query(&query, &PageRequest::first(3));
    assert_eq!(
        (names(&index, &p1), p1.total),
        (vec!["svc-6".to_owned(), "svc-5".into(), "svc-4".into()], 7)
    );
    assert!(p1.prev_cursor.is_none());
    let (q2, a2) = decode_cursor(p1.next_cursor.as_deref().expect("next")).expect("valid");
    let p2 = index.query(
        &q2,
        &PageRequest {
            limit: 3,
            offset: 0,
            anchor: Some(a2),
        },
    );
    assert_eq!(names(&index, &p2), ["svc-3", "svc-2", "svc-1"]);
    let (q3, a3) = decode_cursor(p2.next_cursor.as_deref().expect("next")).expect("valid");
    let p3 = index.query(
        &q3,
        &PageRequest {
            limit: 3,
            offset: 0,
            anchor: Some(a3),
        },
    );
    assert_eq!(names(&index, &p3), ["svc-0"]);
    assert!(p3.next_cursor.is_none());
    let (qb, ab) = decode_cursor(p3.prev_cursor.as_deref().expect("prev")).expect("valid");
    let back = index.query(
        &qb,
        &PageRequest {
            limit: 3,
            offset: 0,
            anchor: Some(ab),
        },
    );
    assert_eq!(names(&index, &back), ["svc-3", "svc-2", "svc-1"]);
    let offset = index.query(
        &query,
        &PageRequest {
            limit: 2,
            offset: 5,
            anchor: None,
        },
    );
    assert_eq!(names(&index, &offset), ["svc-1", "svc-0"]);
    assert!(offset.prev_cursor.is_some() && offset.next_cursor.is_none());
}

#[test]
fn full_text_and_facets() {
    let mut index = CatalogIndex::default();
    index.apply(
        vec![
            component("payments", "Team-A", json!({})),
            component("ledger", "Team-A", json!({})),
            component("search", "team-b", json!({})),
        ],
        &[],
    );
    let query = EntityQuery {
        full_text: FullTextFilter::new("PAY", None).expect("ok"),
        ..Default::default()
    };
    assert_eq!(
        names(&index, &index.query(&query, &PageRequest::first(20))),
        ["payments"]
    );
    let query = EntityQuery {
        full_text: FullTextFilter::new("service", Some("metadata.description")).expect("ok"),
        ..Default::default()
    };
    assert_eq!(index.query(&query, &PageRequest::first(20)).total, 3);

    let facets = index.facets(&["spec.owner".into()], &FilterSet::default());
    assert_eq!(
        facets[0].1,
        [
            FacetCount {
                value: "Team-A".into(),
                count: 2
            },
            FacetCount {
                value: "team-b".into(),
                count: 1
            }
        ]
    );
    let filtered = index.facets(
        &["spec.owner".into()],
        &FilterSet::parse(&["metadata.name=search"]).expect("ok"),
    );
    assert_eq!(
        filtered[0].1,
        [FacetCount {
            value: "team-b".into(),
            count: 1
        }]
    );
}
