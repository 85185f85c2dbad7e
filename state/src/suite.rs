//! The state store's conformance suite, written once and run against every backend, as
//! Quickwit's storage test suite is: the crate's integration tests call these functions for
//! SQLite (`tests/it/sqlite.rs`) and PostgreSQL (`tests/it/postgres.rs`). Behind the
//! `test-suite` feature; nothing else in the crate is public for tests.
//!
//! Each function takes the URL of a fresh, empty database and owns everything it opens; the
//! callers create and remove the database. Nothing here knows which backend it runs on, and
//! every function panics with a message on the first check that fails.

pub mod batch;
pub mod concurrency;
pub mod crash;
pub mod evidence;
pub mod hosts;
pub mod idempotency;
pub mod ledger;
pub mod order;

use std::path::{Path, PathBuf};

use crate::{
    ChangeInput, DocumentChange, DocumentKey, EventTenant, ScopeChange, ScopeGeneration,
    SourceEvent, StateStore,
};

/// A fresh SQLite database in its own temporary directory, removed on drop: what the suite's
/// functions take on SQLite.
#[derive(Debug)]
pub struct SqliteFile {
    dir: PathBuf,
    url: String,
}

impl SqliteFile {
    /// Creates the directory; the store creates the file when it is opened.
    ///
    /// # Panics
    ///
    /// The temporary directory cannot be created.
    pub fn create() -> Self {
        let dir =
            std::env::temp_dir().join(format!("kyro-state-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        let url = format!("sqlite://{}", dir.join("state.db").display());
        Self { dir, url }
    }

    /// The database's `sqlite://` URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory it lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SqliteFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn open(url: &str) -> StateStore {
    match StateStore::open(url).await {
        Ok(store) => store,
        Err(error) => panic!("failed to open the state store: {}", error_chain(&error)),
    }
}

/// The error and all its sources, one per line, as an operator would see them.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str("\n  caused by: ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

fn keys(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|&key| key.to_owned()).collect()
}

fn event_change(source_event_id: &str, fingerprint: &str, scope_keys: &[&str]) -> ChangeInput {
    ChangeInput {
        source_event: Some(SourceEvent::new(
            EventTenant::Tenant("acme".to_owned()),
            source_event_id,
        )),
        fingerprint: fingerprint.to_owned(),
        scope_keys: scope_keys
            .iter()
            .map(|&key| ScopeChange { key: key.to_owned(), trigger: "change_event".to_owned() })
            .collect(),
        documents: Vec::new(),
        now_ms: 1_700_000_000_000,
        capture: None,
    }
}

fn invalidation(scope_keys: &[&str]) -> ChangeInput {
    ChangeInput {
        source_event: None,
        fingerprint: String::new(),
        scope_keys: scope_keys
            .iter()
            .map(|&key| ScopeChange {
                key: key.to_owned(),
                trigger: "manual_invalidation".to_owned(),
            })
            .collect(),
        documents: Vec::new(),
        now_ms: 1_700_000_000_000,
        capture: None,
    }
}

fn document_key(tenant_id: &str, namespace: &str, doc_id: &str) -> DocumentKey {
    DocumentKey {
        tenant_id: tenant_id.to_owned(),
        namespace: namespace.to_owned(),
        doc_id: doc_id.to_owned(),
    }
}

fn document_change(
    key: &DocumentKey,
    revision: Option<&str>,
    watermark: Option<u64>,
    tombstone: bool,
) -> DocumentChange {
    DocumentChange {
        key: key.clone(),
        revision: revision.map(str::to_owned),
        watermark,
        tombstone,
        event_timestamp_ms: None,
    }
}

fn scope_generation(
    key: &str,
    generation: u64,
    acknowledged_at_ms: i64,
    trigger: &str,
) -> ScopeGeneration {
    ScopeGeneration {
        key: key.to_owned(),
        generation,
        acknowledged_at_ms,
        trigger: trigger.to_owned(),
    }
}
