//! The checks: one function each, registered in [`CATALOG`] with a stable id, and the state of
//! one run they share ([`Run`]).
//!
//! A check function returns `Ok(())` when the connector did what the contract requires and
//! `Err(status)` otherwise: a failure with its witness, or an error when it could not tell.
//! Whether a check applies is decided from the connector's declared capabilities only, before
//! anything else, so a check of an undeclared mode is `not_applicable` even when the private
//! space could not be seeded.

mod abi;
mod bounds;
mod filter;
mod freshness;
mod generated;
mod latency;
mod redaction;
mod scope;
mod unsupported;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use kyro_connector_sdk::{
    CapabilityManifest, Connector, ConnectorError, Document, DocumentId, Embedding, ErrorKind,
    FilterExpr, FilterKey, FilterValue, FilterableKeys, MutationAck, Operation, OwnershipMode,
    RuntimeFilter, Scope, SearchRequest, SearchResponse, SnapshotVersion, StoredDocument,
    Watermark, WatermarkKind,
};

use crate::conformance::{self, Generated, Outcome, Property, Sizes, WITNESS_FIELD_CAP, Writes};
use crate::latency::Timed;
use crate::report::{CheckStatus, CleanupRecord, LeftBehind, Removed, Witness};
use crate::rng::Rng;
use crate::secrets::{CanaryConfig, SecretSet};
use crate::space::{self, Dataset, Naming, Space};
use crate::{Depth, Options, Subject};

type CheckResult = Result<(), CheckStatus>;

/// One named check.
pub(crate) struct Check {
    pub(crate) id: &'static str,
    pub(crate) description: &'static str,
    /// Whether it needs the seeded private space.
    pub(crate) needs_data: bool,
    pub(crate) applies: fn(&CapabilityManifest) -> Result<(), String>,
    run: fn(&mut Run<'_>) -> CheckResult,
}

impl Check {
    /// The suite: the id up to its last dot (`freshness.write_through` for
    /// `freshness.write_through.read_your_write`).
    pub(crate) fn suite(&self) -> String {
        self.id.rsplit_once('.').map_or(self.id, |(suite, _)| suite).to_owned()
    }
}

const fn check(
    id: &'static str,
    description: &'static str,
    applies: fn(&CapabilityManifest) -> Result<(), String>,
    run: fn(&mut Run<'_>) -> CheckResult,
) -> Check {
    Check { id, description, needs_data: true, applies, run }
}

const fn static_check(
    id: &'static str,
    description: &'static str,
    applies: fn(&CapabilityManifest) -> Result<(), String>,
    run: fn(&mut Run<'_>) -> CheckResult,
) -> Check {
    Check { id, description, needs_data: false, applies, run }
}

/// The check that seeds the private space; checks that need data follow from it when it fails.
pub(crate) const SEED_CHECK: &str = "abi.private_space_seeded";

/// Every check, in run order: the manifest, seeding, the generated program and the properties
/// it checks (in the order an answer's findings are attributed), the hand-written checks (reads
/// first, then mutations), latency over every call before it, and redaction, which scans what
/// everything before it produced.
pub(crate) const CATALOG: &[Check] = &[
    static_check(
        "abi.manifest_consistent",
        "the capability manifest is internally consistent and within the contract's limits",
        always,
        abi::manifest_consistent,
    ),
    static_check(
        "abi.describe_stable",
        "describe answers the same manifest every time",
        always,
        abi::describe_stable,
    ),
    static_check(
        "abi.health_reports_store_version",
        "health answers with a non-empty store version",
        always,
        abi::health,
    ),
    static_check(
        SEED_CHECK,
        "the private space is seeded through the connector's write path and every scope reads back",
        needs_search_or_fetch,
        abi::seed_private_space,
    ),
    check(
        Property::Answered.check_id(),
        "every generated request within the declared capabilities and caps is answered, never with a panic or an error",
        needs_search_or_fetch,
        generated::answered,
    ),
    check(
        Property::SearchConfined.check_id(),
        "generated searches in every scope of the space return only that scope's documents, judged by which document each hit is",
        needs_search,
        generated::search_confined,
    ),
    check(
        Property::FetchConfined.check_id(),
        "generated fetches mixing the scope's ids with ids of other scopes return only the scope's documents",
        needs_fetch,
        generated::fetch_confined,
    ),
    check(
        Property::LabelsHonest.check_id(),
        "every returned document is labelled with the scope it comes from (the store's own data, never the request's)",
        needs_search_or_fetch,
        generated::labels_honest,
    ),
    check(
        Property::MutationsConfined.check_id(),
        "upserts and deletes aimed at ids that exist in other scopes change only the written scope (final audit of every scope)",
        needs_write_through_and_fetch,
        generated::mutations_confined,
    ),
    check(
        Property::Fresh.check_id(),
        "after each write, fetch and filtered search see the written version and never an older or deleted one",
        needs_fresh_reads,
        generated::fresh,
    ),
    check(
        Property::AckMatches.check_id(),
        "every write-through ACK names the tenant, namespace, id and outcome of the write asked for, in every scope",
        needs_write_through,
        generated::ack_matches,
    ),
    check(
        Property::AckWatermark.check_id(),
        "every write-through ACK's watermark is the written scope's own (never another scope's)",
        needs_write_through,
        generated::ack_watermark,
    ),
    check(
        Property::FilterExact.check_id(),
        "generated filter trees (and, or, not, in, ranges, nested) select only matching documents",
        needs_filter_search,
        generated::filter_exact,
    ),
    check(
        Property::NoDuplicates.check_id(),
        "no answer repeats an id",
        needs_search_or_fetch,
        generated::no_duplicates,
    ),
    check(
        Property::FetchComplete.check_id(),
        "fetch returns every asked-for document the scope holds",
        needs_fetch,
        generated::fetch_complete,
    ),
    check(
        Property::Sorted.check_id(),
        "hits are sorted by score, nearest first",
        needs_search,
        generated::sorted,
    ),
    check(
        Property::ResultSize.check_id(),
        "a search returns as many hits as match up to top_k unless it reports a shortfall, and reports exhausted only when the list is complete",
        needs_search,
        generated::result_size,
    ),
    check(
        "scope.search_excludes_other_tenant",
        "search never returns another tenant's documents, even when they are the nearest neighbours",
        needs_search,
        scope::search_other_tenant,
    ),
    check(
        "scope.search_excludes_other_namespace",
        "search never returns another namespace's documents, even when they are the nearest neighbours",
        needs_search,
        scope::search_other_namespace,
    ),
    check(
        "scope.fetch_excludes_other_scopes",
        "fetch by id returns only the requested scope's document for an id that exists in several scopes",
        needs_fetch,
        scope::fetch,
    ),
    static_check(
        "scope.empty_scope_refused",
        "requests with an empty, blank or padded tenant or namespace are refused at the connector's decoder",
        always,
        scope::empty_refused,
    ),
    check(
        "filter.semantics",
        "exact, in, range, and, or and not select exactly the matching documents",
        needs_filter_search,
        filter::semantics,
    ),
    check(
        "filter.undeclared_key_refused",
        "a filter on a key that is not declared filterable is refused with invalid_request",
        needs_listed_keys,
        filter::undeclared_key,
    ),
    check(
        "filter.injection_values",
        "filter values from the injection corpus are matched literally (nothing matches) and never executed",
        needs_filter_search,
        filter::injection_values,
    ),
    static_check(
        "filter.malformed_key_refused",
        "filter keys outside ^[A-Za-z0-9_]+$ are refused at the connector's decoder",
        always,
        filter::malformed_key,
    ),
    check(
        "bounds.top_k_respected",
        "search returns at most top_k hits",
        needs_search,
        bounds::top_k_respected,
    ),
    check(
        "bounds.top_k_cap",
        "a top_k over the declared cap is answered with limit_exceeded, never silently truncated",
        needs_search,
        bounds::top_k_cap,
    ),
    check(
        "bounds.fetch_cap",
        "a fetch of more ids than the declared cap is answered with limit_exceeded",
        needs_fetch,
        bounds::fetch_cap,
    ),
    check(
        "bounds.short_result_reported",
        "a result shorter than top_k carries a shortfall report with the right counts",
        needs_filter_search,
        bounds::short_result,
    ),
    check(
        "ids.idempotent_write",
        "writing the same id twice in a scope leaves one document with the latest content",
        needs_fetch,
        bounds::ids_idempotent,
    ),
    check(
        "ids.unicode_and_long_ids",
        "unicode and 1024-byte ids round-trip exactly",
        needs_fetch,
        bounds::ids_unicode_and_long,
    ),
    check(
        "freshness.write_through.ack_names_scope_and_id",
        "an upsert ACK names the requested tenant, namespace and id, with a backend mutation id",
        needs_write_through,
        freshness::write_through_ack,
    ),
    check(
        "freshness.write_through.read_your_write",
        "the read right after an upsert ACK sees the write, by fetch and by search",
        needs_write_through,
        freshness::write_through_read_your_write,
    ),
    check(
        "freshness.write_through.delete_ack",
        "a delete ACK names the scope and id, the next read no longer sees the document, and a second delete is not_found",
        needs_write_through,
        freshness::write_through_delete,
    ),
    check(
        "freshness.write_through.mutations_confined",
        "upsert and delete in one scope never change another tenant's or namespace's document with the same id",
        needs_write_through,
        freshness::write_through_confined,
    ),
    check(
        "freshness.event_feed.external_change_visible",
        "a change written by the store's own writers is visible to the next read (no connector-side caching)",
        needs_event_feed,
        freshness::event_feed_external_change,
    ),
    check(
        "freshness.watermark.advances_in_scope",
        "the native watermark advances after a change in its scope",
        needs_native_watermark,
        freshness::watermark_advances,
    ),
    check(
        "freshness.watermark.ignores_other_tenant",
        "the native watermark stays put when another tenant changes",
        needs_native_watermark,
        freshness::watermark_other_tenant,
    ),
    check(
        "freshness.watermark.ignores_other_namespace",
        "the native watermark stays put when another namespace of the same tenant changes",
        needs_native_watermark,
        freshness::watermark_other_namespace,
    ),
    check(
        "freshness.snapshot_bundle.version_immutable",
        "content served under one snapshot version never changes",
        needs_snapshot_bundle,
        freshness::snapshot_immutable,
    ),
    static_check(
        "unsupported.search",
        "search answers unsupported when not declared",
        |manifest| undeclared(manifest, Operation::Search),
        unsupported::search,
    ),
    static_check(
        "unsupported.fetch",
        "fetch answers unsupported when not declared",
        |manifest| undeclared(manifest, Operation::Fetch),
        unsupported::fetch,
    ),
    static_check(
        "unsupported.upsert",
        "upsert answers unsupported when not declared",
        |manifest| undeclared(manifest, Operation::Upsert),
        unsupported::upsert,
    ),
    static_check(
        "unsupported.delete",
        "delete answers unsupported when not declared",
        |manifest| undeclared(manifest, Operation::Delete),
        unsupported::delete,
    ),
    static_check(
        "unsupported.watermark",
        "watermark answers unsupported when not declared",
        |manifest| undeclared(manifest, Operation::Watermark),
        unsupported::watermark,
    ),
    static_check(
        "unsupported.snapshot_version",
        "snapshot_version answers unsupported when not declared",
        |manifest| undeclared(manifest, Operation::SnapshotVersion),
        unsupported::snapshot_version,
    ),
    static_check(
        "latency.search",
        "search's p50 is within a quarter and its p99 within half of the call timeout",
        needs_search,
        latency::search,
    ),
    static_check(
        "latency.fetch",
        "fetch's p50 is within a quarter and its p99 within half of the call timeout",
        needs_fetch,
        latency::fetch,
    ),
    static_check(
        "latency.upsert",
        "upsert's p50 is within a quarter and its p99 within half of the call timeout",
        needs_write_through,
        latency::upsert,
    ),
    static_check(
        "latency.delete",
        "delete's p50 is within a quarter and its p99 within half of the call timeout",
        needs_write_through,
        latency::delete,
    ),
    static_check(
        "latency.watermark",
        "watermark's p50 is within a quarter and its p99 within half of the call timeout",
        needs_native_watermark,
        latency::watermark,
    ),
    static_check(
        "latency.health",
        "health's p50 is within a quarter and its p99 within half of the call timeout",
        always,
        latency::health,
    ),
    check(
        "redaction.canary_secret_contained",
        "canary credentials placed in the configuration (user, password in both URL forms, host, whole value) never appear in errors, panics, log lines, Debug output or answers",
        always,
        redaction::canary,
    ),
    static_check(
        "redaction.no_secret_in_errors",
        "no part of a configured secret (whole value, password as written or decoded) appears in any error or panic message of the run",
        always,
        redaction::errors,
    ),
    static_check(
        "redaction.no_secret_in_logs",
        "no part of a configured secret appears in any log line of the run",
        always,
        redaction::logs,
    ),
];

// Applicability: `Err(reason)` names the undeclared capability.

fn always(_: &CapabilityManifest) -> Result<(), String> {
    Ok(())
}

fn declared(manifest: &CapabilityManifest, operation: Operation) -> Result<(), String> {
    if manifest.supports(operation) {
        Ok(())
    } else {
        Err(format!("operation {} is not declared", operation.as_str()))
    }
}

fn undeclared(manifest: &CapabilityManifest, operation: Operation) -> Result<(), String> {
    if manifest.supports(operation) {
        Err(format!(
            "operation {} is declared; its behaviour is checked by the other suites",
            operation.as_str()
        ))
    } else {
        Ok(())
    }
}

fn needs_search(manifest: &CapabilityManifest) -> Result<(), String> {
    declared(manifest, Operation::Search)
}

fn needs_fetch(manifest: &CapabilityManifest) -> Result<(), String> {
    declared(manifest, Operation::Fetch)
}

fn needs_search_or_fetch(manifest: &CapabilityManifest) -> Result<(), String> {
    needs_search(manifest)
        .or_else(|_| needs_fetch(manifest))
        .map_err(|_| "neither search nor fetch is declared".to_owned())
}

fn needs_filter_search(manifest: &CapabilityManifest) -> Result<(), String> {
    needs_search(manifest)?;
    match &manifest.filterable_keys {
        FilterableKeys::Listed(keys) if keys.is_empty() => {
            Err("no filterable metadata key is declared".to_owned())
        }
        _ => Ok(()),
    }
}

fn needs_listed_keys(manifest: &CapabilityManifest) -> Result<(), String> {
    needs_search(manifest)?;
    match &manifest.filterable_keys {
        FilterableKeys::Listed(_) => Ok(()),
        FilterableKeys::AnyValidKey => Err("every valid key is declared filterable".to_owned()),
    }
}

fn needs_mode(manifest: &CapabilityManifest, mode: OwnershipMode) -> Result<(), String> {
    if manifest.backs(mode) {
        Ok(())
    } else {
        Err(format!("ownership mode {} is not declared", mode.as_str()))
    }
}

fn needs_write_through(manifest: &CapabilityManifest) -> Result<(), String> {
    needs_mode(manifest, OwnershipMode::WriteThrough)
}

fn needs_write_through_and_fetch(manifest: &CapabilityManifest) -> Result<(), String> {
    needs_write_through(manifest)?;
    needs_fetch(manifest)
}

fn needs_event_feed(manifest: &CapabilityManifest) -> Result<(), String> {
    needs_mode(manifest, OwnershipMode::EventFeed)
}

/// Reads must see writes under write-through (the ACK) and event-feed (the store's own writers);
/// snapshot and best-effort stores promise neither.
fn needs_fresh_reads(manifest: &CapabilityManifest) -> Result<(), String> {
    needs_search_or_fetch(manifest)?;
    needs_write_through(manifest).or_else(|_| needs_event_feed(manifest)).map_err(|_| {
        "neither write_through nor event_feed is declared, so reads need not see writes".to_owned()
    })
}

fn needs_snapshot_bundle(manifest: &CapabilityManifest) -> Result<(), String> {
    needs_mode(manifest, OwnershipMode::SnapshotBundle)
}

fn needs_native_watermark(manifest: &CapabilityManifest) -> Result<(), String> {
    if manifest.watermark_kind == WatermarkKind::PerScopeNative {
        Ok(())
    } else {
        Err(format!("watermark kind is {}, not per_scope_native", manifest.watermark_kind.as_str()))
    }
}

/// The state of one certification run.
pub(crate) struct Run<'a> {
    subject: &'a Subject<'a>,
    options: Options,
    timed: Timed<'a>,
    manifest: CapabilityManifest,
    space: Space,
    rng: Rng,
    seed: u64,
    dataset: Option<Dataset>,
    generated: Option<Generated>,
    outcome: Option<Outcome>,
    /// Whether `certification_seed` works; unknown until first tried.
    seed_supported: Option<bool>,
    /// Every error any call of the run produced (message and `Debug`), for the redaction checks.
    errors_seen: Vec<String>,
    /// Every document written, per scope, for cleanup.
    written: BTreeMap<Scope, BTreeSet<DocumentId>>,
    store_version: Option<String>,
    /// Configured secrets and every canary part: nothing in a report may contain them.
    secrets: SecretSet,
    canaries: Vec<CanaryConfig>,
    /// Whether the private space was seeded.
    seeded: Result<(), String>,
    /// Documents seeded: in all, and in the primary generated scope.
    volume: (usize, usize),
    current_check: &'static str,
    /// The check during which the connector panicked or timed out, and so was quarantined.
    quarantined_by: Option<&'static str>,
    /// Whether the current check met a quarantined connector.
    met_quarantine: bool,
    /// The earlier check the current check's failure follows from, when it says so itself.
    follows_from: Option<&'static str>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(subject: &'a Subject<'a>, options: Options, seed: u64) -> Self {
        let manifest = subject.connector.describe();
        let rng = Rng::new(seed);
        let writes = Writes::for_manifest(&manifest);
        let (naming, reason) = match writes {
            Writes::WriteThrough => (
                Naming::Unprefixed,
                "the connector writes and deletes through its declared operations, so the space needs no prefix",
            ),
            Writes::StoreWriter | Writes::None => (
                Naming::Prefixed,
                "the connector writes only through certification_seed, which the SDK confines to tenants with the certification prefix",
            ),
        };
        let nonce = Rng::new(crate::rng::fresh_u64()).hex(10);
        let space = Space::new(&mut rng.fork("names"), &nonce, naming, reason);
        let mut secrets = SecretSet::from_config(subject.config);
        let canaries = crate::secrets::canary_configs(subject.config, &mut rng.fork("canary"));
        for canary in &canaries {
            secrets.extend(&canary.parts);
        }
        Self {
            subject,
            options,
            timed: Timed::new(subject.connector),
            manifest,
            space,
            rng,
            seed,
            dataset: None,
            generated: None,
            outcome: None,
            seed_supported: None,
            errors_seen: Vec::new(),
            written: BTreeMap::new(),
            store_version: None,
            secrets,
            canaries,
            seeded: Err("the private space has not been seeded yet".to_owned()),
            volume: (0, 0),
            current_check: "",
            quarantined_by: None,
            met_quarantine: false,
            follows_from: None,
        }
    }

    pub(crate) fn profile_name(&self) -> String {
        let modes: Vec<&str> =
            self.manifest.ownership_modes.iter().map(|mode| mode.as_str()).collect();
        let modes = if modes.is_empty() { "no_ownership_mode".to_owned() } else { modes.join("+") };
        format!("{}/{modes}", self.subject.plugin.name)
    }

    pub(crate) fn space(&self) -> &Space {
        &self.space
    }

    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    pub(crate) fn sizes(&self) -> Sizes {
        match self.options.depth {
            Depth::Standard => Sizes::STANDARD,
            Depth::Deep => Sizes::DEEP,
        }
    }

    /// Documents seeded: in all, and in the primary generated scope.
    pub(crate) fn volume(&self) -> (usize, usize) {
        self.volume
    }

    pub(crate) fn store_version(&self) -> Option<String> {
        self.store_version.clone()
    }

    pub(crate) fn secrets(&self) -> &SecretSet {
        &self.secrets
    }

    pub(crate) fn latency(&self) -> Vec<crate::latency::OperationLatency> {
        crate::latency::TIMED_OPERATIONS
            .iter()
            .filter_map(|operation| {
                crate::latency::summarize(
                    operation,
                    &self.timed.samples(operation),
                    self.options.call_timeout,
                )
            })
            .collect()
    }

    /// Whether the private space was seeded, and why not.
    pub(crate) fn seeded(&self) -> &Result<(), String> {
        &self.seeded
    }

    /// Runs one check, honouring applicability and catching panics of the harness itself.
    /// Returns its status and the earlier check its failure follows from, if any.
    pub(crate) fn run_check(&mut self, check: &Check) -> (CheckStatus, Option<&'static str>) {
        self.current_check = check.id;
        self.met_quarantine = false;
        self.follows_from = None;
        let status = match catch_unwind(AssertUnwindSafe(|| (check.run)(self))) {
            Ok(Ok(())) => CheckStatus::Passed,
            Ok(Err(status)) => status,
            Err(_) => CheckStatus::Error {
                reason: "the check itself panicked; this is a bug in kyro-certification".to_owned(),
            },
        };
        let follows = match (&status, self.follows_from, self.quarantined_by) {
            (CheckStatus::Passed | CheckStatus::NotApplicable { .. }, _, _) => None,
            (_, Some(earlier), _) => Some(earlier),
            (_, None, Some(quarantined_by))
                if self.met_quarantine && quarantined_by != check.id =>
            {
                Some(quarantined_by)
            }
            _ => None,
        };
        (status, follows)
    }

    /// The connector, with every call timed.
    pub(crate) fn connector(&self) -> &dyn Connector {
        &self.timed
    }

    fn dataset(&self) -> Result<&Dataset, CheckStatus> {
        self.dataset.as_ref().ok_or_else(|| CheckStatus::Error {
            reason: "the private space was not seeded".to_owned(),
        })
    }

    /// Notes an error: for the redaction checks, and for quarantine tracking.
    pub(crate) fn observe_error(&mut self, err: &ConnectorError) {
        self.errors_seen.push(format!("{err} / {err:?}"));
        match err.kind() {
            ErrorKind::Panicked | ErrorKind::Timeout => {
                self.quarantined_by.get_or_insert(self.current_check);
            }
            ErrorKind::Quarantined => self.met_quarantine = true,
            _ => {}
        }
    }

    /// Maps an unexpected connector error to an outcome: panics are failures; unavailability,
    /// timeouts and quarantine mean the check could not tell.
    fn unexpected(&mut self, sent: &str, err: &ConnectorError) -> CheckStatus {
        self.observe_error(err);
        match err.kind() {
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Quarantined => {
                CheckStatus::Error { reason: format!("{sent}: {err}") }
            }
            _ => fail(sent, format!("error {err}"), "an answer"),
        }
    }

    fn expect_ok<T>(
        &mut self,
        sent: &str,
        result: kyro_connector_sdk::Result<T>,
    ) -> Result<T, CheckStatus> {
        result.map_err(|err| self.unexpected(sent, &err))
    }

    /// Expects an error of `kind`; anything else is a failure with a witness.
    fn expect_error<T: Answer>(
        &mut self,
        sent: &str,
        result: kyro_connector_sdk::Result<T>,
        kind: ErrorKind,
    ) -> CheckResult {
        match result {
            Err(err) if err.kind() == kind => {
                self.observe_error(&err);
                Ok(())
            }
            Err(err) => Err(self.unexpected(sent, &err)),
            Ok(value) => Err(fail(
                sent,
                format!("success: {}", value.summary()),
                format!("an error of kind {}", kind.as_str()),
            )),
        }
    }

    /// Sends a payload the typed API refuses to build; the connector's decoder must refuse it
    /// too (any error but a panic).
    fn expect_refused_at_decoder(&mut self, sent: &str, payload: &[u8]) -> CheckResult {
        match (self.subject.raw_call)(payload) {
            Ok(response) => Err(fail(
                sent,
                format!("accepted, answered {} bytes", response.len()),
                "an invalid_request error",
            )),
            Err(err) if err.kind() == ErrorKind::Panicked => Err(self.unexpected(sent, &err)),
            Err(err) => {
                self.observe_error(&err);
                Ok(())
            }
        }
    }

    /// Writes into the private space: through `certification_seed` in scopes it may touch,
    /// otherwise through upsert.
    fn write(&mut self, scope: &Scope, documents: &[Document]) -> CheckResult {
        let sent = format!("write {} documents into {}", documents.len(), self.space.alias(scope));
        if space::seedable(scope) && self.seed_supported != Some(false) {
            let result = self.connector().certification_seed(scope, documents);
            match result {
                Ok(()) => {
                    self.seed_supported = Some(true);
                    self.record_documents(scope, documents);
                    return Ok(());
                }
                Err(err) if err.kind() == ErrorKind::Unsupported => {
                    self.seed_supported = Some(false);
                }
                Err(err) => {
                    // Whatever was written before the failure must still be cleaned up.
                    self.record_documents(scope, documents);
                    return Err(self.unexpected(&sent, &err));
                }
            }
        }
        if !self.manifest.supports(Operation::Upsert) {
            return Err(CheckStatus::Error {
                reason: "the connector offers no way to write into the certification space: implement certification_seed or declare upsert".to_owned(),
            });
        }
        for document in documents {
            self.record_documents(scope, std::slice::from_ref(document));
            let result = self.connector().upsert(scope, document);
            self.expect_ok(&sent, result)?;
        }
        Ok(())
    }

    fn record_documents(&mut self, scope: &Scope, documents: &[Document]) {
        let ids = self.written.entry(scope.clone()).or_default();
        ids.extend(documents.iter().map(|document| document.id().clone()));
    }

    fn search(
        &mut self,
        scope: &Scope,
        request: &SearchRequest,
    ) -> Result<SearchResponse, CheckStatus> {
        let result = self.connector().search(scope, request);
        let sent = self.describe_search(scope, request);
        self.expect_ok(&sent, result)
    }

    fn fetch(&mut self, scope: &Scope, ids: &[&str]) -> Result<Vec<StoredDocument>, CheckStatus> {
        let ids = to_ids(ids);
        let result = self.connector().fetch(scope, &ids);
        let sent = self.describe_fetch(scope, &ids);
        self.expect_ok(&sent, result)
    }

    fn probe_request(
        &self,
        top_k: u32,
        filter: Option<FilterExpr>,
    ) -> Result<SearchRequest, CheckStatus> {
        let dataset = self.dataset()?;
        Ok(SearchRequest {
            embedding: Embedding::new(dataset.probe.clone())
                .map_err(|err| CheckStatus::Error { reason: err.to_string() })?,
            top_k,
            filter: filter
                .map(RuntimeFilter::new)
                .transpose()
                .map_err(|err| CheckStatus::Error { reason: err.to_string() })?,
            include_content: true,
        })
    }

    fn key(&self) -> Result<FilterKey, CheckStatus> {
        FilterKey::new(self.dataset()?.key.clone())
            .map_err(|err| CheckStatus::Error { reason: err.to_string() })
    }

    /// Ids of a search in the home scope with `filter`, top_k large enough for every home doc.
    fn filtered_home_ids(
        &mut self,
        filter: FilterExpr,
    ) -> Result<(String, BTreeSet<String>), CheckStatus> {
        let request = self.probe_request(20.min(self.manifest.caps.max_top_k), Some(filter))?;
        let home = self.space.home.clone();
        let response = self.search(&home, &request)?;
        Ok((
            self.describe_search(&home, &request),
            response.hits.iter().map(|hit| hit.document.id.as_str().to_owned()).collect(),
        ))
    }

    fn describe_search(&self, scope: &Scope, request: &SearchRequest) -> String {
        let filter = request.filter.as_ref().map_or_else(
            || "none".to_owned(),
            |filter| abbreviate(&conformance::describe_filter(filter.root())),
        );
        format!(
            "search {} top_k={} filter={filter} (query: the probe vector)",
            self.space.alias(scope),
            request.top_k
        )
    }

    fn describe_fetch(&self, scope: &Scope, ids: &[DocumentId]) -> String {
        let ids: Vec<&str> = ids.iter().map(DocumentId::as_str).collect();
        format!("fetch {} ids={}", self.space.alias(scope), abbreviate(&format!("{ids:?}")))
    }

    /// Removes everything the run wrote: purge where the SDK allows it, otherwise delete each
    /// written id; then reads back every written id to prove the space is empty.
    pub(crate) fn cleanup(&mut self) -> CleanupRecord {
        let written = std::mem::take(&mut self.written);
        // Remove everything first, then read back: a read in one scope may legitimately
        // reach no other scope's rows only once those are gone too.
        let attempts: Vec<(&Scope, &BTreeSet<DocumentId>, &'static str, Option<String>)> = written
            .iter()
            .map(|(scope, ids)| {
                let (method, problem) = self.remove(scope, ids);
                (scope, ids, method, problem)
            })
            .collect();
        let mut removed = Vec::new();
        let mut left_behind = Vec::new();
        for (scope, ids, method, problem) in attempts {
            let alias = self.space.alias(scope);
            let some_ids = |ids: &mut dyn Iterator<Item = &DocumentId>| {
                ids.take(5).map(|id| id.as_str().to_owned()).collect()
            };
            let outcome = match problem {
                Some(reason) => Err((ids.len(), some_ids(&mut ids.iter()), reason)),
                None => match self.remaining(scope, ids) {
                    None => Ok(()),
                    Some(Ok(remaining)) if remaining.is_empty() => Ok(()),
                    Some(Ok(remaining)) => Err((
                        remaining.len(),
                        some_ids(&mut remaining.iter()),
                        format!(
                            "{method} answered, but {} written documents still read back",
                            remaining.len()
                        ),
                    )),
                    Some(Err(reason)) => Err((ids.len(), some_ids(&mut ids.iter()), reason)),
                },
            };
            match outcome {
                Ok(()) => removed.push(Removed { scope: alias, method, documents: ids.len() }),
                Err((documents, ids, reason)) => {
                    left_behind.push(LeftBehind { scope: alias, documents, ids, reason });
                }
            }
        }
        removed.sort_by(|left, right| left.scope.cmp(&right.scope));
        left_behind.sort_by(|left, right| left.scope.cmp(&right.scope));
        CleanupRecord::new(removed, left_behind)
    }

    /// Removes `ids` from `scope`; the method used and, if it failed, why.
    fn remove(
        &mut self,
        scope: &Scope,
        ids: &BTreeSet<DocumentId>,
    ) -> (&'static str, Option<String>) {
        let purge_error = if space::seedable(scope) {
            match self.subject.connector.certification_purge(scope) {
                Ok(()) => return ("purge", None),
                Err(err) => {
                    self.observe_error(&err);
                    Some(err)
                }
            }
        } else {
            None
        };
        if !self.manifest.supports(Operation::Delete) {
            let purge = purge_error.map_or_else(String::new, |err| format!("purge: {err}; "));
            return ("delete", Some(format!("{purge}delete is not declared")));
        }
        for id in ids {
            if let Err(err) = self.subject.connector.delete(scope, id) {
                self.observe_error(&err);
                let purge = purge_error.map_or_else(String::new, |err| format!("purge: {err}; "));
                return ("delete", Some(format!("{purge}delete of {:?}: {err}", id.as_str())));
            }
        }
        ("delete", None)
    }

    /// The written ids that still read back, when fetch is declared.
    fn remaining(
        &mut self,
        scope: &Scope,
        ids: &BTreeSet<DocumentId>,
    ) -> Option<Result<Vec<DocumentId>, String>> {
        if !self.manifest.supports(Operation::Fetch) {
            return None;
        }
        let ids: Vec<DocumentId> = ids.iter().cloned().collect();
        let mut remaining = Vec::new();
        for chunk in ids.chunks((self.manifest.caps.max_fetch_ids as usize).max(1)) {
            match self.subject.connector.fetch(scope, chunk) {
                Ok(documents) => {
                    remaining.extend(documents.into_iter().map(|document| document.id))
                }
                Err(err) => {
                    self.observe_error(&err);
                    return Some(Err(format!("the read-back after cleanup failed: {err}")));
                }
            }
        }
        Some(Ok(remaining))
    }
}

impl conformance::Harness for Run<'_> {
    fn connector(&self) -> &dyn Connector {
        &self.timed
    }

    fn manifest(&self) -> &CapabilityManifest {
        &self.manifest
    }

    fn store_write(&mut self, scope: &Scope, documents: &[Document]) -> Result<(), String> {
        self.write(scope, documents).map_err(|status| describe_status(&status))
    }

    fn record_written(&mut self, scope: &Scope, id: &DocumentId) {
        self.written.entry(scope.clone()).or_default().insert(id.clone());
    }

    fn observe_error(&mut self, err: &ConnectorError) {
        Run::observe_error(self, err);
    }
}

/// A short account of a successful answer for witnesses, never a `Debug` dump.
pub(crate) trait Answer {
    fn summary(&self) -> String;
}

impl Answer for SearchResponse {
    fn summary(&self) -> String {
        let ids: Vec<&str> = self.hits.iter().map(|hit| hit.document.id.as_str()).collect();
        abbreviate(&format!("{} hits: {ids:?}", self.hits.len()))
    }
}

impl Answer for Vec<StoredDocument> {
    fn summary(&self) -> String {
        let ids: Vec<&str> = self.iter().map(|document| document.id.as_str()).collect();
        abbreviate(&format!("{} documents: {ids:?}", self.len()))
    }
}

impl Answer for MutationAck {
    fn summary(&self) -> String {
        format!("an ack for {:?}, outcome {}", self.id.as_str(), self.outcome.as_str())
    }
}

impl Answer for Watermark {
    fn summary(&self) -> String {
        format!("watermark {}", self.value())
    }
}

impl Answer for SnapshotVersion {
    fn summary(&self) -> String {
        format!("snapshot version {:?}", self.as_str())
    }
}

fn fail(
    sent: impl Into<String>,
    received: impl Into<String>,
    expected: impl Into<String>,
) -> CheckStatus {
    CheckStatus::Failed { witness: Witness::new(sent, received, expected) }
}

fn describe_status(status: &CheckStatus) -> String {
    match status {
        CheckStatus::Failed { witness } => {
            format!("{} answered {}", witness.sent, witness.received)
        }
        CheckStatus::Error { reason } | CheckStatus::NotApplicable { reason } => reason.clone(),
        CheckStatus::Passed => "passed".to_owned(),
    }
}

fn abbreviate(text: &str) -> String {
    conformance::cap(text, WITNESS_FIELD_CAP / 2)
}

fn to_ids(ids: &[&str]) -> Vec<DocumentId> {
    ids.iter().filter_map(|id| DocumentId::new(*id).ok()).collect()
}

fn describe_hits(space: &Space, response: &SearchResponse) -> String {
    let hits: Vec<String> = response
        .hits
        .iter()
        .map(|hit| format!("{} labelled {}", hit.document.id, space.alias(&hit.document.scope)))
        .collect();
    abbreviate(&format!("{} hits: {}", hits.len(), hits.join(", ")))
}

fn exact(key: &FilterKey, value: &str) -> Result<FilterExpr, CheckStatus> {
    let value =
        FilterValue::new(value).map_err(|err| CheckStatus::Error { reason: err.to_string() })?;
    Ok(FilterExpr::Exact { key: key.clone(), value })
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}
