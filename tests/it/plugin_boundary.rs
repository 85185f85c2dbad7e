//! The plugin boundary with real cdylibs: round trips, panics, hangs, ABI versions and runtimes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kyro_connector_sdk::guard::{GuardConfig, GuardedConnector};
use kyro_connector_sdk::loader::{self, LoadError};
use kyro_connector_sdk::testing::MemoryConnector;
use kyro_connector_sdk::{
    Connector, ConnectorPlugin, Document, DocumentId, Embedding, ErrorKind, FilterExpr, FilterKey,
    FilterValue, HostContext, Metadata, RuntimeFilter, Scope, SearchRequest,
};
use kyro_e2e::{fixture_package, memory_config, plugin_path};
use kyro_fixture_support::Defect;

const DIMENSION: u32 = 16;

fn open_plugin(defect: Defect) -> Box<dyn Connector> {
    let plugin = loader::load(&plugin_path(&fixture_package(defect))).unwrap();
    Box::new(plugin.open(&memory_config(DIMENSION, None), HostContext::discard()).unwrap())
}

fn guarded(defect: Defect, timeout: Duration) -> GuardedConnector {
    let connector: Arc<dyn Connector> = Arc::from(open_plugin(defect));
    GuardedConnector::new(
        defect.name(),
        connector,
        GuardConfig { call_timeout: timeout, workers: 2 },
    )
    .unwrap()
}

fn vector(seed: u32) -> Embedding {
    Embedding::new((0..DIMENSION).map(|idx| ((seed * 31 + idx * 7) % 17) as f32 + 1.0).collect())
        .unwrap()
}

fn document(id: &str, seed: u32, lang: &str) -> Document {
    let metadata = Metadata::new(BTreeMap::from([("lang".to_owned(), lang.to_owned())])).unwrap();
    Document::new(
        DocumentId::new(id).unwrap(),
        Some(vector(seed)),
        Some(format!("content of {id}")),
        metadata,
        None,
    )
    .unwrap()
}

fn search_request(seed: u32, filter: Option<FilterExpr>) -> SearchRequest {
    SearchRequest {
        embedding: vector(seed),
        top_k: 5,
        filter: filter.map(|filter| RuntimeFilter::new(filter).unwrap()),
        include_content: true,
    }
}

fn exact(key: &str, value: &str) -> FilterExpr {
    FilterExpr::Exact { key: FilterKey::new(key).unwrap(), value: FilterValue::new(value).unwrap() }
}

/// Runs the same sequence of operations against `connector` and returns every answer, as text.
fn exercise(connector: &dyn Connector) -> Vec<String> {
    let acme = Scope::new("acme", "support").unwrap();
    let globex = Scope::new("globex", "support").unwrap();
    let mut answers = Vec::new();
    for idx in 0..8 {
        let scope = if idx % 2 == 0 { &acme } else { &globex };
        let lang = if idx % 3 == 0 { "de" } else { "en" };
        answers.push(format!(
            "{:?}",
            connector.upsert(scope, &document(&format!("doc-{idx}"), idx, lang))
        ));
    }
    answers.push(format!("{:?}", connector.search(&acme, &search_request(2, None))));
    answers.push(format!(
        "{:?}",
        connector.search(&acme, &search_request(2, Some(exact("lang", "en"))))
    ));
    answers.push(format!("{:?}", connector.search(&globex, &search_request(5, None))));
    let ids = [DocumentId::new("doc-0").unwrap(), DocumentId::new("doc-1").unwrap()];
    answers.push(format!("{:?}", connector.fetch(&acme, &ids)));
    answers.push(format!("{:?}", connector.delete(&acme, &ids[0])));
    answers.push(format!("{:?}", connector.delete(&acme, &ids[0])));
    answers.push(format!("{:?}", connector.watermark(&acme)));
    answers.push(format!("{:?}", connector.snapshot_version(&acme)));
    answers.push(format!(
        "{:?}",
        connector.search(&acme, &SearchRequest { top_k: 51, ..search_request(1, None) })
    ));
    answers.push(format!("{:?}", connector.health()));
    answers.push(format!("{:?}", connector.describe()));
    answers
}

#[test]
fn loaded_plugin_answers_exactly_like_the_same_connector_in_process() {
    let loaded = open_plugin(Defect::None);
    let in_process =
        MemoryConnector::open(&memory_config(DIMENSION, None), HostContext::discard()).unwrap();
    let loaded_answers = exercise(loaded.as_ref());
    let in_process_answers = exercise(&in_process);
    assert_eq!(loaded_answers, in_process_answers);
    // The sequence must have produced real results, not a run of identical errors.
    assert!(loaded_answers[8].contains("doc-"), "search found nothing: {}", loaded_answers[8]);
    assert!(loaded_answers[11].contains("doc-0") && !loaded_answers[11].contains("doc-1"));
    assert!(loaded_answers[15].contains("Unsupported"), "{}", loaded_answers[15]);
    assert!(loaded_answers[16].contains("LimitExceeded"), "{}", loaded_answers[16]);
}

#[test]
fn a_panicking_plugin_returns_an_error_and_is_quarantined_while_others_keep_serving() {
    let panicky = guarded(Defect::PanicsOnNonAscii, Duration::from_secs(5));
    let healthy = guarded(Defect::None, Duration::from_secs(5));
    let scope = Scope::new("acme", "support").unwrap();
    panicky.upsert(&scope, &document("doc-1", 1, "en")).unwrap();

    let ascii = panicky.search(&scope, &search_request(1, Some(exact("lang", "en")))).unwrap();
    assert_eq!(ascii.hits.len(), 1);

    let err =
        panicky.search(&scope, &search_request(1, Some(exact("lang", "日本語")))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked, "{err}");
    assert!(err.message().contains("non-ASCII"), "the panic message is carried: {err}");
    assert!(panicky.quarantine_reason().is_some_and(|reason| reason.contains("panicked")));

    let after = panicky.health().unwrap_err();
    assert_eq!(after.kind(), ErrorKind::Quarantined, "{after}");

    healthy.upsert(&scope, &document("doc-1", 1, "en")).unwrap();
    assert_eq!(healthy.search(&scope, &search_request(1, None)).unwrap().hits.len(), 1);
    assert!(healthy.quarantine_reason().is_none());
}

#[test]
fn a_panic_is_caught_at_the_boundary_even_without_the_guard() {
    let panicky = open_plugin(Defect::PanicsOnNonAscii);
    let scope = Scope::new("acme", "support").unwrap();
    let err = panicky.search(&scope, &search_request(1, Some(exact("lang", "ü")))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    // The plugin instance is still usable from the boundary's point of view.
    assert!(panicky.health().is_ok());
}

#[test]
fn a_plugin_that_never_returns_times_out_within_the_bound_and_is_quarantined() {
    let bound = Duration::from_millis(300);
    let hanging = guarded(Defect::HangsOnSearch, bound);
    let scope = Scope::new("acme", "support").unwrap();
    let started = Instant::now();
    let err = hanging.search(&scope, &search_request(1, None)).unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(waited >= bound, "returned before the bound: {waited:?}");
    assert!(waited < bound + Duration::from_secs(2), "took far longer than the bound: {waited:?}");
    assert!(hanging.quarantine_reason().is_some_and(|reason| reason.contains("timeout")));
    assert_eq!(hanging.health().unwrap_err().kind(), ErrorKind::Quarantined);
}

#[test]
fn a_plugin_of_another_abi_version_is_refused_naming_both_versions() {
    let err = loader::load(&plugin_path("kyro-fixture-abi-mismatch")).unwrap_err();
    assert!(matches!(err, LoadError::AbiMismatch { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("ABI 2.0") && message.contains("ABI 1.0"), "{message}");
}

#[test]
fn files_that_are_not_plugins_are_refused_with_one_line() {
    let dir = std::env::temp_dir().join(format!("kyro-not-a-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text_file = dir.join("plugin.so");
    std::fs::write(&text_file, "not a library").unwrap();
    let not_library = loader::load(&text_file).unwrap_err();
    assert!(matches!(not_library, LoadError::NotALibrary { .. }), "{not_library:?}");

    let missing = loader::load(&dir.join("missing.so")).unwrap_err();
    assert!(matches!(missing, LoadError::Missing { .. }), "{missing:?}");

    // A real shared library that is not a KyroDB plugin: the C library.
    let libc = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|path| path.exists())
        .expect("this Debian machine has libc.so.6");
    let not_plugin = loader::load(&libc).unwrap_err();
    assert!(matches!(not_plugin, LoadError::NotAPlugin { .. }), "{not_plugin:?}");
    for err in [not_library, missing, not_plugin] {
        assert_eq!(err.to_string().lines().count(), 1, "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_plugin_with_its_own_tokio_runtime_works_from_a_thread_without_a_runtime() {
    let connector: Arc<dyn Connector> = Arc::from(open_plugin(Defect::OwnsTokioRuntime));
    let scope = Scope::new("acme", "support").unwrap();
    connector.upsert(&scope, &document("doc-1", 1, "en")).unwrap();
    let worker = {
        let connector = Arc::clone(&connector);
        let scope = scope.clone();
        std::thread::spawn(move || connector.search(&scope, &search_request(1, None)))
    };
    let response = worker.join().unwrap().unwrap();
    assert_eq!(response.hits.len(), 1);
    assert_eq!(response.hits[0].document.id.as_str(), "doc-1");
}

#[test]
fn an_in_process_connector_that_panics_is_caught_by_the_guard() {
    let in_process: Arc<dyn Connector> = Arc::from(
        kyro_fixture_support::open_in_process(
            Defect::PanicsOnNonAscii,
            &memory_config(DIMENSION, None),
            HostContext::discard(),
        )
        .unwrap(),
    );
    let guard = GuardedConnector::new(
        "in-process",
        in_process,
        GuardConfig { call_timeout: Duration::from_secs(5), workers: 1 },
    )
    .unwrap();
    let scope = Scope::new("acme", "support").unwrap();
    let err = guard.search(&scope, &search_request(1, Some(exact("lang", "ß")))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert_eq!(guard.health().unwrap_err().kind(), ErrorKind::Quarantined);
}

#[test]
fn connector_log_lines_cross_the_boundary_to_the_host() {
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let host = HostContext::new(move |level, message| {
        sink.lock().unwrap().push(format!("{level:?} {message}"))
    });
    let plugin = loader::load(&plugin_path(&fixture_package(Defect::None))).unwrap();
    let connector = plugin.open(&memory_config(DIMENSION, None), host).unwrap();
    connector.upsert(&Scope::new("acme", "support").unwrap(), &document("doc-1", 1, "en")).unwrap();
    assert_eq!(*lines.lock().unwrap(), ["Debug upserted one document in acme/support"]);
}
