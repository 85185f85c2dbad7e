//! Table tests for the validating constructors: each row is an input and the rule it must break.

use std::collections::BTreeMap;

use crate::error::ValidationError;
use crate::filter::{FilterExpr, FilterKey, FilterValue, RuntimeFilter};
use crate::{DocumentId, Embedding, Metadata, Scope};

fn check_scope(tenant_id: &str, namespace: &str, expect: Result<(), &str>) {
    let actual = Scope::new(tenant_id, namespace).map(|_| ()).map_err(|err| err.to_string());
    assert_eq!(
        actual.as_ref().copied().map_err(String::as_str),
        expect,
        "scope {tenant_id:?}/{namespace:?}"
    );
}

#[test]
fn scope_identifier_rules() {
    check_scope("acme", "support", Ok(()));
    check_scope("", "support", Err("tenant_id must not be empty"));
    check_scope("acme", "", Err("namespace must not be empty"));
    check_scope(" acme", "support", Err("tenant_id must not start or end with white space"));
    check_scope("acme", "support\n", Err("namespace must not start or end with white space"));
    check_scope("ac\u{7}me", "support", Err("tenant_id must not contain control characters"));
    check_scope(&"t".repeat(257), "support", Err("tenant_id is 257 bytes, over the limit of 256"));
    check_scope(&"t".repeat(256), "support", Ok(()));
    check_scope("ténant ünïcode", "名前空間", Ok(()));
}

#[test]
fn scope_deserialization_validates() {
    let err = serde_json::from_str::<Scope>(r#"{"tenant_id":"","namespace":"x"}"#).unwrap_err();
    assert!(err.to_string().contains("tenant_id must not be empty"), "{err}");
}

fn exact(key: &str, value: &str) -> FilterExpr {
    FilterExpr::Exact { key: FilterKey::new(key).unwrap(), value: FilterValue::new(value).unwrap() }
}

fn nested_not(depth: usize) -> FilterExpr {
    let mut node = exact("lang", "en");
    for _ in 1..depth {
        node = FilterExpr::Not(Box::new(node));
    }
    node
}

fn check_filter(expr: FilterExpr, expect: Result<usize, &str>) {
    let actual =
        RuntimeFilter::new(expr).map(|filter| filter.n_nodes()).map_err(|err| err.to_string());
    assert_eq!(actual.as_ref().copied().map_err(String::as_str), expect);
}

#[test]
fn filter_limits() {
    let key = || FilterKey::new("year").unwrap();
    check_filter(exact("lang", "en"), Ok(1));
    check_filter(nested_not(16), Ok(16));
    check_filter(nested_not(17), Err("filter depth has 17, allowed is 1..=16"));
    check_filter(FilterExpr::And((0..255).map(|_| exact("a", "b")).collect()), Ok(256));
    check_filter(
        FilterExpr::Or((0..256).map(|_| exact("a", "b")).collect()),
        Err("filter nodes has 257, allowed is 1..=256"),
    );
    check_filter(FilterExpr::And(Vec::new()), Err("and/or filter needs at least one child"));
    check_filter(
        FilterExpr::In { key: key(), values: Vec::new() },
        Err("in values has 0, allowed is 1..=256"),
    );
    let many = (0..257).map(|idx| FilterValue::new(idx.to_string()).unwrap()).collect();
    check_filter(
        FilterExpr::In { key: key(), values: many },
        Err("in values has 257, allowed is 1..=256"),
    );
    check_filter(
        FilterExpr::Range { key: key(), min: None, max: None },
        Err("range filter needs min or max"),
    );
    check_filter(
        FilterExpr::Range { key: key(), min: Some(f64::NAN), max: None },
        Err("range filter must hold finite numbers only (no NaN or infinity)"),
    );
    check_filter(
        FilterExpr::Range { key: key(), min: Some(2.0), max: Some(1.0) },
        Err("range filter needs min <= max"),
    );
    check_filter(FilterExpr::Range { key: key(), min: Some(1.0), max: Some(1.0) }, Ok(1));
}

#[test]
fn filter_keys_and_values() {
    for bad in ["", "a-b", "a.b", "a b", "meta->>'x'", "x' OR 1=1 --", "ключ"] {
        assert!(FilterKey::new(bad).is_err(), "{bad:?} must be refused as a key");
    }
    assert!(FilterKey::new("a".repeat(129)).is_err());
    assert!(FilterKey::new("A_z_09").is_ok());
    assert!(FilterValue::new("x".repeat(4097)).is_err());
    assert!(
        FilterValue::new("' OR 1=1 --").is_ok(),
        "values are bound, never parsed, so any text is fine"
    );
}

#[test]
fn filter_keys_walk_the_tree() {
    let filter = RuntimeFilter::new(FilterExpr::And(vec![
        exact("lang", "en"),
        FilterExpr::Not(Box::new(FilterExpr::Or(vec![
            exact("year", "2024"),
            exact("product", "billing"),
        ]))),
    ]))
    .unwrap();
    let keys: Vec<&str> = filter.keys().into_iter().map(FilterKey::as_str).collect();
    assert_eq!(keys, ["lang", "year", "product"]);
}

#[test]
fn embedding_rules() {
    assert!(Embedding::new(vec![0.5; 768]).is_ok());
    assert_eq!(
        Embedding::new(Vec::new()).unwrap_err(),
        ValidationError::Count { field: "embedding", min: 1, max: 16_384, actual: 0 }
    );
    assert!(Embedding::new(vec![0.0; 16_385]).is_err());
    assert_eq!(
        Embedding::new(vec![1.0, f32::NAN]).unwrap_err(),
        ValidationError::NonFinite { field: "embedding" }
    );
    assert!(Embedding::new(vec![f32::INFINITY]).is_err());
}

#[test]
fn metadata_and_ids() {
    let mut entries = BTreeMap::new();
    entries.insert("lang".to_owned(), "en".to_owned());
    assert!(Metadata::new(entries.clone()).is_ok());
    entries.insert("bad key".to_owned(), "x".to_owned());
    assert!(Metadata::new(entries).is_err());
    let too_many: BTreeMap<String, String> =
        (0..257).map(|idx| (format!("k{idx}"), String::new())).collect();
    assert!(Metadata::new(too_many).is_err());
    assert!(DocumentId::new("d".repeat(1024)).is_ok());
    assert!(DocumentId::new("d".repeat(1025)).is_err());
}

#[test]
fn rfc3339_formats_utc_instants() {
    use crate::time::{rfc3339_millis, rfc3339_seconds};
    assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339_seconds(951_782_400_000), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339_millis(1_795_651_199_999), "2026-11-25T23:59:59.999Z");
    assert_eq!(rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
}

#[test]
fn rfc3339_parses_what_it_formats_and_refuses_the_rest_without_panicking() {
    use crate::time::{parse_rfc3339_millis, rfc3339_millis};
    for ms in [0, 1_767_323_045_123, -86_400_000, 951_782_400_000] {
        assert_eq!(parse_rfc3339_millis(&rfc3339_millis(ms)), Some(ms), "{ms}");
    }
    let parse = parse_rfc3339_millis;
    assert_eq!(parse("2026-01-02T03:04:05Z"), Some(1_767_323_045_000));
    assert_eq!(parse("2026-01-02T03:04:05.5Z"), Some(1_767_323_045_500));
    assert_eq!(parse("2026-01-02T03:04:05.123456789Z"), Some(1_767_323_045_123));
    assert_eq!(parse("2026-01-02T04:04:05+01:00"), Some(1_767_323_045_000));
    assert_eq!(parse("2026-01-02t02:04:05-01:00"), Some(1_767_323_045_000));
    for bad in [
        "",
        "2026-01-02",
        "2026-01-02T03:04:05",
        "2026-01-02T03:04:05+0100",
        "2026-01-02T03:04:05+0é00",
        "2026-01-02T03:04:05.Z",
        "2026-02-30T03:04:05Z",
        "2026-13-02T03:04:05Z",
        "2026-01-02T24:04:05Z",
        "2026-01-02T03:04:05+24:00",
        "é026-01-02T03:04:05Z",
        "2026-01-02T03:04:05Zjunk",
        "２０２６-01-02T03:04:05Z",
    ] {
        assert_eq!(parse(bad), None, "{bad:?}");
    }
}
