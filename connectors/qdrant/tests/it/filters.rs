//! Filter semantics and the injection corpus.
//!
//! Semantics are checked against the SDK's reference `matches()`: for every filter in a table,
//! the documents a scoped search returns are exactly the documents the reference accepts.
//! Injection attempts are plain values and must be matched literally.

use std::collections::BTreeSet;

use kyro_connector_sdk::testing::matches;
use kyro_connector_sdk::{Connector, ErrorKind, FilterExpr, FilterKey};

use crate::common::{
    TempDir, doc, exact, hit_ids, key, open_embedded, request, scope, search, upsert, value,
};

const EVERYTHING: u32 = 50;

fn corpus() -> Vec<kyro_connector_sdk::Document> {
    let rows: [(&str, &[(&str, &str)]); 10] = [
        ("d0", &[("lang", "en"), ("year", "2020")]),
        ("d1", &[("lang", "de"), ("year", "2021.5")]),
        ("d2", &[("lang", "en"), ("year", " 1999 ")]),
        ("d3", &[("lang", "fr"), ("year", "not a year")]),
        ("d4", &[("lang", "en de")]),
        ("d5", &[("tag", "' OR 1=1 --"), ("year", "-3e2")]),
        ("d6", &[("tag", "{\"$gt\":\"\"}"), ("year", "inf")]),
        ("d7", &[("tag", "ünïcødé 🦀"), ("tenant_id", "globex")]),
        ("d8", &[("lang", "EN"), ("year", "2024")]),
        ("d9", &[]),
    ];
    rows.iter()
        .enumerate()
        .map(|(n, (doc_id, entries))| {
            let n = n as f32;
            doc(doc_id, [1.0, n, n * n, 1.0], entries, doc_id)
        })
        .collect()
}

fn range(name: &str, min: Option<f64>, max: Option<f64>) -> FilterExpr {
    FilterExpr::Range { key: key(name), min, max }
}

fn table() -> Vec<FilterExpr> {
    vec![
        exact("lang", "en"),
        exact("lang", "EN"),
        exact("lang", "en de"),
        exact("lang", "missing"),
        FilterExpr::In { key: key("lang"), values: vec![value("de"), value("fr"), value("xx")] },
        range("year", Some(2000.0), None),
        range("year", None, Some(2021.5)),
        range("year", Some(2020.0), Some(2021.5)),
        range("year", Some(-1000.0), Some(0.0)),
        range("lang", Some(0.0), None),
        FilterExpr::Not(Box::new(exact("lang", "en"))),
        FilterExpr::Not(Box::new(range("year", Some(2000.0), None))),
        FilterExpr::And(vec![exact("lang", "en"), range("year", Some(2000.0), None)]),
        FilterExpr::Or(vec![exact("lang", "fr"), exact("tag", "' OR 1=1 --")]),
        FilterExpr::Or(vec![
            FilterExpr::And(vec![
                exact("lang", "en"),
                FilterExpr::Not(Box::new(exact("year", "2020"))),
            ]),
            FilterExpr::Not(Box::new(FilterExpr::Or(vec![
                exact("lang", "en"),
                exact("lang", "de"),
                exact("lang", "fr"),
                exact("lang", "EN"),
            ]))),
        ]),
        exact("tenant_id", "globex"),
    ]
}

#[test]
fn filtered_search_returns_exactly_what_the_reference_matches() {
    let dir = TempDir::new("filter-semantics");
    let connector = open_embedded(dir.path());
    let target = scope("acme", "docs");
    let documents = corpus();
    for document in &documents {
        upsert(&connector, &target, document);
    }
    // The same documents in another tenant must never leak into any answer.
    for document in &documents {
        upsert(&connector, &scope("globex", "docs"), document);
    }
    for filter in table() {
        let expected: BTreeSet<String> = documents
            .iter()
            .filter(|document| matches(&filter, document.metadata()))
            .map(|document| document.id().as_str().to_owned())
            .collect();
        let response =
            search(&connector, &target, [1.0, 1.0, 1.0, 1.0], EVERYTHING, Some(filter.clone()));
        let actual: BTreeSet<String> = hit_ids(&response).into_iter().collect();
        assert_eq!(actual, expected, "filter {filter:?}");
        assert!(response.hits.iter().all(|hit| hit.document.scope == target));
    }
}

#[test]
fn injection_values_are_matched_literally() {
    let dir = TempDir::new("filter-injection");
    let connector = open_embedded(dir.path());
    let target = scope("acme", "docs");
    for document in corpus() {
        upsert(&connector, &target, &document);
    }
    let long = "x".repeat(4096);
    let corpus = [
        "\"",
        "'",
        "' OR 1=1 --",
        "\" OR \"\"=\"",
        "{\"$gt\":\"\"}",
        "{\"$ne\":null}",
        "metadata.x",
        "metadata",
        "*",
        "%",
        "en' OR lang='de",
        "ünïcødé",
        "\u{202e}en",
        "en\u{0}",
        long.as_str(),
    ];
    for attempt in corpus {
        for filter in [
            exact("lang", attempt),
            exact("x", attempt),
            FilterExpr::In { key: key("tag"), values: vec![value(attempt)] },
        ] {
            let response = search(&connector, &target, [1.0; 4], EVERYTHING, Some(filter.clone()));
            let literal: Vec<String> = crate::filters::corpus()
                .iter()
                .filter(|document| matches(&filter, document.metadata()))
                .map(|document| document.id().as_str().to_owned())
                .collect();
            assert_eq!(hit_ids(&response), literal, "{filter:?}");
        }
    }
    // The stored attack strings themselves match only literally, once each.
    assert_eq!(
        hit_ids(&search(
            &connector,
            &target,
            [1.0; 4],
            EVERYTHING,
            Some(exact("tag", "' OR 1=1 --"))
        )),
        ["d5"]
    );
    assert_eq!(
        hit_ids(&search(
            &connector,
            &target,
            [1.0; 4],
            EVERYTHING,
            Some(exact("tag", "{\"$gt\":\"\"}"))
        )),
        ["d6"]
    );
}

#[test]
fn undeclared_and_malformed_keys_are_refused() {
    let dir = TempDir::new("filter-keys");
    let connector = open_embedded(dir.path());
    let target = scope("acme", "docs");
    for name in ["metadata", "namespace", "doc_id", "content", "metadata_numeric", "LANG"] {
        let err =
            connector.search(&target, &request([1.0; 4], 5, Some(exact(name, "x")))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{name}");
    }
    for malformed in ["metadata.x", "lang\"", "$gt", "a b", "x[0]", "ünï", ""] {
        assert!(FilterKey::new(malformed).is_err(), "{malformed:?} should not be a key");
    }
}
