//! The built cdylib: it loads through the SDK's loader, describes itself without a store, and
//! answers exactly as the connector linked in-process.

use std::path::PathBuf;

use kyro_connector_sdk::loader;
use kyro_connector_sdk::{Connector, ErrorKind, FilterExpr, HostContext, Operation};

use crate::support::{DIMENSION, TestTable, direction, document, exact, id, range, scope, search};

/// `target/<profile>/libkyro_connector_pgvector.so`, next to this test executable's `deps/`.
fn plugin_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir.join(format!(
        "{}kyro_connector_pgvector{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(
        path.exists(),
        "the pgvector plugin {} is not built; run `cargo build --workspace` first",
        path.display()
    );
    path
}

#[test]
fn the_cdylib_loads_and_answers_like_the_in_process_connector() {
    let plugin = loader::load(&plugin_path()).unwrap();
    assert_eq!(plugin.info().name, "pgvector");
    assert!(plugin.info().manifest.supports(Operation::Upsert));

    let table = TestTable::create(DIMENSION);
    let in_process = table.open(serde_json::json!({})).unwrap();
    let loaded = plugin.open(&table.config(serde_json::json!({})), HostContext::discard()).unwrap();
    assert_eq!(loaded.describe(), in_process.describe());

    let mine = scope("tenant-a", "docs");
    for doc_idx in 0..12 {
        let lang = if doc_idx % 3 == 0 { "de" } else { "en" };
        let year = format!("{}", 2000 + doc_idx);
        let doc = document(
            &format!("doc-{doc_idx}"),
            direction(doc_idx % 4, 0.1 * doc_idx as f32),
            &[("lang", lang), ("year", &year)],
        );
        in_process.upsert(&mine, &doc).unwrap();
    }
    let loaded_ack = loaded
        .upsert(&mine, &document("doc-loaded", direction(1, 0.0), &[("lang", "en")]))
        .unwrap();
    assert_eq!(loaded_ack.scope, mine);

    for filter in [
        None,
        Some(exact("lang", "en")),
        Some(FilterExpr::And(vec![exact("lang", "en"), range("year", Some(2004.0), None)])),
        Some(FilterExpr::Not(Box::new(exact("lang", "de")))),
    ] {
        let request = search(direction(1, 0.05), 20, filter);
        assert_eq!(
            loaded.search(&mine, &request).unwrap(),
            in_process.search(&mine, &request).unwrap()
        );
    }
    let ids = [id("doc-1"), id("doc-loaded"), id("missing")];
    assert_eq!(loaded.fetch(&mine, &ids).unwrap(), in_process.fetch(&mine, &ids).unwrap());
    assert_eq!(loaded.watermark(&mine).unwrap(), in_process.watermark(&mine).unwrap());
    assert_eq!(loaded.health().unwrap(), in_process.health().unwrap());

    let too_many = search(direction(0, 0.0), 51, None);
    assert_eq!(loaded.search(&mine, &too_many).unwrap_err().kind(), ErrorKind::LimitExceeded);
    assert_eq!(loaded.snapshot_version(&mine).unwrap_err().kind(), ErrorKind::Unsupported);
}
