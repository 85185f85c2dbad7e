//! Caps answer `LimitExceeded` and wrong dimensions `InvalidRequest`, never a truncated answer;
//! short results say why.

use kyro_connector_sdk::{Connector, ErrorKind, ShortfallReason};

use crate::common::{TempDir, doc, exact, id, open_embedded, request, scope, search, upsert};

#[test]
fn top_k_past_the_cap_is_refused() {
    let dir = TempDir::new("limit-top-k");
    let connector = open_embedded(dir.path());
    let target = scope("acme", "docs");
    for top_k in [0, 51, 1000] {
        let err = connector.search(&target, &request([1.0; 4], top_k, None)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitExceeded, "top_k {top_k}");
    }
    assert!(connector.search(&target, &request([1.0; 4], 50, None)).is_ok());
}

#[test]
fn fetch_past_the_cap_is_refused() {
    let dir = TempDir::new("limit-fetch");
    let connector = open_embedded(dir.path());
    let target = scope("acme", "docs");
    let ids: Vec<_> = (0..21).map(|n| id(&format!("doc-{n}"))).collect();
    let err = connector.fetch(&target, &ids).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded);
    assert!(connector.fetch(&target, &ids[..20]).unwrap().is_empty());
}

#[test]
fn wrong_dimensions_are_invalid_requests() {
    let dir = TempDir::new("limit-dimension");
    let connector = open_embedded(dir.path());
    let target = scope("acme", "docs");
    let mut bad = request([1.0; 4], 5, None);
    bad.embedding = kyro_connector_sdk::Embedding::new(vec![1.0; 5]).unwrap();
    assert_eq!(connector.search(&target, &bad).unwrap_err().kind(), ErrorKind::InvalidRequest);
    let document = kyro_connector_sdk::Document::new(
        id("x"),
        Some(kyro_connector_sdk::Embedding::new(vec![1.0; 3]).unwrap()),
        None,
        kyro_connector_sdk::Metadata::default(),
        None,
    )
    .unwrap();
    assert_eq!(connector.upsert(&target, &document).unwrap_err().kind(), ErrorKind::InvalidRequest);
    let without = kyro_connector_sdk::Document::new(
        id("x"),
        None,
        None,
        kyro_connector_sdk::Metadata::default(),
        None,
    )
    .unwrap();
    assert_eq!(connector.upsert(&target, &without).unwrap_err().kind(), ErrorKind::InvalidRequest);
}

#[test]
fn short_results_are_reported_as_exhausted_when_the_scope_has_no_more() {
    let dir = TempDir::new("limit-short");
    let connector = open_embedded(dir.path());
    let target = scope("acme", "docs");
    for n in 0..3 {
        upsert(
            &connector,
            &target,
            &doc(&format!("d{n}"), [1.0, n as f32, 0.0, 0.0], &[("lang", "en")], "c"),
        );
    }
    upsert(&connector, &scope("globex", "docs"), &doc("g", [1.0; 4], &[("lang", "en")], "c"));
    let response = search(&connector, &target, [1.0; 4], 10, None);
    let shortfall = response.shortfall.unwrap();
    assert_eq!((shortfall.requested, shortfall.returned), (10, 3));
    assert_eq!(shortfall.reason, ShortfallReason::Exhausted);
    let response = search(&connector, &target, [1.0; 4], 10, Some(exact("lang", "de")));
    assert_eq!(response.shortfall.unwrap().returned, 0);
    let full = search(&connector, &target, [1.0; 4], 3, None);
    assert_eq!(full.shortfall, None);
}
