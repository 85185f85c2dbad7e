//! Unit tests of the pure parts: configuration, point ids, the payload model, and the filter
//! translation with snapshots of the exact requests both backends receive.

use std::time::Duration;

use kyro_connector_sdk::{
    ConnectorConfig, Document, DocumentId, Embedding, ErrorKind, FilterExpr, FilterKey,
    FilterValue, Metadata, RuntimeFilter, Scope,
};

use crate::config::QdrantConfig;
use crate::filter::{self, Condition};
use crate::payload::{self, PointKey};
use crate::{embedded, server};

const CANARY: &str = "canary-4f1d2a9e-secret";

fn parse(json: serde_json::Value) -> Result<QdrantConfig, kyro_connector_sdk::ConnectorError> {
    ConnectorConfig::from_json(json.to_string()).parse::<QdrantConfig>()
}

fn embedded_json() -> serde_json::Value {
    serde_json::json!({
        "backend": "embedded",
        "path": "/tmp/kyro-qdrant-unit",
        "collection": "docs",
        "dimension": 4,
        "filterable_keys": ["lang", "year", "tag"],
    })
}

fn fields() -> crate::config::PayloadFields {
    parse(embedded_json()).unwrap().validate().unwrap().fields().clone()
}

fn scope(tenant: &str, namespace: &str) -> Scope {
    Scope::new(tenant, namespace).unwrap()
}

fn key(name: &str) -> FilterKey {
    FilterKey::new(name).unwrap()
}

fn value(text: &str) -> FilterValue {
    FilterValue::new(text).unwrap()
}

fn translate(expr: FilterExpr) -> Condition {
    filter::translate(&RuntimeFilter::new(expr).unwrap(), &fields())
}

/// What an embedded connector opened on `embedded_json()` declares.
fn manifest() -> kyro_connector_sdk::CapabilityManifest {
    crate::manifest(&parse(embedded_json()).unwrap().validate().unwrap())
}

#[test]
fn a_server_config_validates_with_defaults() {
    let config = parse(serde_json::json!({
        "backend": "server",
        "url": "http://127.0.0.1:6334",
        "api_key": { "value": CANARY },
        "collection": "docs",
        "dimension": 768,
        "distance": "l2",
    }))
    .unwrap()
    .validate()
    .unwrap();
    let crate::Backend::Server(settings) = config.backend() else { panic!("not a server") };
    assert_eq!(settings.timeout(), Duration::from_millis(5_000));
    assert_eq!(config.fields().tenant(), "tenant_id");
    assert_eq!(config.fields().namespace(), "namespace");
    assert_eq!(config.fields().id(), "doc_id");
    assert_eq!(config.fields().metadata_numeric(), "metadata_numeric");
    assert_eq!(config.caps().max_top_k, 100);
    assert!(!format!("{config:?}").contains(CANARY), "Debug shows the API key");
}

#[test]
fn config_errors_name_the_key_and_never_the_value() {
    let cases = [
        (serde_json::json!({"backend": CANARY, "collection": "c", "dimension": 4}), "backend"),
        (
            serde_json::json!({"backend": "server", "url": format!("ftp://{CANARY}"), "collection": "c", "dimension": 4}),
            "url",
        ),
        (
            serde_json::json!({"backend": "embedded", "path": "/tmp/x", "url": format!("http://{CANARY}"), "collection": "c", "dimension": 4}),
            "url",
        ),
        (serde_json::json!({"backend": "embedded", "collection": "c", "dimension": 4}), "path"),
        (
            serde_json::json!({"backend": "embedded", "path": "/tmp/x", "collection": CANARY, "dimension": 4}),
            "collection",
        ),
        (
            serde_json::json!({"backend": "embedded", "path": "/tmp/x", "collection": "c", "dimension": 0}),
            "dimension",
        ),
        (
            serde_json::json!({"backend": "embedded", "path": "/tmp/x", "collection": "c", "dimension": 4, "distance": CANARY}),
            "distance",
        ),
        (
            serde_json::json!({"backend": "embedded", "path": "/tmp/x", "collection": "c", "dimension": 4, "tenant_field": "a.b"}),
            "tenant_field",
        ),
        (
            serde_json::json!({"backend": "embedded", "path": "/tmp/x", "collection": "c", "dimension": 4, "namespace_field": "tenant_id"}),
            "namespace_field",
        ),
        (
            serde_json::json!({"backend": "embedded", "path": "/tmp/x", "collection": "c", "dimension": 4, "content_field": "metadata_numeric"}),
            "metadata_field",
        ),
        (
            serde_json::json!({"backend": "embedded", "path": "/tmp/x", "collection": "c", "dimension": 4, "filterable_keys": [format!("{CANARY}.x")]}),
            "filterable_keys",
        ),
        (
            serde_json::json!({"backend": "embedded", "path": "/tmp/x", "collection": "c", "dimension": 4, "max_top_k": 1001}),
            "max_top_k",
        ),
        (
            serde_json::json!({"backend": "server", "url": "http://localhost:6334", "timeout_ms": 0, "collection": "c", "dimension": 4}),
            "timeout_ms",
        ),
    ];
    for (json, key) in cases {
        let err = parse(json.clone()).and_then(QdrantConfig::validate).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{json}");
        assert!(err.message().contains(key), "{json}: {}", err.message());
        assert!(!err.message().contains(CANARY), "{json}: {}", err.message());
    }
}

#[test]
fn unknown_and_mistyped_keys_are_refused_without_their_value() {
    let mut json = embedded_json();
    json["dsn"] = serde_json::json!(CANARY);
    let err = parse(json).unwrap_err();
    assert!(err.message().contains("unknown field `dsn`"), "{}", err.message());
    let mut json = embedded_json();
    json["dimension"] = serde_json::json!(CANARY);
    let err = parse(json).unwrap_err();
    assert!(err.message().contains("dimension") && !err.message().contains(CANARY));
}

#[test]
fn point_ids_are_deterministic_and_never_shared_across_scopes() {
    let id = DocumentId::new("doc-1").unwrap();
    let first = PointKey::derive(&scope("acme", "docs"), &id);
    assert_eq!(first, PointKey::derive(&scope("acme", "docs"), &id));
    assert_ne!(first, PointKey::derive(&scope("globex", "docs"), &id));
    assert_ne!(first, PointKey::derive(&scope("acme", "other"), &id));
    // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
    assert_ne!(PointKey::derive(&scope("ab", "c"), &id), PointKey::derive(&scope("a", "bc"), &id));
    let text = first.to_uuid_string();
    assert_eq!(text.len(), 36);
    assert_eq!(&text[14..15], "8", "UUID version 8: {text}");
    insta::assert_snapshot!("point_id_acme_docs_doc_1", text);
}

#[test]
fn payloads_round_trip_and_mirror_numeric_metadata() {
    let scope = scope("acme", "docs");
    let metadata = Metadata::new(
        [("lang", "en"), ("year", " 2024 "), ("size", "1e3"), ("word", "inf"), ("nan", "NaN")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
    .unwrap();
    let document = Document::new(
        DocumentId::new("doc-1").unwrap(),
        Some(Embedding::new(vec![1.0, 0.0, 0.0, 0.0]).unwrap()),
        Some("hello".to_owned()),
        metadata.clone(),
        None,
    )
    .unwrap();
    let fields = fields();
    let stored = payload::to_payload(&scope, &document, &fields);
    insta::assert_yaml_snapshot!("payload_of_a_document", stored);
    let back = payload::from_payload(&scope, &stored, &fields, true).unwrap();
    assert_eq!(back.metadata, metadata);
    assert_eq!(back.content.as_deref(), Some("hello"));
    assert_eq!(back.id.as_str(), "doc-1");
    let without_content = payload::from_payload(&scope, &stored, &fields, false).unwrap();
    assert_eq!(without_content.content, None);
    let err =
        payload::from_payload(&self::scope("acme", "other"), &stored, &fields, true).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
}

#[test]
fn undeclared_filter_keys_are_refused() {
    let filter = RuntimeFilter::new(FilterExpr::Not(Box::new(FilterExpr::Exact {
        key: key("secret"),
        value: value("x"),
    })))
    .unwrap();
    let err = manifest().check_filter(&filter).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("secret"));
}

/// A representative set of filters, rendered into both backends' requests.
fn representative_filters() -> Vec<(&'static str, Option<FilterExpr>)> {
    vec![
        ("no_filter", None),
        ("exact", Some(FilterExpr::Exact { key: key("lang"), value: value("en") })),
        (
            "exact_with_spaces_stays_a_keyword",
            Some(FilterExpr::Exact { key: key("lang"), value: value("' OR 1=1 --") }),
        ),
        (
            "in",
            Some(FilterExpr::In {
                key: key("tag"),
                values: vec![value("a"), value("{\"$gt\":\"\"}")],
            }),
        ),
        ("range_min", Some(FilterExpr::Range { key: key("year"), min: Some(2020.0), max: None })),
        (
            "range_both",
            Some(FilterExpr::Range { key: key("year"), min: Some(2020.0), max: Some(2024.5) }),
        ),
        (
            "and_or_not",
            Some(FilterExpr::And(vec![
                FilterExpr::Or(vec![
                    FilterExpr::Exact { key: key("lang"), value: value("en") },
                    FilterExpr::Exact { key: key("lang"), value: value("de") },
                ]),
                FilterExpr::Not(Box::new(FilterExpr::Range {
                    key: key("year"),
                    min: None,
                    max: Some(2000.0),
                })),
            ])),
        ),
    ]
}

#[test]
fn grpc_search_requests_carry_the_scope_and_the_filter() {
    let scope = scope("acme", "support");
    for (name, expr) in representative_filters() {
        let inner = expr.map(translate);
        let condition = filter::scoped(&scope, &fields(), inner);
        let request = server::search_request(
            "docs",
            &condition,
            &[0.5, 0.25, 0.0, 1.0],
            10,
            Duration::from_millis(5_000),
        );
        insta::assert_debug_snapshot!(format!("grpc_search_{name}"), request);
    }
}

#[test]
fn edge_filters_carry_the_scope_and_the_filter() {
    let scope = scope("acme", "support");
    for (name, expr) in representative_filters() {
        let inner = expr.map(translate);
        let condition = filter::scoped(&scope, &fields(), inner);
        insta::assert_yaml_snapshot!(
            format!("edge_filter_{name}"),
            embedded::to_filter(&condition).unwrap()
        );
    }
}

#[test]
fn grpc_fetch_count_and_delete_requests_carry_the_scope() {
    let scope = scope("acme", "support");
    let ids = [DocumentId::new("doc-1").unwrap(), DocumentId::new("doc 2").unwrap()];
    let by_ids = filter::scoped_ids(&scope, &fields(), &ids);
    let timeout = Duration::from_millis(1_500);
    insta::assert_debug_snapshot!(
        "grpc_fetch",
        server::scroll_request("docs", &by_ids, 2, timeout)
    );
    insta::assert_debug_snapshot!(
        "grpc_delete",
        server::delete_request("docs", &filter::scoped_ids(&scope, &fields(), &ids[..1]), timeout)
    );
    insta::assert_debug_snapshot!(
        "grpc_count",
        server::count_request("docs", &filter::scoped(&scope, &fields(), None), timeout)
    );
    insta::assert_debug_snapshot!(
        "grpc_create_tenant_index",
        server::keyword_index_request("docs", "tenant_id", true)
    );
}

#[test]
fn euclidean_scores_are_negated_so_higher_is_closer() {
    use kyro_connector_sdk::Distance;
    assert_eq!(crate::kyro_score(Distance::L2, 2.0), -2.0);
    assert_eq!(crate::kyro_score(Distance::Cosine, 0.5), 0.5);
    assert_eq!(crate::kyro_score(Distance::InnerProduct, 3.0), 3.0);
}

/// A server connector whose server is not there: nothing in it touches the network until called.
fn unreachable_server_connector() -> crate::QdrantConnector {
    let config = parse(serde_json::json!({
        "backend": "server",
        "url": "http://127.0.0.1:9",
        "api_key": { "value": CANARY },
        "timeout_ms": 2000,
        "collection": "docs",
        "dimension": 4,
    }))
    .unwrap()
    .validate()
    .unwrap();
    let crate::Backend::Server(settings) = config.backend() else { panic!("not a server") };
    let (store, redactor) = server::ServerStore::connect(settings, "docs").unwrap();
    let manifest = crate::manifest(&config);
    crate::QdrantConnector {
        config,
        manifest,
        store: crate::store::Store::Server { store, redactor },
        host: kyro_connector_sdk::HostContext::discard(),
    }
}

#[test]
fn the_server_backend_declares_search_fetch_delete_and_event_feed_only() {
    use kyro_connector_sdk::{Connector, Operation, OwnershipMode, WatermarkKind};
    let connector = unreachable_server_connector();
    assert!(!format!("{connector:?}").contains(CANARY), "Debug shows the API key");
    let manifest = connector.describe();
    assert_eq!(
        manifest.operations.iter().copied().collect::<Vec<_>>(),
        [Operation::Search, Operation::Fetch, Operation::Delete]
    );
    assert_eq!(
        manifest.ownership_modes.iter().copied().collect::<Vec<_>>(),
        [OwnershipMode::EventFeed]
    );
    assert_eq!(manifest.watermark_kind, WatermarkKind::None);
    let scope = scope("acme", "docs");
    let document = Document::new(
        DocumentId::new("d").unwrap(),
        Some(Embedding::new(vec![1.0; 4]).unwrap()),
        None,
        Metadata::default(),
        None,
    )
    .unwrap();
    for err in [
        connector.upsert(&scope, &document).unwrap_err(),
        connector.watermark(&scope).unwrap_err(),
        connector.snapshot_version(&scope).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    }
}

#[test]
fn server_call_errors_are_classified_and_redacted() {
    use kyro_connector_sdk::Connector;
    let connector = unreachable_server_connector();
    let scope = scope("acme", "docs");
    let request = kyro_connector_sdk::SearchRequest {
        embedding: Embedding::new(vec![1.0; 4]).unwrap(),
        top_k: 5,
        filter: None,
        include_content: true,
    };
    let errors = [
        connector.search(&scope, &request).unwrap_err(),
        connector.fetch(&scope, &[DocumentId::new("d").unwrap()]).unwrap_err(),
        connector.delete(&scope, &DocumentId::new("d").unwrap()).unwrap_err(),
        connector.health().unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout), "{err}");
        assert!(!err.message().contains(CANARY), "{err}");
        assert!(!err.message().contains("http://127.0.0.1:9"), "the url is redacted: {err}");
    }
}
