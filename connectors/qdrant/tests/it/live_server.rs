//! The server backend against a live Qdrant server. CI does not start one: these tests run when
//! `KYRO_QDRANT_URL` names a Qdrant 1.x gRPC endpoint (for example `http://127.0.0.1:6334`, see
//! `examples/qdrant-live/`), and otherwise print one line saying so.
//!
//! Each run uses its own randomly named collection and deletes it afterwards. Documents are
//! seeded with qdrant-client directly (with the API key from `KYRO_QDRANT_API_KEY`, if set), the way an application's own pipeline writes them,
//! because the server backend does not declare upsert.

use std::collections::HashMap;

use kyro_connector_qdrant::PointKey;
use kyro_connector_sdk::{Connector, ErrorKind, MutationOutcome, Operation, OwnershipMode, Scope};
use qdrant_client::Qdrant;
use qdrant_client::qdrant::{self, value::Kind};

use crate::common::{doc, exact, hit_ids, id, open_json, scope, search};

const PROBE: [f32; 4] = [1.0, 0.0, 0.0, 0.0];

/// The server's URL, or `None` after printing why the tests do not run.
#[expect(
    clippy::print_stdout,
    reason = "the one line the project allows for a missing live server"
)]
fn server_url() -> Option<String> {
    match std::env::var("KYRO_QDRANT_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!(
                "qdrant server tests not run: set KYRO_QDRANT_URL to a Qdrant 1.x server (gRPC, e.g. http://127.0.0.1:6334)"
            );
            None
        }
    }
}

fn string(text: &str) -> qdrant::Value {
    qdrant::Value { kind: Some(Kind::StringValue(text.to_owned())) }
}

fn object(entries: &[(&str, &str)]) -> qdrant::Value {
    qdrant::Value {
        kind: Some(Kind::StructValue(qdrant::Struct {
            fields: entries.iter().map(|(k, v)| ((*k).to_owned(), string(v))).collect(),
        })),
    }
}

/// A point laid out the way the connector reads it (default field names).
fn point(
    scope: &Scope,
    doc_id: &str,
    vector: [f32; 4],
    lang: &str,
    content: &str,
) -> qdrant::PointStruct {
    let payload: HashMap<String, qdrant::Value> = [
        ("tenant_id", string(scope.tenant_id())),
        ("namespace", string(scope.namespace())),
        ("doc_id", string(doc_id)),
        ("content", string(content)),
        ("metadata", object(&[("lang", lang)])),
        ("metadata_numeric", object(&[])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    qdrant::PointStruct {
        id: Some(PointKey::derive(scope, &id(doc_id)).to_uuid_string().into()),
        payload,
        vectors: Some(vector.to_vec().into()),
    }
}

#[test]
fn the_server_backend_is_scoped_and_declares_only_what_it_backs() {
    let Some(url) = server_url() else { return };
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let collection = format!("kyro_it_{}_{nanos}", std::process::id());
    let mut config = serde_json::json!({
        "backend": "server",
        "url": url,
        "collection": collection,
        "dimension": 4,
        "filterable_keys": ["lang"],
        "create_collection": true,
    });
    let api_key = std::env::var("KYRO_QDRANT_API_KEY").ok().filter(|key| !key.is_empty());
    if api_key.is_some() {
        config["api_key"] = serde_json::json!({ "env": "KYRO_QDRANT_API_KEY" });
    }
    let connector = open_json(&config).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client =
        Qdrant::from_url(&url).api_key(api_key).skip_compatibility_check().build().unwrap();

    let manifest = connector.describe();
    assert_eq!(
        manifest.operations.iter().copied().collect::<Vec<_>>(),
        [Operation::Search, Operation::Fetch, Operation::Delete]
    );
    assert_eq!(
        manifest.ownership_modes.iter().copied().collect::<Vec<_>>(),
        [OwnershipMode::EventFeed]
    );
    assert!(connector.health().unwrap().store_version.starts_with("qdrant "));
    let target = scope("acme", "docs");
    let err = connector.upsert(&target, &doc("x", PROBE, &[], "c")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(connector.watermark(&target).unwrap_err().kind(), ErrorKind::Unsupported);

    let points = vec![
        point(&target, "a", [0.0, 1.0, 0.0, 0.0], "en", "acme a"),
        point(&target, "b", [0.0, 0.0, 1.0, 0.0], "en de", "acme b"),
        point(&scope("globex", "docs"), "a", PROBE, "en", "globex a"),
        point(&scope("acme", "other"), "a", PROBE, "en", "acme other a"),
    ];
    runtime
        .block_on(client.upsert_points(qdrant::UpsertPoints {
            collection_name: collection.clone(),
            wait: Some(true),
            points,
            ..Default::default()
        }))
        .unwrap();

    let mut ids = hit_ids(&search(&connector, &target, PROBE, 10, None));
    ids.sort();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(
        hit_ids(&search(&connector, &target, PROBE, 10, Some(exact("lang", "en de")))),
        ["b"]
    );
    assert_eq!(
        hit_ids(&search(&connector, &target, PROBE, 10, Some(exact("lang", "' OR 1=1 --")))),
        Vec::<String>::new()
    );
    let fetched = connector.fetch(&target, &[id("a"), id("missing")]).unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].content.as_deref(), Some("acme a"));
    assert_eq!(connector.delete(&target, &id("a")).unwrap().outcome, MutationOutcome::Deleted);
    assert_eq!(connector.delete(&target, &id("a")).unwrap().outcome, MutationOutcome::NotFound);
    assert_eq!(connector.fetch(&scope("globex", "docs"), &[id("a")]).unwrap().len(), 1);

    let mut wrong = config.clone();
    wrong["dimension"] = serde_json::json!(8);
    assert_eq!(open_json(&wrong).unwrap_err().kind(), ErrorKind::Configuration);

    runtime
        .block_on(client.delete_collection(qdrant::DeleteCollection {
            collection_name: collection,
            ..Default::default()
        }))
        .unwrap();
}

/// The certification suite, in-process, against the live server: the server backend must be
/// certified for exactly what it declares (event_feed; search, fetch, delete).
#[test]
fn the_server_backend_is_certified_against_a_live_server() {
    use kyro_certification::Verdict;

    let Some(url) = server_url() else { return };
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let mut config = serde_json::json!({
        "backend": "server",
        "url": url,
        "collection": format!("kyro_cert_{}_{nanos}", std::process::id()),
        "dimension": 8,
        "filterable_keys": ["lang", "year"],
        "create_collection": true,
    });
    if let Ok(key) = std::env::var("KYRO_QDRANT_API_KEY") {
        config["api_key"] = serde_json::json!({ "value": key });
    }
    let options = kyro_certification::Options {
        depth: kyro_certification::Depth::Standard,
        seed: None,
        call_timeout: std::time::Duration::from_secs(30),
        budget: None,
    };
    let report = kyro_certification::certify_connector::<kyro_connector_qdrant::QdrantConnector>(
        &config, options,
    )
    .unwrap();
    assert_eq!(report.verdict, Verdict::Certified, "{}", report.summary_line());
    assert_eq!(report.profile, "qdrant/event_feed");
}
