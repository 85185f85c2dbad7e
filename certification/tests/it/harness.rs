//! The harness's own rules, proven with the reference store wrapped to fail one way (an
//! in-memory stand-in that tests the harness itself, not a connector): a space that cannot be
//! seeded leaves the checks of undeclared modes not applicable and every data check an error
//! that says it follows from the seeding; a purge that answers but removes nothing leaves the
//! certification invalid, saying what is left and where.

use std::time::Duration;

use kyro_certification::{CheckStatus, Depth, Options, Report, Verdict, certify_connector};
use kyro_connector_sdk::{
    CapabilityManifest, Connector, ConnectorConfig, ConnectorError, ConnectorHealth,
    ConnectorPlugin, Document, DocumentId, HostContext, MutationAck, PluginInfo, Result, Scope,
    SearchRequest, SearchResponse, StoredDocument, Watermark,
};
use kyro_fixture_support::Reference;

/// How the wrapped reference store fails.
trait Failure: Send + Sync + 'static {
    const NAME: &'static str;
    /// Whether writes into the private space fail as unavailable.
    const WRITES_UNAVAILABLE: bool;
    /// Whether `certification_purge` answers without removing anything.
    const PURGE_IS_A_NO_OP: bool;
}

struct CannotWrite;

impl Failure for CannotWrite {
    const NAME: &'static str = "cannot-write";
    const WRITES_UNAVAILABLE: bool = true;
    const PURGE_IS_A_NO_OP: bool = false;
}

struct PurgeForgets;

impl Failure for PurgeForgets {
    const NAME: &'static str = "purge-forgets";
    const WRITES_UNAVAILABLE: bool = false;
    const PURGE_IS_A_NO_OP: bool = true;
}

struct Wrapped<F> {
    inner: Reference,
    failure: std::marker::PhantomData<F>,
}

fn unavailable() -> ConnectorError {
    ConnectorError::unavailable("the store is read-only for maintenance")
}

impl<F: Failure> Connector for Wrapped<F> {
    fn describe(&self) -> CapabilityManifest {
        self.inner.describe()
    }

    fn search(&self, scope: &Scope, request: &SearchRequest) -> Result<SearchResponse> {
        self.inner.search(scope, request)
    }

    fn fetch(&self, scope: &Scope, ids: &[DocumentId]) -> Result<Vec<StoredDocument>> {
        self.inner.fetch(scope, ids)
    }

    fn upsert(&self, scope: &Scope, document: &Document) -> Result<MutationAck> {
        if F::WRITES_UNAVAILABLE {
            return Err(unavailable());
        }
        self.inner.upsert(scope, document)
    }

    fn delete(&self, scope: &Scope, id: &DocumentId) -> Result<MutationAck> {
        self.inner.delete(scope, id)
    }

    fn watermark(&self, scope: &Scope) -> Result<Watermark> {
        self.inner.watermark(scope)
    }

    fn health(&self) -> Result<ConnectorHealth> {
        self.inner.health()
    }

    fn certification_seed(&self, scope: &Scope, documents: &[Document]) -> Result<()> {
        if F::WRITES_UNAVAILABLE {
            return Err(unavailable());
        }
        self.inner.certification_seed(scope, documents)
    }

    fn certification_purge(&self, scope: &Scope) -> Result<()> {
        if F::PURGE_IS_A_NO_OP {
            return Ok(());
        }
        self.inner.certification_purge(scope)
    }
}

impl<F: Failure> ConnectorPlugin for Wrapped<F> {
    fn plugin_info() -> PluginInfo {
        let mut info = Reference::plugin_info();
        info.name = F::NAME.to_owned();
        info
    }

    fn open(config: &ConnectorConfig, host: HostContext) -> Result<Self> {
        Ok(Self { inner: Reference::open(config, host)?, failure: std::marker::PhantomData })
    }
}

fn certify<F: Failure>() -> Report {
    let config = serde_json::json!({
        "dimension": 8,
        "distance": "cosine",
        "filterable_keys": ["lang"],
        "max_top_k": 30,
        "max_fetch_ids": 30,
    });
    let options = Options {
        depth: Depth::Standard,
        seed: None,
        call_timeout: Duration::from_secs(5),
        budget: None,
    };
    certify_connector::<Wrapped<F>>(&config, options).unwrap()
}

#[test]
fn a_space_that_cannot_be_seeded_leaves_undeclared_modes_not_applicable() {
    let report = certify::<CannotWrite>();
    assert_eq!(report.verdict, Verdict::Invalid, "{}", report.summary_line());
    let check = |id: &str| report.checks.iter().find(|check| check.id == id).unwrap();
    let seeded = check("abi.private_space_seeded");
    assert_eq!(seeded.status.as_str(), "error", "{:?}", seeded.status);
    // Undeclared: not applicable, whatever happened to the space.
    assert!(matches!(
        check("freshness.snapshot_bundle.version_immutable").status,
        CheckStatus::NotApplicable { .. }
    ));
    assert!(matches!(check("unsupported.search").status, CheckStatus::NotApplicable { .. }));
    // Declared but needing data: an error that names the seeding as its cause.
    for id in ["scope.generated_search_confined", "filter.semantics", "ids.idempotent_write"] {
        let record = check(id);
        assert_eq!(record.status.as_str(), "error", "{id}: {:?}", record.status);
        assert_eq!(record.follows_from, Some("abi.private_space_seeded"), "{id}");
    }
}

#[test]
fn a_certification_that_cannot_remove_what_it_wrote_is_not_certified() {
    let report = certify::<PurgeForgets>();
    assert_eq!(report.summary.failed + report.summary.errors, 0, "{}", report.summary_line());
    assert_eq!(report.verdict, Verdict::Invalid, "{}", report.summary_line());
    assert!(!report.cleanup.complete);
    // Only the scope the store's own writer seeded is purged (the others are unprefixed and
    // cleaned through delete), so that is exactly what is left, with its ids.
    assert_eq!(report.cleanup.left_behind.len(), 1, "{:?}", report.cleanup);
    let left = &report.cleanup.left_behind[0];
    assert_eq!(left.scope, "P0");
    assert_eq!(left.ids, ["ef-change"]);
    assert!(left.reason.contains("purge answered"), "{}", left.reason);
    assert!(report.cleanup.removed.iter().all(|removed| removed.method == "delete"));
    assert!(report.summary_line().contains("cleanup incomplete"), "{}", report.summary_line());
}
