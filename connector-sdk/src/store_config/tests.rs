//! Unit tests of the shared vector-store configuration: which keys it takes, what it refuses and
//! how, and the manifest it becomes.

use crate::{
    CapabilityManifest, Caps, ConnectorConfig, Distance, ErrorKind, FilterKey, FilterableKeys,
    Operation, OwnershipMode, SecretSource, VectorSpec, VectorStoreConfig,
};

fn key(name: &str) -> FilterKey {
    FilterKey::new(name).unwrap()
}

#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreKeys {
    table: String,
    dsn: SecretSource,
}

fn parse<S: serde::de::DeserializeOwned>(json: &str) -> crate::Result<VectorStoreConfig<S>> {
    ConnectorConfig::from_json(json).parse()
}

#[test]
fn a_vector_store_config_takes_shared_keys_and_hands_the_rest_to_the_store() {
    let config: VectorStoreConfig<StoreKeys> = parse(
        r#"{"table": "docs", "dimension": 3, "distance": "inner_product",
            "filterable_keys": ["lang", "year"], "max_top_k": 50, "dsn": {"env": "X"}}"#,
    )
    .unwrap();
    assert_eq!(
        config.store,
        StoreKeys { table: "docs".into(), dsn: SecretSource::Env("X".into()) }
    );
    let declared = CapabilityManifest::closed()
        .with_operation(Operation::Search)
        .with_ownership_mode(OwnershipMode::EventFeed)
        .with_caps(Caps { max_fetch_ids: 20, ..Caps::CONTRACT });
    let manifest = config.manifest(declared).unwrap();
    assert!(manifest.supports(Operation::Search) && manifest.backs(OwnershipMode::EventFeed));
    assert_eq!(
        manifest.vector,
        Some(VectorSpec { dimension: 3, distance: Distance::InnerProduct })
    );
    assert_eq!(manifest.filterable_keys, FilterableKeys::Listed([key("lang"), key("year")].into()));
    assert_eq!((manifest.caps.max_top_k, manifest.caps.max_fetch_ids), (50, 20));
    assert_eq!(manifest.caps.max_filter_nodes, Caps::CONTRACT.max_filter_nodes);

    let bare: VectorStoreConfig = parse(r#"{"dimension": 8}"#).unwrap();
    assert_eq!((bare.distance, bare.filterable_keys.len()), (Distance::Cosine, 0));
}

#[test]
fn a_vector_store_config_refuses_unknown_missing_and_invalid_keys_without_quoting_values() {
    let cases = [
        (
            r#"{"dimension": 3, "table": "t", "dsn": {"env": "X"}, "tabel": "t"}"#,
            "unknown field `tabel`",
        ),
        (r#"{"table": "t", "dsn": {"env": "X"}}"#, "missing field `dimension`"),
        (r#"{"dimension": 3, "dsn": {"env": "X"}}"#, "missing field `table`"),
        (
            r#"{"dimension": 3, "dimension": 4, "table": "t", "dsn": {"env": "X"}}"#,
            "duplicate field `dimension`",
        ),
        (
            r#"{"dimension": 3, "table": "t", "dsn": {"env": "X"}, "distance": "s3cret-canary"}"#,
            "at `distance`: unknown variant, expected one of `cosine`, `l2`, `inner_product`",
        ),
        (
            r#"{"dimension": "s3cret-canary", "table": "t", "dsn": {"env": "X"}}"#,
            "at `dimension`: a value has the wrong type",
        ),
        (r#"{"dimension": 3, "table": "t", "dsn": {"vault": "s3cret-canary"}}"#, "at `dsn`"),
        (
            r#"{"dimension": 3, "table": "t", "dsn": {"env": "X"}, "filterable_keys": ["ok", "s3cret canary"]}"#,
            "at `filterable_keys[1]`: a value is invalid",
        ),
    ];
    for (json, expected) in cases {
        let err = parse::<StoreKeys>(json).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{json}");
        assert!(err.message().contains(expected), "{json}: {err}");
        assert!(!err.message().contains("s3cret"), "{json}: {err}");
    }
    let err = parse::<()>(r#"{"dimension": 3, "dsn": {"env": "X"}}"#).unwrap_err();
    assert!(err.message().contains("unknown field `dsn`"), "{err}");
}

#[test]
fn a_vector_store_config_checks_its_values_against_the_contract() {
    let cases = [
        (r#"{"dimension": 0}"#, "`dimension`: must be in 1..=16384"),
        (r#"{"dimension": 16385}"#, "`dimension`: must be in 1..=16384"),
        (r#"{"dimension": 3, "max_top_k": 1001}"#, "`max_top_k`: must be in 1..=1000"),
        (r#"{"dimension": 3, "max_fetch_ids": 0}"#, "`max_fetch_ids`: must be in 1..=1000"),
        (r#"{"dimension": 3, "max_filter_nodes": 257}"#, "`max_filter_nodes`: must be in 1..=256"),
        (
            r#"{"dimension": 3, "max_response_bytes": 16777217}"#,
            "`max_response_bytes`: must be in 1..=16777216",
        ),
    ];
    for (json, expected) in cases {
        let err = parse::<()>(json).unwrap().manifest(CapabilityManifest::closed()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{json}");
        assert!(err.message().contains(expected), "{json}: {err}");
    }
}
