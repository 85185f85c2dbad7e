//! The filter algebra in SQL: the same answers as the reference store's `matches()` (missing
//! keys, `not`, numbers that are not numbers), hostile values matched literally as data, keys
//! that are not declared refused, and the table intact afterwards.

use std::collections::BTreeSet;

use kyro_connector_sdk::testing::matches;
use kyro_connector_sdk::{Connector, ErrorKind, FilterExpr, FilterKey, FilterValue};

use crate::support::{
    DIMENSION, Row, TestTable, direction, exact, hit_ids, id, one_of, range, scope, search,
};

fn not(child: FilterExpr) -> FilterExpr {
    FilterExpr::Not(Box::new(child))
}

/// Metadata as other writers may have stored it: strings, numbers, booleans, nulls, padding,
/// and text that only looks like a number to some parsers.
fn metadata_corpus() -> Vec<serde_json::Value> {
    use serde_json::json;
    vec![
        json!({ "lang": "en", "year": "2020", "product": "a" }),
        json!({ "lang": "de", "year": " 2021 " }),
        json!({ "lang": "en", "year": "abc" }),
        json!({ "year": "1e3" }),
        json!({ "lang": "fr" }),
        json!({}),
        json!({ "year": "-5.5", "product": "b" }),
        json!({ "year": "1e400" }),
        json!({ "year": ".5" }),
        json!({ "year": "5." }),
        json!({ "year": "+7" }),
        json!({ "year": "0x10" }),
        json!({ "year": "1_000" }),
        json!({ "year": "NaN" }),
        json!({ "year": "inf" }),
        json!({ "year": "-0" }),
        json!({ "year": 2020 }),
        json!({ "year": 1999.5 }),
        json!({ "lang": null, "year": "2019" }),
        json!({ "lang": true }),
        json!({ "year": "1e-5" }),
        json!({ "year": "\t42\n" }),
        json!({ "year": "4 2" }),
        json!({ "lang": "EN" }),
        json!({ "product": "a" }),
        json!({ "year": "1.7976931348623157e308" }),
        json!({ "year": "1e308" }),
        json!({ "year": "\u{661}\u{662}" }),
        json!({ "year": "1e0005" }),
        json!({ "year": "" }),
    ]
}

fn filter_corpus() -> Vec<FilterExpr> {
    let en = || exact("lang", "en");
    let recent = || range("year", Some(2000.0), None);
    vec![
        en(),
        exact("lang", "EN"),
        exact("year", "2020"),
        exact("lang", "true"),
        one_of("lang", &["en", "fr"]),
        one_of("product", &["a", "b", "zz"]),
        recent(),
        range("year", None, Some(0.0)),
        range("year", Some(-10.0), Some(10.0)),
        range("year", Some(0.0), Some(1.0)),
        range("year", Some(1e300), None),
        range("year", Some(42.0), Some(42.0)),
        not(en()),
        not(recent()),
        not(one_of("lang", &["en"])),
        FilterExpr::And(vec![en(), recent()]),
        FilterExpr::Or(vec![exact("lang", "fr"), range("year", None, Some(0.0))]),
        not(FilterExpr::And(vec![en(), recent()])),
        not(FilterExpr::Or(vec![en(), exact("product", "a")])),
        not(not(en())),
        FilterExpr::And(vec![not(en()), not(exact("lang", "de"))]),
        FilterExpr::Or(vec![
            FilterExpr::And(vec![not(recent()), exact("product", "b")]),
            exact("lang", "EN"),
        ]),
    ]
}

#[test]
fn filters_answer_exactly_as_the_reference_store() {
    let table = TestTable::create(DIMENSION);
    // Without the vector index the search is exact, so any difference is the filter's.
    table.db.execute(&format!("DROP INDEX {}_embedding_idx", table.name));
    let connector = table.open(serde_json::json!({ "max_fetch_ids": 50 })).unwrap();
    let mine = scope("tenant-a", "docs");
    let corpus = metadata_corpus();
    let ids: Vec<String> = (0..corpus.len()).map(|doc_idx| format!("m{doc_idx:02}")).collect();
    for (doc_id, metadata) in ids.iter().zip(&corpus) {
        let row = Row {
            tenant: "tenant-a",
            namespace: "docs",
            id: doc_id,
            embedding: direction(0, 0.5),
            metadata: metadata.clone(),
        };
        table.db.insert(&table.name, &row);
    }
    // What the connector says each document's metadata is; the reference semantics run on it.
    let documents =
        connector.fetch(&mine, &ids.iter().map(|doc_id| id(doc_id)).collect::<Vec<_>>()).unwrap();
    assert_eq!(documents.len(), corpus.len());
    assert_eq!(documents[16].metadata.get("year"), Some("2020"), "a JSON number reads as its text");
    assert_eq!(documents[18].metadata.get("lang"), None, "a JSON null is missing");

    let mut n_nonempty = 0;
    for filter in filter_corpus() {
        let expected: BTreeSet<String> = documents
            .iter()
            .filter(|doc| matches(&filter, &doc.metadata))
            .map(|doc| doc.id.as_str().to_owned())
            .collect();
        let response =
            connector.search(&mine, &search(direction(0, 0.5), 50, Some(filter.clone()))).unwrap();
        let actual: BTreeSet<String> = hit_ids(&response).into_iter().collect();
        assert_eq!(actual, expected, "filter {filter:?}");
        n_nonempty += usize::from(!expected.is_empty());
    }
    assert!(n_nonempty > 15, "the corpus should mostly select something: {n_nonempty}");
}

/// Values that would change a query's meaning if they were ever spliced into SQL or JSON paths.
fn hostile_values(table: &str) -> Vec<String> {
    vec![
        "' OR 1=1 --".to_owned(),
        "\"); DROP TABLE x; --".to_owned(),
        format!("'; DROP TABLE {table}; --"),
        "x' || (SELECT version()) || '".to_owned(),
        "$1".to_owned(),
        "$4".to_owned(),
        "{\"$gt\":\"\"}".to_owned(),
        "metadata->>'x'".to_owned(),
        "' OR metadata ? 'lang".to_owned(),
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ü 中文 🙂 \u{202e}txt.exe".to_owned(),
        "%".to_owned(),
        "_".to_owned(),
        "*".to_owned(),
        "\\".to_owned(),
        "'".to_owned(),
        "\"".to_owned(),
        "E'\\x41'".to_owned(),
        "a".repeat(4096),
        "🙂".repeat(1024),
    ]
}

#[test]
fn hostile_filter_values_are_matched_literally_and_find_nothing() {
    let table = TestTable::create(DIMENSION);
    let connector = table.open(serde_json::json!({})).unwrap();
    let mine = scope("tenant-a", "docs");
    let stored_hostile = "' OR 1=1 --";
    for (doc_id, lang) in [("plain-1", "en"), ("plain-2", "de"), ("hostile", stored_hostile)] {
        let row = Row {
            tenant: "tenant-a",
            namespace: "docs",
            id: doc_id,
            embedding: direction(0, 0.1),
            metadata: serde_json::json!({ "lang": lang, "product": "x" }),
        };
        table.db.insert(&table.name, &row);
    }
    let n_rows = table.n_rows();

    for value in hostile_values(&table.name) {
        let expected: Vec<&str> = if value == stored_hostile { vec!["hostile"] } else { vec![] };
        for filter in [
            exact("lang", &value),
            one_of("lang", &[&value]),
            one_of("lang", &["no-such-language", &value]),
            FilterExpr::And(vec![exact("product", "x"), exact("lang", &value)]),
        ] {
            let response =
                connector.search(&mine, &search(direction(0, 0.0), 10, Some(filter))).unwrap();
            assert_eq!(hit_ids(&response), expected, "value {value:?}");
        }
        // As a key, anything with a character outside [A-Za-z0-9_] is not even a key.
        if !value.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_') {
            assert!(FilterKey::new(value.clone()).is_err(), "{value:?} passed as a filter key");
        }
    }
    // The only way to the hostile document is its literal value.
    let negated = connector
        .search(&mine, &search(direction(0, 0.0), 10, Some(not(exact("lang", stored_hostile)))))
        .unwrap();
    assert_eq!(hit_ids(&negated).len(), 2);

    assert!(table.exists(), "the table is gone");
    assert_eq!(table.n_rows(), n_rows);
}

#[test]
fn keys_that_are_not_declared_filterable_are_refused() {
    let table = TestTable::create(DIMENSION);
    let connector = table.open(serde_json::json!({})).unwrap();
    let mine = scope("tenant-a", "docs");
    connector
        .upsert(&mine, &crate::support::document("doc", direction(0, 0.0), &[("secret", "x")]))
        .unwrap();
    for filter in [
        exact("secret", "x"),
        not(exact("secret", "x")),
        FilterExpr::And(vec![
            exact("lang", "en"),
            FilterExpr::Or(vec![range("secret", Some(1.0), None)]),
        ]),
        one_of("tenant_id", &["tenant-b"]),
    ] {
        let err =
            connector.search(&mine, &search(direction(0, 0.0), 10, Some(filter))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
        assert!(err.message().contains("is not declared filterable"), "{err}");
    }
    for key in ["lang' OR '1'='1", "lang->>'x'", "lang)", "", "ü"] {
        assert!(FilterKey::new(key).is_err(), "{key:?} is not a valid key");
    }
}

#[test]
fn a_nul_in_a_filter_value_is_an_invalid_request() {
    let table = TestTable::create(DIMENSION);
    let connector = table.open(serde_json::json!({})).unwrap();
    let filter = FilterExpr::Exact {
        key: FilterKey::new("lang").unwrap(),
        value: FilterValue::new("en\0; DROP TABLE x").unwrap(),
    };
    let err = connector
        .search(&scope("tenant-a", "docs"), &search(direction(0, 0.0), 10, Some(filter)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    assert!(table.exists());
}
