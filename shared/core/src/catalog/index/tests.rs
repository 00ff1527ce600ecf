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

/// A small deterministic generator, so that the randomised tests repeat.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A component with values that collide (titles, owners), are missing (no title for some),
/// come in arrays (tags: the first one sorts) and relations (dependsOn).
fn random_component(rng: &mut Rng, n: u64) -> StoredEntity {
    let mut metadata = json!({"name": format!("c-{n:05}")});
    if rng.below(5) > 0 {
        metadata["title"] = json!(format!("Title {}", rng.below(40)));
    }
    if rng.below(3) == 0 {
        metadata["tags"] = json!([format!("t{}", rng.below(6)), format!("t{}", rng.below(6))]);
    }
    let deps: Vec<String> = (0..rng.below(3))
        .map(|_| format!("component:c-{:05}", rng.below(n + 1)))
        .collect();
    let owner = format!("Team-{}", rng.below(7));
    let lifecycle = ["production", "experimental"][rng.below(2) as usize];
    stored(
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": metadata,
        "spec": {"type": "service", "lifecycle": lifecycle,
                 "owner": owner, "dependsOn": deps}}),
    )
}

fn order_by(field: &str, desc: bool) -> Vec<crate::catalog::query::OrderField> {
    vec![OrderField::parse(&format!("{field},{}", if desc { "desc" } else { "asc" })).expect("ok")]
}

/// Every id of a query, walking its pages forward with cursors, then back from the last.
fn walk_pages(index: &CatalogIndex, query: &EntityQuery, limit: usize, walk: bool) -> Vec<u32> {
    let mut forward = Vec::new();
    let mut page = index.run(query, &PageRequest::first(limit), Some(walk));
    assert!(page.prev_cursor.is_none());
    let total = page.total;
    let mut pages = vec![page.ids.clone()];
    forward.extend(&page.ids);
    while let Some(next) = page.next_cursor.clone() {
        assert!(pages.len() <= total / limit + 1, "the pages end");
        let (q, a) = decode_cursor(&next).expect("cursor");
        page = index.run(
            &q,
            &PageRequest {
                limit,
                offset: 0,
                anchor: Some(a),
            },
            Some(walk),
        );
        assert_eq!(page.total, total);
        assert!(page.prev_cursor.is_some(), "a later page has a way back");
        forward.extend(&page.ids);
        pages.push(page.ids.clone());
    }
    assert_eq!(forward.len(), total, "the pages hold every match once");
    // Back again, page by page.
    let mut back = pages.pop().expect("a page");
    while let Some(prev) = page.prev_cursor.clone() {
        assert!(!pages.is_empty(), "as many pages back as forward");
        let (q, a) = decode_cursor(&prev).expect("cursor");
        page = index.run(
            &q,
            &PageRequest {
                limit,
                offset: 0,
                anchor: Some(a),
            },
            Some(walk),
        );
        assert_eq!(page.ids, pages.pop().expect("the same page going back"));
        back = page.ids.clone();
        assert!(page.next_cursor.is_some());
    }
    assert!(pages.is_empty());
    assert_eq!(back, forward[..back.len()]);
    forward
}

/// The order a query must have, sorted the slow way from each entity's JSON.
fn expected_order(index: &CatalogIndex, query: &EntityQuery) -> Vec<u32> {
    let ids = index.filter_ids(&query.filter);
    let mut keyed: Vec<(Vec<Option<String>>, String, u32)> = ids
        .iter()
        .map(|id| {
            let view = index.view(id).expect("view");
            let json: Value = serde_json::from_slice(&view.json).expect("json");
            let values = query
                .order
                .iter()
                .map(|o| first_value(&json, &o.field))
                .collect();
            (values, view.entity_ref.key(), id)
        })
        .collect();
    keyed.sort_by(|a, b| {
        let av: Vec<Option<&str>> = a.0.iter().map(Option::as_deref).collect();
        let bv: Vec<Option<&str>> = b.0.iter().map(Option::as_deref).collect();
        super::paging::compare(&query.order, &av, &a.1, &bv, &b.1)
    });
    keyed.into_iter().map(|k| k.2).collect()
}

/// The value an entity sorts by, from its rendered JSON: the first value of the field (lower
/// case), or for `relations.<type>` the least target of that type.
fn first_value(json: &Value, field: &str) -> Option<String> {
    if let Some(rel) = field.strip_prefix("relations.") {
        return json["relations"]
            .as_array()?
            .iter()
            .filter(|r| {
                r["type"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case(rel))
            })
            .filter_map(|r| r["targetRef"].as_str())
            .map(str::to_lowercase)
            .min();
    }
    let mut node = json;
    for part in field.split('.') {
        node = node
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(part))?
            .1;
    }
    let leaf = match node {
        Value::Array(items) => items.first()?,
        other => other,
    };
    match leaf {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[test]
fn sorted_orders_and_keyset_pages_stay_right_through_upserts_and_removals() {
    let mut rng = Rng(7);
    let mut index = CatalogIndex::default();
    index.apply((0..7).map(|i| group(&format!("team-{i}"))).collect(), &[]);
    let mut next = 0;
    let fields = [
        "metadata.name",
        "metadata.title",
        "metadata.tags",
        "spec.owner",
        "relations.dependson",
        "relations.dependencyof",
        "relations.ownerof",
        "nope",
    ];
    let filters: [&[&str]; 3] = [&[], &["kind=component"], &["spec.lifecycle=production"]];
    for round in 0..4 {
        // Add some, replace some, remove some: the orders built by the last round's queries
        // are kept up to date, not rebuilt.
        let mut upserts: Vec<StoredEntity> = (0..150)
            .map(|_| {
                next += 1;
                random_component(&mut rng, next)
            })
            .collect();
        for _ in 0..40 {
            let n = rng.below(next) + 1;
            upserts.retain(|e| e.valid.entity_ref.name() != format!("c-{n:05}"));
            upserts.push(random_component(&mut rng, n));
        }
        let removals: Vec<EntityRef> = (0..25)
            .map(|_| {
                EntityRef::new(
                    "component",
                    "default",
                    &format!("c-{:05}", rng.below(next) + 1),
                )
            })
            .filter(|r| upserts.iter().all(|e| e.valid.entity_ref != *r))
            .collect();
        index.apply(upserts, &removals);
        if round == 3 {
            // A group goes and comes back: the relations toward it follow.
            index.apply(vec![], &[EntityRef::new("group", "default", "team-3")]);
        }
        for field in fields {
            for desc in [false, true] {
                for filter in filters {
                    let query = EntityQuery {
                        filter: FilterSet::parse(filter).expect("filter"),
                        order: order_by(field, desc),
                        full_text: None,
                    };
                    let want = expected_order(&index, &query);
                    for limit in [1, 7, 50] {
                        assert_eq!(
                            walk_pages(&index, &query, limit, true),
                            want,
                            "walked: {field} desc={desc} {filter:?} limit={limit} round {round}"
                        );
                    }
                    assert_eq!(
                        walk_pages(&index, &query, 9, false),
                        want,
                        "sorted: {field} desc={desc} {filter:?} round {round}"
                    );
                    // Offsets cut the same sequence.
                    for offset in [0, 3, want.len().saturating_sub(2), want.len() + 1] {
                        let page = index.run(
                            &query,
                            &PageRequest {
                                limit: 5,
                                offset,
                                anchor: None,
                            },
                            Some(true),
                        );
                        let end = (offset + 5).min(want.len());
                        assert_eq!(page.ids, want[offset.min(end)..end]);
                        assert_eq!(page.next_cursor.is_some(), end < want.len());
                    }
                }
            }
        }
        // Every order kept matches one built from scratch.
        let orders = index.orders.read();
        assert!(orders.len() >= 5);
        for field in fields {
            let Some(key) = index.terms.key_id(field) else {
                continue;
            };
            let kept = orders.order(key).expect("kept");
            let fresh = super::orders::Order::build(&index, key);
            assert!(kept.set == fresh.set, "{field} after round {round}");
            assert_eq!(kept.valued, fresh.valued);
        }
    }
}

#[test]
fn default_order_is_by_ref_for_large_and_small_matches() {
    let mut rng = Rng(11);
    let mut index = CatalogIndex::default();
    index.apply(
        (1..=300).map(|n| random_component(&mut rng, n)).collect(),
        &[],
    );
    index.apply(vec![], &[EntityRef::new("component", "default", "c-00100")]);
    let query = EntityQuery::default();
    let want = expected_order(&index, &query);
    assert_eq!(want.len(), 299);
    assert_eq!(walk_pages(&index, &query, 13, true), want);
    assert_eq!(walk_pages(&index, &query, 13, false), want);
    // A cursor whose anchor entity was removed still resumes in place.
    let anchored = |before: bool| crate::catalog::query::Anchor {
        before,
        values: vec![],
        key: "component:default/c-00100".into(),
    };
    let after = index.run(
        &query,
        &PageRequest {
            limit: 2,
            offset: 0,
            anchor: Some(anchored(false)),
        },
        Some(true),
    );
    assert_eq!(names(&index, &after), ["c-00101", "c-00102"]);
    let before = index.run(
        &query,
        &PageRequest {
            limit: 2,
            offset: 0,
            anchor: Some(anchored(true)),
        },
        Some(true),
    );
    assert_eq!(names(&index, &before), ["c-00098", "c-00099"]);
}

#[test]
fn full_text_columns_follow_writes() {
    let mut index = CatalogIndex::default();
    index.apply(
        (0..10)
            .map(|i| component(&format!("alpha-{i}"), "t", json!({})))
            .collect(),
        &[],
    );
    let search = |index: &CatalogIndex, term: &str| {
        let query = EntityQuery {
            full_text: FullTextFilter::new(term, Some("metadata.name")).expect("ok"),
            ..Default::default()
        };
        let mut found = names(index, &index.query(&query, &PageRequest::first(100)));
        found.sort();
        found
    };
    assert_eq!(search(&index, "alpha-3"), ["alpha-3"]);
    // After the column is built: new values are found, removed ones are not, even when a
    // freed term is reused by another value.
    index.apply(
        vec![component("beta-3", "t", json!({}))],
        &[EntityRef::new("component", "default", "alpha-3")],
    );
    assert_eq!(search(&index, "alpha-3"), Vec::<String>::new());
    assert_eq!(search(&index, "beta"), ["beta-3"]);
    assert_eq!(search(&index, "-3"), ["beta-3"]);
    // Many removals compact the column; what is left is still found.
    let many: Vec<StoredEntity> = (0..3000)
        .map(|i| component(&format!("gamma-{i}"), "t", json!({})))
        .collect();
    index.apply(many, &[]);
    assert_eq!(search(&index, "gamma-2999"), ["gamma-2999"]);
    let gone: Vec<EntityRef> = (0..3000)
        .filter(|i| i % 100 != 7)
        .map(|i| EntityRef::new("component", "default", &format!("gamma-{i}")))
        .collect();
    index.apply(vec![], &gone);
    let key = index.terms.key_id("metadata.name").expect("key");
    let live = super::full_text::column_values(&index.terms.columns.read()[&key]).len();
    assert!(live < 1000, "the column was compacted ({live} values)");
    assert_eq!(search(&index, "gamma-").len(), 30);
    assert_eq!(search(&index, "gamma-107"), ["gamma-107"]);
}

#[test]
fn relation_terms_and_json_follow_each_change() {
    let mut index = CatalogIndex::default();
    index.apply(vec![group("team-a"), group("team-b")], &[]);
    let owned_by = |index: &CatalogIndex, owner: &str| {
        let query = EntityQuery {
            filter: FilterSet::parse(&[format!("relations.ownerof=component:default/{owner}")])
                .expect("ok"),
            ..Default::default()
        };
        names(index, &index.query(&query, &PageRequest::first(10)))
    };
    index.apply(
        (0..3)
            .map(|i| component(&format!("s{i}"), "team-a", json!({})))
            .collect(),
        &[],
    );
    assert_eq!(owned_by(&index, "s1"), ["team-a"]);
    assert_eq!(relations(&index, "group:default/team-a").len(), 3);
    index.apply(vec![component("s1", "team-b", json!({}))], &[]);
    assert_eq!(owned_by(&index, "s1"), ["team-b"]);
    assert_eq!(
        relations(&index, "group:default/team-a"),
        [
            "ownerOf>component:default/s0",
            "ownerOf>component:default/s2"
        ]
    );
    // A self-relation shows on both ends of the one entity, and goes with it.
    index.apply(
        vec![component(
            "loop",
            "team-a",
            json!({"dependsOn": ["component:loop"]}),
        )],
        &[],
    );
    assert_eq!(
        relations(&index, "component:default/loop"),
        [
            "ownedBy>group:default/team-a",
            "dependsOn>component:default/loop",
            "dependencyOf>component:default/loop"
        ]
    );
    index.apply(vec![component("loop", "team-a", json!({}))], &[]);
    assert_eq!(
        relations(&index, "component:default/loop"),
        ["ownedBy>group:default/team-a"]
    );
    let query = EntityQuery {
        filter: FilterSet::parse(&["relations.dependencyof"]).expect("ok"),
        ..Default::default()
    };
    assert_eq!(index.query(&query, &PageRequest::first(10)).total, 0);
}

/// The read model alone at scale, without HTTP: chunked applies, then each query shape, with
/// the process's resident memory. A measurement, not a check:
/// `PAVED_SCALE_CATALOG=catalog.yaml cargo test --release -p paved-core --lib scale -- --ignored --nocapture`
/// (the HTTP benchmark is `scripts/bench-catalog-scale.sh`).
#[test]
#[ignore = "a measurement; needs PAVED_SCALE_CATALOG"]
fn scale() {
    use std::time::Instant;
    let Ok(path) = std::env::var("PAVED_SCALE_CATALOG") else {
        return;
    };
    let rss = || {
        std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |pages| pages * 4096)
    };
    let text = std::fs::read_to_string(path).expect("catalog");
    let docs: Vec<&str> = text.split("\n---\n").collect();
    let before = rss();
    let mut index = CatalogIndex::default();
    for (c, chunk) in docs.chunks(20_000).enumerate() {
        // Parsed a chunk at a time, so that what is resident at the end is the index.
        let stored: Vec<StoredEntity> = crate::catalog::parse_documents(&chunk.join("\n---\n"))
            .expect("yaml")
            .into_iter()
            .enumerate()
            .map(|(i, doc)| {
                let i = c * 20_000 + i;
                StoredEntity {
                    valid: validate_entity(doc).expect("valid"),
                    uid: format!("{i:08x}-0000-4000-8000-{i:012x}"),
                    etag: format!("{i:032x}"),
                    generation: 1,
                }
            })
            .collect();
        let started = Instant::now();
        index.apply(stored, &[]);
        println!(
            "apply 20,000 at {:>7}: {:?}",
            index.len(),
            started.elapsed()
        );
    }
    let n = index.len();
    let time = |what: &str, f: &dyn Fn()| {
        let mut runs: Vec<f64> = (0..30)
            .map(|_| {
                let started = Instant::now();
                f();
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        runs.sort_by(f64::total_cmp);
        println!(
            "{what}: first {:.2} ms, median {:.2} ms, max {:.2} ms",
            runs[0], runs[15], runs[29]
        );
    };
    let by_name_desc = EntityQuery {
        order: order_by("metadata.name", true),
        ..Default::default()
    };
    let started = Instant::now();
    index.query(&by_name_desc, &PageRequest::first(50));
    println!(
        "first ordered page (builds the order): {:?}",
        started.elapsed()
    );
    time("ordered page of 50, metadata.name desc", &|| {
        index.query(&by_name_desc, &PageRequest::first(50));
    });
    let count = EntityQuery {
        filter: FilterSet::parse(&["kind=component"]).expect("ok"),
        ..Default::default()
    };
    time("count kind=component limit 1", &|| {
        assert!(index.query(&count, &PageRequest::first(1)).total > 0);
    });
    time("facets spec.owner over components", &|| {
        index.facets(&["spec.owner".into()], &count.filter);
    });
    for term in ["payments", "svc-012", "team-0002"] {
        let query = EntityQuery {
            full_text: FullTextFilter::new(term, None).expect("ok"),
            ..Default::default()
        };
        time(&format!("full text {term}, 20"), &|| {
            index.query(&query, &PageRequest::first(20));
        });
    }
    let by_owner = EntityQuery {
        filter: FilterSet::parse(&["kind=component,spec.owner=team-0042"]).expect("ok"),
        ..Default::default()
    };
    time("by owner, limit 50, with its JSON", &|| {
        let page = index.query(&by_owner, &PageRequest::first(50));
        let mut out = Vec::new();
        for id in page.ids {
            index.write_json(id, &mut out);
        }
    });
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("component:default/svc-{:05}", (i * 7919) % 200_000))
        .collect();
    time("by-name x 10,000 (lookup and JSON)", &|| {
        for key in &keys {
            let id = index.id_by_key(key).expect("there");
            assert!(!index.json(id).expect("json").is_empty());
        }
    });
    // Every view rendered, as after a load of reads.
    let started = Instant::now();
    let bytes: usize = index
        .ids()
        .filter_map(|id| index.view(id))
        .map(|v| v.json.len())
        .sum();
    println!(
        "rendered {n} views ({bytes} bytes) in {:?}",
        started.elapsed()
    );
    let after = rss();
    println!(
        "{n} entities: {:.0} MB resident for the index, {:.0} bytes each",
        (after - before) as f64 / 1e6,
        (after - before) as f64 / n as f64
    );
    // What a cold start reads and rebuilds: the snapshot's chunks, decoded (entities
    // validated again), then applied to an empty index.
    let started = Instant::now();
    let chunks = crate::catalog::changelog::chunks::encode(index.log_lines()).expect("encode");
    let encoded: usize = chunks.iter().map(String::len).sum();
    println!(
        "snapshot: {} chunks, {:.1} MB stored ({:.0} bytes/entity), encoded in {:?}",
        chunks.len(),
        encoded as f64 / 1e6,
        encoded as f64 / n as f64,
        started.elapsed()
    );
    let started = Instant::now();
    let mut changes = crate::catalog::changelog::ChangeSet::default();
    for chunk in &chunks {
        crate::catalog::changelog::chunks::decode(chunk, &mut changes).expect("decode");
    }
    println!("snapshot decoded and validated in {:?}", started.elapsed());
    let started = Instant::now();
    let mut cold = CatalogIndex::default();
    cold.apply(changes.upserts, &[]);
    println!(
        "cold index built in {:?} ({} entities)",
        started.elapsed(),
        cold.len()
    );
    drop(cold);
    let started = Instant::now();
    let probe: Vec<StoredEntity> = (0..1000)
        .map(|i| {
            component(
                &format!("probe-{i}"),
                &format!("team-{:04}", i % 2000),
                json!({}),
            )
        })
        .collect();
    index.apply(probe, &[]);
    println!("apply 1,000 at {}: {:?}", index.len(), started.elapsed());
}

#[test]
fn served_json_is_the_views_json_and_follows_relations() {
    let mut index = CatalogIndex::default();
    index.apply(vec![group("team-a"), group("team-b")], &[]);
    index.apply(
        (0..20)
            .map(|i| {
                component(
                    &format!("s{i}"),
                    "team-a",
                    json!({"dependsOn": ["component:s0"]}),
                )
            })
            .collect(),
        &[],
    );
    let group_id = index.id_by_key("group:default/team-a").expect("group");
    let owned = |index: &CatalogIndex| {
        let json: Value =
            serde_json::from_slice(&index.json(group_id).expect("json")).expect("json");
        json["relations"].as_array().map_or(0, Vec::len)
    };
    // Rendered for the read and, with this many relations, kept.
    assert_eq!(owned(&index), 20);
    assert!(
        index
            .slot(group_id)
            .expect("slot")
            .view
            .json
            .0
            .get()
            .is_some()
    );
    index.apply(vec![component("s3", "team-b", json!({}))], &[]);
    assert_eq!(owned(&index), 19, "a change of a relation renders it again");
    for id in index.ids().collect::<Vec<_>>() {
        let served = index.json(id).expect("json");
        let mut written = Vec::new();
        assert!(index.write_json(id, &mut written));
        assert_eq!(served, written);
        assert_eq!(*served, *index.view(id).expect("view").json);
        let uid = index.view(id).expect("view").uid.clone();
        assert_eq!(index.id_by_uid(&uid), Some(id));
    }
    assert_eq!(index.id_by_uid("UID-S1"), None, "uids match exactly");
    // What the views kept is forgotten at the next write.
    let component_id = index.id_by_key("component:default/s5").expect("s5");
    assert!(
        index
            .slot(component_id)
            .expect("slot")
            .view
            .json
            .0
            .get()
            .is_some()
    );
    index.apply(vec![], &[]);
    assert!(
        index
            .slot(component_id)
            .expect("slot")
            .view
            .json
            .0
            .get()
            .is_none()
    );
    let kept = |id: u32| index.slot(id).expect("slot").view.json.0.get().is_some();
    assert!(
        kept(group_id),
        "an entity with many relations keeps its JSON until they change"
    );
    assert_eq!(owned(&index), 19);
}
