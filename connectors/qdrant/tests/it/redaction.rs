//! Canary secrets in the configuration never appear in errors, logs or `Debug` output, also when
//! qdrant-client fails with the URL and API key in hand.

use kyro_connector_qdrant::QdrantConfig;
use kyro_connector_sdk::{ConnectorConfig, ErrorKind};

use crate::common::{Logs, TempDir, embedded_config, open_with_host};

const CANARY: &str = "canary-7c2f90d4e1-api-key";

/// A server that is not there: a loopback port nothing listens on.
fn unreachable_server() -> serde_json::Value {
    serde_json::json!({
        "backend": "server",
        "url": "http://127.0.0.1:9",
        "api_key": { "value": CANARY },
        "timeout_ms": 2000,
        "collection": "docs",
        "dimension": 4,
        "create_collection": true,
    })
}

#[test]
fn an_unreachable_server_fails_without_the_api_key() {
    let logs = Logs::default();
    let err = open_with_host(&unreachable_server(), logs.host()).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{:?}: {}",
        err.kind(),
        err.message()
    );
    assert!(!err.message().contains(CANARY), "{}", err.message());
    assert!(!format!("{err:?}").contains(CANARY));
    assert!(
        !err.message().contains("http://127.0.0.1:9"),
        "the url is redacted: {}",
        err.message()
    );
    assert!(logs.lines().iter().all(|line| !line.contains(CANARY)), "{:?}", logs.lines());
}

#[test]
fn an_api_key_in_the_url_is_redacted_too() {
    let mut json = unreachable_server();
    json["url"] = serde_json::json!(format!("http://user:{CANARY}@127.0.0.1:9"));
    let err = open_with_host(&json, Logs::default().host()).unwrap_err();
    assert!(!err.message().contains(CANARY), "{}", err.message());
}

#[test]
fn configuration_debug_and_errors_hide_the_api_key() {
    let config = ConnectorConfig::from_json(unreachable_server().to_string());
    assert!(!format!("{config:?}").contains(CANARY));
    let parsed = config.parse::<QdrantConfig>().unwrap();
    assert!(!format!("{parsed:?}").contains(CANARY));
    let validated = parsed.validate().unwrap();
    assert!(!format!("{validated:?}").contains(CANARY));
    let mut json = unreachable_server();
    json["api_key"] = serde_json::json!({ "value": CANARY, "extra": CANARY });
    let err = ConnectorConfig::from_json(json.to_string()).parse::<QdrantConfig>().unwrap_err();
    assert!(!err.message().contains(CANARY), "{}", err.message());
}

#[test]
fn embedded_logs_hold_no_document_data() {
    let dir = TempDir::new("redaction-logs");
    let logs = Logs::default();
    let connector = open_with_host(&embedded_config(dir.path()), logs.host()).unwrap();
    let target = crate::common::scope("acme", "docs");
    crate::common::upsert(
        &connector,
        &target,
        &crate::common::doc("d0", [1.0, 0.0, 0.0, 0.0], &[("lang", CANARY)], CANARY),
    );
    let lines = logs.lines();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|line| !line.contains(CANARY)), "{lines:?}");
}
