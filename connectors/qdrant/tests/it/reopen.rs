//! Reopening a collection checks it against the configuration: another dimension or distance is
//! refused with a clear `Configuration` error, and a missing collection is created only when
//! allowed.

use kyro_connector_sdk::ErrorKind;

use crate::common::{TempDir, doc, embedded_config, open_embedded, open_json, scope, upsert};

#[test]
fn a_collection_with_another_dimension_is_refused() {
    let dir = TempDir::new("reopen-dimension");
    {
        let connector = open_embedded(dir.path());
        upsert(&connector, &scope("acme", "docs"), &doc("d0", [1.0; 4], &[], "c"));
    }
    let mut json = embedded_config(dir.path());
    json["dimension"] = serde_json::json!(8);
    let err = open_json(&json).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(
        err.message().contains("dimension 4") && err.message().contains("dimension 8"),
        "{}",
        err.message()
    );
}

#[test]
fn a_collection_with_another_distance_is_refused() {
    let dir = TempDir::new("reopen-distance");
    drop(open_embedded(dir.path()));
    let mut json = embedded_config(dir.path());
    json["distance"] = serde_json::json!("l2");
    let err = open_json(&json).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.message().contains("l2"), "{}", err.message());
}

#[test]
fn a_missing_collection_is_created_only_when_allowed() {
    let dir = TempDir::new("reopen-missing");
    let mut json = embedded_config(dir.path());
    json["create_collection"] = serde_json::json!(false);
    let err = open_json(&json).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.message().contains("create_collection"), "{}", err.message());
    assert!(!dir.path().join("docs").exists(), "nothing was created");
    drop(open_embedded(dir.path()));
    assert!(open_json(&json).is_ok(), "an existing collection opens without create_collection");
}
