//! The built cdylib, loaded through the SDK's loader, answers like the connector linked
//! in-process on the embedded backend.
//!
//! Cargo does not build a package's cdylib for its own integration tests on every run; it is
//! built by `cargo build --workspace` (or `cargo build -p kyro-connector-qdrant`), which the
//! README's test command runs first. A missing file fails with that command in the message.

use std::path::PathBuf;

use kyro_connector_sdk::loader;
use kyro_connector_sdk::{Connector, ConnectorConfig, HostContext};

use crate::common::{TempDir, doc, embedded_config, exact, id, open_embedded, request, scope};

fn plugin_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    let file_name = format!(
        "{}kyro_connector_qdrant{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let path = profile_dir.join(file_name);
    assert!(
        path.exists(),
        "the qdrant connector cdylib {} is not built; run `cargo build -p kyro-connector-qdrant` (or `cargo build --workspace`) first",
        path.display()
    );
    path
}

#[test]
fn the_loaded_plugin_answers_like_the_linked_connector() {
    let plugin = loader::load(&plugin_path()).unwrap();
    assert_eq!(plugin.info().name, "qdrant");
    let foreign_dir = TempDir::new("plugin-foreign");
    let linked_dir = TempDir::new("plugin-linked");
    let foreign = plugin
        .open(
            &ConnectorConfig::from_json(embedded_config(foreign_dir.path()).to_string()),
            HostContext::discard(),
        )
        .unwrap();
    let linked = open_embedded(linked_dir.path());
    assert_eq!(foreign.describe(), linked.describe());
    assert_eq!(foreign.health().unwrap(), linked.health().unwrap());
    let target = scope("acme", "docs");
    let connectors: [&dyn Connector; 2] = [&foreign, &linked];
    for connector in connectors {
        for n in 0..6 {
            let lang = if n % 2 == 0 { "en" } else { "de" };
            let document = doc(&format!("d{n}"), [1.0, n as f32, 0.5, 0.0], &[("lang", lang)], "c");
            let ack = connector.upsert(&target, &document).unwrap();
            assert_eq!(ack.id.as_str(), format!("d{n}"));
        }
        connector
            .upsert(&scope("globex", "docs"), &doc("d0", [1.0, 0.0, 0.5, 0.0], &[], "g"))
            .unwrap();
    }
    let query = request([1.0, 2.0, 0.5, 0.0], 4, Some(exact("lang", "en")));
    assert_eq!(foreign.search(&target, &query).unwrap(), linked.search(&target, &query).unwrap());
    let ids = [id("d1"), id("d4"), id("missing")];
    assert_eq!(foreign.fetch(&target, &ids).unwrap(), linked.fetch(&target, &ids).unwrap());
    let foreign_ack = foreign.delete(&target, &id("d3")).unwrap();
    let linked_ack = linked.delete(&target, &id("d3")).unwrap();
    assert_eq!(foreign_ack.outcome, linked_ack.outcome);
    let err = foreign.watermark(&target).unwrap_err();
    assert_eq!(err.kind(), kyro_connector_sdk::ErrorKind::Unsupported);
    let err = foreign.search(&target, &request([1.0; 4], 500, None)).unwrap_err();
    assert_eq!(err.kind(), kyro_connector_sdk::ErrorKind::LimitExceeded);
}
