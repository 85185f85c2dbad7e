//! Unit tests of the contract helpers: filter semantics, similarity, request checks and the
//! search answer builder.

use crate::{
    CapabilityManifest, Caps, Distance, Document, DocumentId, Embedding, ErrorKind, FilterExpr,
    FilterKey, FilterValue, FilterableKeys, Metadata, RuntimeFilter, Scope, SearchHit,
    SearchRequest, SearchResults, ShortfallReason, StoredDocument, VectorSpec, filter_matches,
};

fn metadata(entries: &[(&str, &str)]) -> Metadata {
    Metadata::new(
        entries.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect(),
    )
    .unwrap()
}

fn key(name: &str) -> FilterKey {
    FilterKey::new(name).unwrap()
}

fn exact(name: &str, value: &str) -> FilterExpr {
    FilterExpr::Exact { key: key(name), value: FilterValue::new(value).unwrap() }
}

fn range(name: &str, min: Option<f64>, max: Option<f64>) -> FilterExpr {
    FilterExpr::Range { key: key(name), min, max }
}

#[test]
fn filters_follow_the_contract_semantics() {
    let doc = metadata(&[("lang", "en"), ("year", " 2021 "), ("size", "big"), ("big", "1e400")]);
    let cases = [
        (exact("lang", "en"), true),
        (exact("lang", "EN"), false),
        (exact("missing", "en"), false),
        (
            FilterExpr::In {
                key: key("lang"),
                values: vec![FilterValue::new("de").unwrap(), FilterValue::new("en").unwrap()],
            },
            true,
        ),
        (range("year", Some(2021.0), Some(2021.0)), true),
        (range("year", Some(2022.0), None), false),
        (range("size", None, None), false),
        // Out of f64's range reads as infinity, which is not a finite number.
        (range("big", Some(0.0), None), false),
        (FilterExpr::Not(Box::new(range("missing", Some(0.0), None))), true),
        (FilterExpr::Not(Box::new(exact("lang", "en"))), false),
        (FilterExpr::And(vec![exact("lang", "en"), range("year", None, Some(2020.0))]), false),
        (FilterExpr::Or(vec![exact("lang", "de"), range("year", None, Some(2030.0))]), true),
    ];
    for (filter, expected) in cases {
        assert_eq!(filter_matches(&filter, &doc), expected, "{filter:?}");
    }
}

#[test]
fn similarity_is_higher_for_closer_vectors_under_every_distance() {
    let query = [1.0, 0.0, 0.0];
    let near = [0.9, 0.1, 0.0];
    let far = [-1.0, 0.5, 0.0];
    for distance in [Distance::Cosine, Distance::L2, Distance::InnerProduct] {
        assert!(
            distance.similarity(&query, &near) > distance.similarity(&query, &far),
            "{distance:?}"
        );
    }
    assert_eq!(Distance::Cosine.similarity(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    assert_eq!(Distance::L2.similarity(&[1.0, 1.0], &[1.0, 1.0]), 0.0);
}

fn manifest() -> CapabilityManifest {
    CapabilityManifest::closed()
        .with_vector(VectorSpec { dimension: 2, distance: Distance::Cosine })
        .with_filterable_keys(FilterableKeys::Listed([key("lang")].into()))
        .with_caps(Caps { max_top_k: 5, max_fetch_ids: 2, max_filter_nodes: 3, ..Caps::CONTRACT })
}

fn request(dimension: usize, top_k: u32, filter: Option<FilterExpr>) -> SearchRequest {
    SearchRequest {
        embedding: Embedding::new(vec![1.0; dimension]).unwrap(),
        top_k,
        filter: filter.map(|filter| RuntimeFilter::new(filter).unwrap()),
        include_content: true,
    }
}

#[test]
fn search_checks_refuse_what_the_manifest_does_not_declare() {
    let manifest = manifest();
    assert!(manifest.check_search(&request(2, 5, Some(exact("lang", "en")))).is_ok());
    let cases = [
        (request(3, 5, None), ErrorKind::InvalidRequest, "3 dimensions, the store has 2"),
        (request(2, 0, None), ErrorKind::LimitExceeded, "top_k 0 is outside 1..=5"),
        (request(2, 6, None), ErrorKind::LimitExceeded, "top_k 6 is outside 1..=5"),
        (
            request(2, 5, Some(exact("year", "2021"))),
            ErrorKind::InvalidRequest,
            "filter key year is not declared filterable",
        ),
        (
            request(
                2,
                5,
                Some(FilterExpr::And(vec![
                    exact("lang", "a"),
                    exact("lang", "b"),
                    exact("lang", "c"),
                ])),
            ),
            ErrorKind::LimitExceeded,
            "filter has 4 nodes, over the cap of 3",
        ),
    ];
    for (request, kind, message) in cases {
        let err = manifest.check_search(&request).unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert!(err.message().contains(message), "{err}");
    }
    let err = CapabilityManifest::closed().check_search(&request(2, 1, None)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
}

#[test]
fn fetch_and_document_checks_follow_the_manifest() {
    let manifest = manifest();
    let ids: Vec<DocumentId> = ["a", "b", "c"].map(|id| DocumentId::new(id).unwrap()).into();
    assert!(manifest.check_fetch(&ids[..2]).is_ok());
    let err = manifest.check_fetch(&ids).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded);
    assert!(err.message().contains("fetch of 3 ids is over the cap of 2"), "{err}");

    let document = |embedding: Option<Vec<f32>>| {
        Document::new(
            DocumentId::new("doc").unwrap(),
            embedding.map(|values| Embedding::new(values).unwrap()),
            None,
            Metadata::default(),
            None,
        )
        .unwrap()
    };
    assert_eq!(manifest.check_document(&document(Some(vec![1.0, 2.0]))).unwrap().dimension(), 2);
    for wrong in [document(None), document(Some(vec![1.0]))] {
        assert_eq!(manifest.check_document(&wrong).unwrap_err().kind(), ErrorKind::InvalidRequest);
    }
}

fn hit(id: &str, score: f32, content: &str) -> SearchHit {
    SearchHit {
        document: StoredDocument {
            scope: Scope::new("acme", "support").unwrap(),
            id: DocumentId::new(id).unwrap(),
            content: Some(content.to_owned()),
            metadata: Metadata::default(),
            revision: None,
            watermark: None,
        },
        score,
    }
}

fn ids(hits: &[SearchHit]) -> Vec<&str> {
    hits.iter().map(|hit| hit.document.id.as_str()).collect()
}

#[test]
fn search_results_sort_cap_and_report_shortfall() {
    let manifest = manifest();
    let mut results = SearchResults::new(&request(2, 3, None), &manifest);
    results.extend([
        hit("b", 0.5, "x"),
        hit("d", 0.1, "x"),
        hit("a", 0.5, "x"),
        hit("c", 0.9, "x"),
    ]);
    assert!(!results.is_short());
    let response = results.finish(ShortfallReason::Exhausted).unwrap();
    assert_eq!(ids(&response.hits), ["c", "a", "b"]);
    assert_eq!(response.shortfall, None);

    let mut results = SearchResults::new(&request(2, 3, None), &manifest);
    results.push(hit("a", 0.5, "x"));
    assert!(results.is_short());
    let detail = "ef_search=40".to_owned();
    let response =
        results.finish(ShortfallReason::IndexScanLimit { detail: detail.clone() }).unwrap();
    let shortfall = response.shortfall.unwrap();
    assert_eq!((shortfall.requested, shortfall.returned), (3, 1));
    assert_eq!(shortfall.reason, ShortfallReason::IndexScanLimit { detail });
}

#[test]
fn search_results_drop_unrequested_content_and_refuse_oversized_or_duplicate_answers() {
    let manifest = manifest().with_caps(Caps { max_response_bytes: 10, ..manifest().caps });
    let mut without_content = request(2, 5, None);
    without_content.include_content = false;
    let mut results = SearchResults::new(&without_content, &manifest);
    results.push(hit("a", 0.5, "far more than ten bytes of content"));
    let response = results.finish(ShortfallReason::Exhausted).unwrap();
    assert_eq!(response.hits[0].document.content, None);

    let mut results = SearchResults::new(&request(2, 5, None), &manifest);
    results.extend([hit("a", 0.5, "123456"), hit("b", 0.4, "123456")]);
    let err = results.finish(ShortfallReason::Exhausted).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded);
    assert!(err.message().contains("12 bytes of content, over the cap of 10"), "{err}");

    // Only what is kept counts: the cut hit's content does not.
    let mut results = SearchResults::new(&request(2, 1, None), &manifest);
    results.extend([hit("a", 0.5, "123456"), hit("b", 0.4, "123456")]);
    assert_eq!(ids(&results.finish(ShortfallReason::Exhausted).unwrap().hits), ["a"]);

    let mut results = SearchResults::new(&request(2, 5, None), &manifest);
    results.extend([hit("a", 0.5, ""), hit("a", 0.4, "")]);
    let err = results.finish(ShortfallReason::Exhausted).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(err.message().contains("document a twice"), "{err}");
}
