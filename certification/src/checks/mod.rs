//! The checks: one function each, registered in [`CATALOG`] with a stable id.
//!
//! A check function returns `Ok(())` when the connector did what the contract requires and
//! `Err(status)` otherwise: a failure with its witness, or an error when it could not tell.
//! Whether a check applies is decided from the connector's declared capabilities only.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use kyro_connector_sdk::abi::unchecked;
use kyro_connector_sdk::{
    CapabilityManifest, ConnectorError, Document, DocumentId, Embedding, ErrorKind, FilterExpr,
    FilterKey, FilterValue, FilterableKeys, Operation, OwnershipMode, RuntimeFilter, Scope,
    SearchRequest, SearchResponse, ShortfallReason, StoredDocument, WatermarkKind,
};

use crate::Subject;
use crate::report::{CheckStatus, CleanupRecord, Witness};
use crate::space::{Dataset, SHARED_ID, Space, document, perturbed, unit_vector};

type CheckResult = Result<(), CheckStatus>;

/// One named check.
pub(crate) struct Check {
    pub(crate) id: &'static str,
    pub(crate) description: &'static str,
    /// Whether it needs the seeded private space.
    pub(crate) needs_data: bool,
    applies: fn(&CapabilityManifest) -> Result<(), String>,
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

/// Every check, in run order: reads first, then mutations, then redaction (which scans what
/// everything before it produced).
pub(crate) const CATALOG: &[Check] = &[
    static_check(
        "abi.manifest_consistent",
        "the capability manifest is internally consistent and within the contract's limits",
        always,
        abi_manifest_consistent,
    ),
    static_check(
        "abi.describe_stable",
        "describe answers the same manifest every time",
        always,
        abi_describe_stable,
    ),
    static_check(
        "abi.health_reports_store_version",
        "health answers with a non-empty store version",
        always,
        abi_health,
    ),
    check(
        "scope.search_excludes_other_tenant",
        "search never returns another tenant's documents, even when they are the nearest neighbours",
        needs_search,
        scope_search_other_tenant,
    ),
    check(
        "scope.search_excludes_other_namespace",
        "search never returns another namespace's documents, even when they are the nearest neighbours",
        needs_search,
        scope_search_other_namespace,
    ),
    check(
        "scope.fetch_excludes_other_scopes",
        "fetch by id returns only the requested scope's document for an id that exists in several scopes",
        needs_fetch,
        scope_fetch,
    ),
    static_check(
        "scope.empty_scope_refused",
        "requests with an empty, blank or padded tenant or namespace are refused at the connector's decoder",
        always,
        scope_empty_refused,
    ),
    check(
        "filter.semantics",
        "exact, in, range, and, or and not select exactly the matching documents",
        needs_filter_search,
        filter_semantics,
    ),
    check(
        "filter.undeclared_key_refused",
        "a filter on a key that is not declared filterable is refused with invalid_request",
        needs_listed_keys,
        filter_undeclared_key,
    ),
    check(
        "filter.injection_values",
        "filter values from the injection corpus are matched literally (nothing matches) and never executed",
        needs_filter_search,
        filter_injection_values,
    ),
    static_check(
        "filter.malformed_key_refused",
        "filter keys outside ^[A-Za-z0-9_]+$ are refused at the connector's decoder",
        always,
        filter_malformed_key,
    ),
    check(
        "bounds.top_k_respected",
        "search returns at most top_k hits",
        needs_search,
        bounds_top_k_respected,
    ),
    check(
        "bounds.top_k_cap",
        "a top_k over the declared cap is answered with limit_exceeded, never silently truncated",
        needs_search,
        bounds_top_k_cap,
    ),
    check(
        "bounds.fetch_cap",
        "a fetch of more ids than the declared cap is answered with limit_exceeded",
        needs_fetch,
        bounds_fetch_cap,
    ),
    check(
        "bounds.short_result_reported",
        "a result shorter than top_k carries a shortfall report with the right counts",
        needs_filter_search,
        bounds_short_result,
    ),
    check(
        "ids.idempotent_write",
        "writing the same id twice in a scope leaves one document with the latest content",
        needs_fetch,
        ids_idempotent,
    ),
    check(
        "ids.unicode_and_long_ids",
        "unicode and 1024-byte ids round-trip exactly",
        needs_fetch,
        ids_unicode_and_long,
    ),
    check(
        "freshness.write_through.ack_names_scope_and_id",
        "an upsert ACK names the requested tenant, namespace and id, with a backend mutation id",
        needs_write_through,
        write_through_ack,
    ),
    check(
        "freshness.write_through.read_your_write",
        "the read right after an upsert ACK sees the write, by fetch and by search",
        needs_write_through,
        write_through_read_your_write,
    ),
    check(
        "freshness.write_through.delete_ack",
        "a delete ACK names the scope and id, the next read no longer sees the document, and a second delete is not_found",
        needs_write_through,
        write_through_delete,
    ),
    check(
        "freshness.write_through.mutations_confined",
        "upsert and delete in one scope never change another tenant's or namespace's document with the same id",
        needs_write_through,
        write_through_confined,
    ),
    check(
        "freshness.event_feed.external_change_visible",
        "a change written by the store's own writers is visible to the next read (no connector-side caching)",
        needs_event_feed,
        event_feed_external_change,
    ),
    check(
        "freshness.watermark.advances_in_scope",
        "the native watermark advances after a change in its scope",
        needs_native_watermark,
        watermark_advances,
    ),
    check(
        "freshness.watermark.ignores_other_tenant",
        "the native watermark stays put when another tenant changes",
        needs_native_watermark,
        watermark_other_tenant,
    ),
    check(
        "freshness.watermark.ignores_other_namespace",
        "the native watermark stays put when another namespace of the same tenant changes",
        needs_native_watermark,
        watermark_other_namespace,
    ),
    check(
        "freshness.snapshot_bundle.version_immutable",
        "content served under one snapshot version never changes",
        needs_snapshot_bundle,
        snapshot_immutable,
    ),
    static_check(
        "unsupported.search",
        "search answers unsupported when not declared",
        |manifest| undeclared(manifest, Operation::Search),
        unsupported_search,
    ),
    static_check(
        "unsupported.fetch",
        "fetch answers unsupported when not declared",
        |manifest| undeclared(manifest, Operation::Fetch),
        unsupported_fetch,
    ),
    static_check(
        "unsupported.upsert",
        "upsert answers unsupported when not declared",
        |manifest| undeclared(manifest, Operation::Upsert),
        unsupported_upsert,
    ),
    static_check(
        "unsupported.delete",
        "delete answers unsupported when not declared",
        |manifest| undeclared(manifest, Operation::Delete),
        unsupported_delete,
    ),
    static_check(
        "unsupported.watermark",
        "watermark answers unsupported when not declared",
        |manifest| undeclared(manifest, Operation::Watermark),
        unsupported_watermark,
    ),
    static_check(
        "unsupported.snapshot_version",
        "snapshot_version answers unsupported when not declared",
        |manifest| undeclared(manifest, Operation::SnapshotVersion),
        unsupported_snapshot_version,
    ),
    check(
        "redaction.canary_secret_contained",
        "a canary secret placed in the configuration never appears in errors, log lines or answers",
        always,
        redaction_canary,
    ),
    static_check(
        "redaction.no_secret_in_errors",
        "no configured secret appears in any error message of the run",
        always,
        redaction_errors,
    ),
    static_check(
        "redaction.no_secret_in_logs",
        "no configured secret appears in any log line of the run",
        always,
        redaction_logs,
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

fn needs_event_feed(manifest: &CapabilityManifest) -> Result<(), String> {
    needs_mode(manifest, OwnershipMode::EventFeed)
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

/// How the harness writes into its private space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// The connector's `certification_seed`, the store's own write path.
    Seed,
    /// The connector's declared upsert.
    Upsert,
}

/// The state of one certification run.
pub(crate) struct Run<'a> {
    subject: &'a Subject<'a>,
    manifest: CapabilityManifest,
    space: Space,
    dataset: Option<Dataset>,
    writer: Option<Writer>,
    /// Every error message any call of the run produced, for the redaction checks.
    errors_seen: Vec<String>,
    /// Every document written, per scope, for cleanup through delete.
    written: BTreeMap<Scope, BTreeSet<DocumentId>>,
    store_version: Option<String>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(subject: &'a Subject<'a>, space: Space) -> Self {
        Self {
            manifest: subject.connector.describe(),
            subject,
            space,
            dataset: None,
            writer: None,
            errors_seen: Vec::new(),
            written: BTreeMap::new(),
            store_version: None,
        }
    }

    pub(crate) fn profile_name(&self) -> String {
        let modes: Vec<&str> =
            self.manifest.ownership_modes.iter().map(|mode| mode.as_str()).collect();
        let modes = if modes.is_empty() { "no_ownership_mode".to_owned() } else { modes.join("+") };
        format!("{}/{modes}", self.subject.plugin.name)
    }

    pub(crate) fn space_description(&self) -> String {
        self.space.scopes().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }

    pub(crate) fn store_version(&self) -> Option<String> {
        self.store_version.clone()
    }

    /// Secrets and canaries: nothing in a report may contain them.
    pub(crate) fn all_secrets(&self) -> Vec<String> {
        let mut secrets = self.subject.secrets.clone();
        if let Some(canary) = &self.subject.canary {
            secrets.extend(canary.canaries.iter().cloned());
        }
        secrets.retain(|secret| !secret.is_empty());
        secrets
    }

    /// Seeds the private space and checks the seed is readable.
    pub(crate) fn setup(&mut self) -> Result<(), String> {
        let dimension = self
            .manifest
            .vector
            .map(|vector| vector.dimension as usize)
            .ok_or("the connector declares no vector dimension")?;
        let key = match &self.manifest.filterable_keys {
            FilterableKeys::Listed(keys) => keys
                .iter()
                .next()
                .map_or_else(|| "kyro_cert_year".to_owned(), |key| key.as_str().to_owned()),
            FilterableKeys::AnyValidKey => "kyro_cert_year".to_owned(),
        };
        let dataset = Dataset::new(dimension, &key);
        let seeds = [
            (self.space.home.clone(), dataset.home.clone()),
            (self.space.other_tenant.clone(), dataset.other_tenant.clone()),
            (self.space.other_namespace.clone(), dataset.other_namespace.clone()),
        ];
        for (scope, documents) in seeds {
            self.write(&scope, &documents).map_err(|status| describe_status(&status))?;
        }
        self.dataset = Some(dataset);
        Ok(())
    }

    /// Runs one check, honouring applicability and catching panics of the harness itself.
    pub(crate) fn run_check(&mut self, check: &Check) -> CheckStatus {
        if let Err(reason) = (check.applies)(&self.manifest) {
            return CheckStatus::NotApplicable { reason };
        }
        match catch_unwind(AssertUnwindSafe(|| (check.run)(self))) {
            Ok(Ok(())) => CheckStatus::Passed,
            Ok(Err(status)) => status,
            Err(_) => CheckStatus::Error {
                reason: "the check itself panicked; this is a bug in kyro-certification".to_owned(),
            },
        }
    }

    /// Removes the private space: purge where supported, otherwise delete what was written.
    pub(crate) fn cleanup(&mut self) -> CleanupRecord {
        let mut left_behind = Vec::new();
        for scope in self.space.scopes() {
            let purge_error = match self.subject.connector.certification_purge(scope) {
                Ok(()) => continue,
                Err(err) => err,
            };
            let ids = self.written.get(scope).cloned().unwrap_or_default();
            if ids.is_empty() {
                continue;
            }
            let delete_error = if self.manifest.supports(Operation::Delete) {
                ids.iter().find_map(|id| self.subject.connector.delete(scope, id).err())
            } else {
                Some(ConnectorError::unsupported("delete"))
            };
            if let Some(delete_error) = delete_error {
                left_behind.push(format!(
                    "{} documents in {scope} (purge: {purge_error}; delete: {delete_error})",
                    ids.len()
                ));
            }
        }
        if left_behind.is_empty() {
            CleanupRecord { complete: true, detail: format!("purged {}", self.space_description()) }
        } else {
            CleanupRecord {
                complete: false,
                detail: format!("could not remove {}", left_behind.join(", ")),
            }
        }
    }

    fn dataset(&self) -> Result<&Dataset, CheckStatus> {
        self.dataset.as_ref().ok_or_else(|| CheckStatus::Error {
            reason: "the private space was not seeded".to_owned(),
        })
    }

    /// Maps an unexpected connector error to an outcome: panics are failures; unavailability,
    /// timeouts and quarantine mean the check could not tell.
    fn unexpected(&mut self, sent: &str, err: &ConnectorError) -> CheckStatus {
        self.errors_seen.push(err.message().to_owned());
        match err.kind() {
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Quarantined => {
                CheckStatus::Error { reason: format!("{sent}: {err}") }
            }
            _ => CheckStatus::Failed { witness: Witness::new(sent, format!("error {err}")) },
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
    fn expect_error<T: std::fmt::Debug>(
        &mut self,
        sent: &str,
        result: kyro_connector_sdk::Result<T>,
        kind: ErrorKind,
    ) -> CheckResult {
        match result {
            Err(err) if err.kind() == kind => {
                self.errors_seen.push(err.message().to_owned());
                Ok(())
            }
            Err(err) => Err(self.unexpected(sent, &err)),
            Ok(value) => Err(fail(
                sent,
                format!(
                    "success instead of {}: {}",
                    kind.as_str(),
                    abbreviate(&format!("{value:?}"))
                ),
            )),
        }
    }

    fn write(&mut self, scope: &Scope, documents: &[Document]) -> CheckResult {
        let connector = self.subject.connector;
        let sent = format!("write {} documents into {scope}", documents.len());
        let writer = match self.writer {
            Some(writer) => writer,
            None => match connector.certification_seed(scope, documents) {
                Ok(()) => {
                    self.writer = Some(Writer::Seed);
                    self.record_written(scope, documents);
                    return Ok(());
                }
                Err(err)
                    if err.kind() == ErrorKind::Unsupported
                        && self.manifest.supports(Operation::Upsert) =>
                {
                    self.writer = Some(Writer::Upsert);
                    Writer::Upsert
                }
                Err(err) if err.kind() == ErrorKind::Unsupported => {
                    return Err(CheckStatus::Error {
                        reason: "the connector offers no way to write into the certification space: implement certification_seed or declare upsert".to_owned(),
                    });
                }
                Err(err) => return Err(self.unexpected(&sent, &err)),
            },
        };
        match writer {
            Writer::Seed => {
                let result = connector.certification_seed(scope, documents);
                self.expect_ok(&sent, result)?;
            }
            Writer::Upsert => {
                for document in documents {
                    let result = connector.upsert(scope, document);
                    self.expect_ok(&sent, result)?;
                }
            }
        }
        self.record_written(scope, documents);
        Ok(())
    }

    fn record_written(&mut self, scope: &Scope, documents: &[Document]) {
        let ids = self.written.entry(scope.clone()).or_default();
        ids.extend(documents.iter().map(|document| document.id().clone()));
    }

    fn search(
        &mut self,
        scope: &Scope,
        request: &SearchRequest,
    ) -> Result<SearchResponse, CheckStatus> {
        let result = self.subject.connector.search(scope, request);
        self.expect_ok(&describe_search(scope, request), result)
    }

    fn fetch(&mut self, scope: &Scope, ids: &[&str]) -> Result<Vec<StoredDocument>, CheckStatus> {
        let ids = to_ids(ids);
        let result = self.subject.connector.fetch(scope, &ids);
        self.expect_ok(&describe_fetch(scope, &ids), result)
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
            describe_search(&home, &request),
            response.hits.iter().map(|hit| hit.document.id.as_str().to_owned()).collect(),
        ))
    }

    fn canary_scan(&self, text: &str) -> Option<String> {
        self.all_secrets()
            .into_iter()
            .find(|secret| text.contains(secret.as_str()))
            .map(|_| "a configured secret".to_owned())
    }
}

fn fail(sent: impl Into<String>, received: impl Into<String>) -> CheckStatus {
    CheckStatus::Failed { witness: Witness::new(sent, received) }
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
    const LIMIT: usize = 400;
    if text.len() <= LIMIT {
        return text.to_owned();
    }
    let mut end = LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

fn to_ids(ids: &[&str]) -> Vec<DocumentId> {
    ids.iter().filter_map(|id| DocumentId::new(*id).ok()).collect()
}

fn describe_search(scope: &Scope, request: &SearchRequest) -> String {
    let filter = request
        .filter
        .as_ref()
        .map_or_else(|| "none".to_owned(), |filter| abbreviate(&format!("{:?}", filter.root())));
    format!("search {scope} top_k={} filter={filter} (query: the probe vector)", request.top_k)
}

fn describe_fetch(scope: &Scope, ids: &[DocumentId]) -> String {
    let ids: Vec<&str> = ids.iter().map(DocumentId::as_str).collect();
    format!("fetch {scope} ids={}", abbreviate(&format!("{ids:?}")))
}

fn describe_hits(response: &SearchResponse) -> String {
    let hits: Vec<String> = response
        .hits
        .iter()
        .map(|hit| format!("{} in {}", hit.document.id, hit.document.scope))
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

// abi.*

fn abi_manifest_consistent(run: &mut Run<'_>) -> CheckResult {
    let manifest = &run.manifest;
    let sent = "describe";
    let mut problems = Vec::new();
    if manifest.backs(OwnershipMode::WriteThrough)
        && !(manifest.supports(Operation::Upsert) && manifest.supports(Operation::Delete))
    {
        problems.push("write_through is declared without both upsert and delete");
    }
    if manifest.watermark_kind == WatermarkKind::PerScopeNative
        && !manifest.supports(Operation::Watermark)
    {
        problems.push("a per-scope native watermark is declared without the watermark operation");
    }
    if manifest.backs(OwnershipMode::SnapshotBundle)
        && !manifest.supports(Operation::SnapshotVersion)
    {
        problems.push("snapshot_bundle is declared without the snapshot_version operation");
    }
    if manifest.ownership_modes.is_empty() {
        problems.push("no ownership mode is declared");
    }
    if manifest.vector.is_none() {
        problems.push("an opened connector must declare its vector dimension and distance");
    }
    let caps = manifest.caps;
    if caps.max_top_k == 0 || caps.max_top_k > 1000 {
        problems.push("max_top_k must be within 1..=1000");
    }
    if caps.max_filter_nodes == 0 || caps.max_filter_nodes > 256 {
        problems.push("max_filter_nodes must be within 1..=256");
    }
    if caps.max_fetch_ids == 0 || caps.max_request_bytes == 0 || caps.max_response_bytes == 0 {
        problems.push("caps must be positive");
    }
    if problems.is_empty() { Ok(()) } else { Err(fail(sent, problems.join("; "))) }
}

fn abi_describe_stable(run: &mut Run<'_>) -> CheckResult {
    let again = run.subject.connector.describe();
    if again == run.manifest {
        Ok(())
    } else {
        Err(fail("describe, twice", "two different manifests"))
    }
}

fn abi_health(run: &mut Run<'_>) -> CheckResult {
    let result = run.subject.connector.health();
    let health = run.expect_ok("health", result)?;
    if health.store_version.trim().is_empty() {
        return Err(fail("health", "an empty store version"));
    }
    run.store_version = Some(health.store_version);
    Ok(())
}

// scope.*

/// Which scope a hit really comes from, judged by its claimed scope, its id and its content (a
/// connector may mislabel a foreign document as a home one).
fn origin(space: &Space, dataset: &Dataset, document: &StoredDocument) -> Option<Scope> {
    let content = document.content.as_deref().unwrap_or("");
    let id = document.id.as_str();
    if document.scope == space.other_tenant
        || id == "poison-other-tenant"
        || content.contains("other tenant")
    {
        return Some(space.other_tenant.clone());
    }
    if document.scope == space.other_namespace
        || id == "poison-other-namespace"
        || content.contains("other namespace")
    {
        return Some(space.other_namespace.clone());
    }
    let is_home = document.scope == space.home
        && dataset.home.iter().any(|seeded| {
            seeded.id() == &document.id
                && document
                    .content
                    .as_deref()
                    .is_none_or(|content| Some(content) == seeded.content())
        });
    if is_home { Some(space.home.clone()) } else { None }
}

fn scope_search_excludes(run: &mut Run<'_>, other: &Scope) -> CheckResult {
    let home = run.space.home.clone();
    let request = run.probe_request(run.manifest.caps.max_top_k.min(10), None)?;
    let response = run.search(&home, &request)?;
    let sent = describe_search(&home, &request);
    let dataset = run.dataset()?;
    for hit in &response.hits {
        match origin(&run.space, dataset, &hit.document) {
            Some(scope) if scope == home => {}
            Some(scope) if scope == *other => {
                return Err(fail(
                    sent,
                    format!("{} from {other}: {}", hit.document.id, describe_hits(&response)),
                ));
            }
            Some(_) => {}
            None => {
                return Err(fail(
                    sent,
                    format!(
                        "{} in {}, which was never written there: {}",
                        hit.document.id,
                        hit.document.scope,
                        describe_hits(&response)
                    ),
                ));
            }
        }
    }
    if response.hits.is_empty() {
        return Err(fail(sent, "no hits, although the scope holds seeded documents"));
    }
    Ok(())
}

fn scope_search_other_tenant(run: &mut Run<'_>) -> CheckResult {
    let other = run.space.other_tenant.clone();
    scope_search_excludes(run, &other)
}

fn scope_search_other_namespace(run: &mut Run<'_>) -> CheckResult {
    let other = run.space.other_namespace.clone();
    scope_search_excludes(run, &other)
}

fn scope_fetch(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let ids = [SHARED_ID, "poison-other-tenant", "poison-other-namespace", "doc-1"];
    let documents = run.fetch(&home, &ids)?;
    let sent = describe_fetch(&home, &to_ids(&ids));
    let received: Vec<String> = documents
        .iter()
        .map(|document| {
            format!(
                "{} in {} ({:?})",
                document.id,
                document.scope,
                document.content.as_deref().unwrap_or("")
            )
        })
        .collect();
    let received = abbreviate(&received.join(", "));
    let mut seen = BTreeSet::new();
    for document in &documents {
        let content = document.content.as_deref().unwrap_or("");
        let foreign = document.scope != home
            || content.contains("other tenant")
            || content.contains("other namespace");
        if foreign || !seen.insert(document.id.as_str().to_owned()) {
            return Err(fail(sent, received));
        }
    }
    if seen != set(&[SHARED_ID, "doc-1"]) {
        return Err(fail(
            sent,
            format!("expected exactly shared and doc-1 of the home scope, got {received}"),
        ));
    }
    Ok(())
}

fn scope_empty_refused(run: &mut Run<'_>) -> CheckResult {
    let tenant = run.space.home.tenant_id().to_owned();
    let cases = [
        ("", "ns-1"),
        (tenant.as_str(), ""),
        ("   ", "ns-1"),
        (" padded", "ns-1"),
        (tenant.as_str(), "ns-1\n"),
    ];
    for (tenant_id, namespace) in cases {
        let sent = format!(
            "fetch with tenant {tenant_id:?} and namespace {namespace:?} (bypassing the typed API)"
        );
        let payload = unchecked::fetch(tenant_id, namespace, &["doc-1"])
            .map_err(|err| CheckStatus::Error { reason: err.to_string() })?;
        match (run.subject.raw_call)(&payload) {
            Ok(response) => {
                return Err(fail(sent, format!("accepted, answered {} bytes", response.len())));
            }
            Err(err) if err.kind() == ErrorKind::Panicked => {
                return Err(run.unexpected(&sent, &err));
            }
            Err(err) => run.errors_seen.push(err.message().to_owned()),
        }
    }
    Ok(())
}

// filter.*

fn filter_semantics(run: &mut Run<'_>) -> CheckResult {
    let key = run.key()?;
    let range =
        |min: Option<f64>, max: Option<f64>| FilterExpr::Range { key: key.clone(), min, max };
    let in_values = |values: &[&str]| -> Result<FilterExpr, CheckStatus> {
        let values = values
            .iter()
            .map(|value| FilterValue::new(*value))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| CheckStatus::Error { reason: err.to_string() })?;
        Ok(FilterExpr::In { key: key.clone(), values })
    };
    let cases: Vec<(FilterExpr, Vec<&str>)> = vec![
        (exact(&key, "2021")?, vec!["doc-3", "doc-4"]),
        (in_values(&["2019", "2024"])?, vec!["doc-1", "doc-2", "doc-5", "doc-6"]),
        (range(Some(2020.0), None), vec!["doc-3", "doc-4", "doc-5", "doc-6"]),
        (range(None, Some(2019.0)), vec!["doc-1", "doc-2", SHARED_ID]),
        (range(Some(2020.5), Some(2023.0)), vec!["doc-3", "doc-4"]),
        (
            FilterExpr::And(vec![
                range(Some(2020.0), None),
                FilterExpr::Not(Box::new(exact(&key, "2024")?)),
            ]),
            vec!["doc-3", "doc-4"],
        ),
        (
            FilterExpr::Or(vec![exact(&key, "2019")?, exact(&key, "1999")?]),
            vec!["doc-1", "doc-2", SHARED_ID],
        ),
        (FilterExpr::Not(Box::new(in_values(&["2019", "2021", "2024"])?)), vec![SHARED_ID]),
        (exact(&key, "2020")?, vec![]),
    ];
    for (filter, expected) in cases {
        let (sent, ids) = run.filtered_home_ids(filter)?;
        let expected = set(&expected);
        if ids != expected {
            return Err(fail(sent, format!("ids {ids:?}, expected {expected:?}")));
        }
    }
    Ok(())
}

fn filter_undeclared_key(run: &mut Run<'_>) -> CheckResult {
    let FilterableKeys::Listed(declared) = &run.manifest.filterable_keys else {
        return Err(CheckStatus::Error { reason: "every key is filterable".to_owned() });
    };
    let candidate = (0..)
        .map(|idx| format!("kyro_cert_undeclared_{idx}"))
        .find(|key| FilterKey::new(key.clone()).is_ok_and(|key| !declared.contains(&key)));
    let key = FilterKey::new(candidate.unwrap_or_default())
        .map_err(|err| CheckStatus::Error { reason: err.to_string() })?;
    let request = run.probe_request(5, Some(exact(&key, "2021")?))?;
    let home = run.space.home.clone();
    let result = run.subject.connector.search(&home, &request);
    run.expect_error(&describe_search(&home, &request), result, ErrorKind::InvalidRequest)
}

const INJECTION_CORPUS: &str = include_str!("../scenarios/injection_corpus.txt");

fn injection_values(max_value_bytes: usize) -> Vec<String> {
    let mut values: Vec<String> = INJECTION_CORPUS
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    // An oversized value: the longest the contract allows, made of an injection pattern.
    let pattern = "' OR 1=1 -- ";
    values.push(pattern.repeat(max_value_bytes / pattern.len()));
    values
}

fn filter_injection_values(run: &mut Run<'_>) -> CheckResult {
    let key = run.key()?;
    for value in injection_values(4096) {
        let (sent, ids) = run.filtered_home_ids(exact(&key, &value)?)?;
        if !ids.is_empty() {
            return Err(fail(
                sent,
                format!("ids {ids:?}; nothing holds this value, so nothing may match"),
            ));
        }
        let values = vec![
            FilterValue::new(value.clone())
                .map_err(|err| CheckStatus::Error { reason: err.to_string() })?,
        ];
        let (sent, ids) = run.filtered_home_ids(FilterExpr::In { key: key.clone(), values })?;
        if !ids.is_empty() {
            return Err(fail(
                sent,
                format!("ids {ids:?}; nothing holds this value, so nothing may match"),
            ));
        }
    }
    // The store still answers normally: nothing was dropped or rewritten.
    let (sent, ids) = run.filtered_home_ids(exact(&key, "2021")?)?;
    if ids != set(&["doc-3", "doc-4"]) {
        return Err(fail(
            sent,
            format!("after the corpus, ids {ids:?} instead of doc-3 and doc-4"),
        ));
    }
    Ok(())
}

fn filter_malformed_key(run: &mut Run<'_>) -> CheckResult {
    let dimension = run.manifest.vector.map_or(8, |vector| vector.dimension as usize);
    let embedding = Embedding::new(unit_vector(dimension, 7))
        .map_err(|err| CheckStatus::Error { reason: err.to_string() })?;
    let tenant = run.space.home.tenant_id().to_owned();
    for key in [
        "lang' OR 1=1 --",
        "metadata->>'tenant_id'",
        "a.b",
        "$.tenant_id",
        "",
        "ключ",
        &"k".repeat(129),
    ] {
        let sent = format!("search with filter key {key:?} (bypassing the typed API)");
        let payload = unchecked::search_with_filter_key(&tenant, "ns-1", &embedding, key, "x")
            .map_err(|err| CheckStatus::Error { reason: err.to_string() })?;
        match (run.subject.raw_call)(&payload) {
            Ok(response) => {
                return Err(fail(sent, format!("accepted, answered {} bytes", response.len())));
            }
            Err(err) if err.kind() == ErrorKind::Panicked => {
                return Err(run.unexpected(&sent, &err));
            }
            Err(err) => run.errors_seen.push(err.message().to_owned()),
        }
    }
    Ok(())
}

// bounds.*

fn bounds_top_k_respected(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let request = run.probe_request(2, None)?;
    let response = run.search(&home, &request)?;
    if response.hits.len() == 2 {
        Ok(())
    } else {
        Err(fail(
            describe_search(&home, &request),
            format!("{}; the scope holds 7 documents", describe_hits(&response)),
        ))
    }
}

fn bounds_top_k_cap(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let request = run.probe_request(run.manifest.caps.max_top_k + 1, None)?;
    let result = run.subject.connector.search(&home, &request);
    run.expect_error(&describe_search(&home, &request), result, ErrorKind::LimitExceeded)
}

fn bounds_fetch_cap(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let n_ids = run.manifest.caps.max_fetch_ids as usize + 1;
    let ids: Vec<DocumentId> =
        (0..n_ids).filter_map(|idx| DocumentId::new(format!("doc-{idx}")).ok()).collect();
    let result = run.subject.connector.fetch(&home, &ids);
    run.expect_error(
        &format!("fetch {home} with {n_ids} ids (cap {})", n_ids - 1),
        result,
        ErrorKind::LimitExceeded,
    )
}

fn bounds_short_result(run: &mut Run<'_>) -> CheckResult {
    let key = run.key()?;
    let home = run.space.home.clone();
    let request =
        run.probe_request(5.min(run.manifest.caps.max_top_k), Some(exact(&key, "2021")?))?;
    let response = run.search(&home, &request)?;
    let sent = describe_search(&home, &request);
    match &response.shortfall {
        Some(shortfall)
            if shortfall.requested == request.top_k
                && shortfall.returned == 2
                && response.hits.len() == 2 =>
        {
            if request.top_k > 2
                || matches!(
                    shortfall.reason,
                    ShortfallReason::Exhausted | ShortfallReason::IndexScanLimit { .. }
                )
            {
                Ok(())
            } else {
                Err(fail(sent, format!("{shortfall:?}")))
            }
        }
        Some(shortfall) => {
            Err(fail(sent, format!("{}; shortfall {shortfall:?}", describe_hits(&response))))
        }
        None if request.top_k <= 2 => Ok(()),
        None => Err(fail(sent, format!("{} and no shortfall report", describe_hits(&response)))),
    }
}

// ids.*

fn ids_idempotent(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let dataset = run.dataset()?;
    let (key, probe) = (dataset.key.clone(), dataset.probe.clone());
    let dimension = probe.len();
    let first = document("twice", unit_vector(dimension, 41), &key, "2000", "first write");
    let second = document("twice", unit_vector(dimension, 42), &key, "2000", "second write");
    run.write(&home, &[first])?;
    run.write(&home, &[second])?;
    let documents = run.fetch(&home, &["twice"])?;
    let contents: Vec<&str> =
        documents.iter().map(|document| document.content.as_deref().unwrap_or("")).collect();
    if contents == ["second write"] {
        Ok(())
    } else {
        Err(fail(
            format!("write id twice into {home} twice, then fetch it"),
            format!("contents {contents:?}"),
        ))
    }
}

fn ids_unicode_and_long(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let dataset = run.dataset()?;
    let (key, dimension) = (dataset.key.clone(), dataset.probe.len());
    let unicode = "ドキュメント-ü-🚀-id";
    let long = format!("long-{}", "x".repeat(1019));
    let documents = [
        document(unicode, unit_vector(dimension, 51), &key, "2000", "unicode id"),
        document(&long, unit_vector(dimension, 52), &key, "2000", "long id"),
    ];
    run.write(&home, &documents)?;
    let fetched = run.fetch(&home, &[unicode, &long])?;
    let ids: BTreeSet<String> =
        fetched.iter().map(|document| document.id.as_str().to_owned()).collect();
    if ids == set(&[unicode, &long]) {
        Ok(())
    } else {
        Err(fail(
            format!("write and fetch ids {unicode:?} and a 1024-byte id in {home}"),
            format!("ids {:?}", ids.iter().map(|id| abbreviate(id)).collect::<Vec<_>>()),
        ))
    }
}

// freshness.write_through.*

fn write_through_ack(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let dataset = run.dataset()?;
    let written = document(
        "wt-ack",
        unit_vector(dataset.probe.len(), 61),
        &dataset.key,
        "2000",
        "written through",
    );
    let sent = format!("upsert wt-ack into {home}");
    for expected_outcome in ["Inserted", "Updated"] {
        let result = run.subject.connector.upsert(&home, &written);
        let ack = run.expect_ok(&sent, result)?;
        run.record_written(&home, std::slice::from_ref(&written));
        let outcome = format!("{:?}", ack.outcome);
        if ack.scope != home
            || ack.id != *written.id()
            || ack.backend_mutation_id.trim().is_empty()
            || outcome != expected_outcome
        {
            return Err(fail(
                sent,
                format!(
                    "ack for {} in {} outcome {outcome} (expected {expected_outcome}) mutation id {:?}",
                    ack.id, ack.scope, ack.backend_mutation_id
                ),
            ));
        }
    }
    Ok(())
}

fn write_through_read_your_write(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let dataset = run.dataset()?;
    let vector = perturbed(&dataset.probe, &unit_vector(dataset.probe.len(), 71), 0.01);
    let key = dataset.key.clone();
    for round in 1..=3 {
        let content = format!("read-your-write round {round}");
        let written = document("wt-ryw", vector.clone(), &key, "2000", &content);
        let sent = format!("upsert wt-ryw ({content:?}) into {home}, then fetch and search it");
        let result = run.subject.connector.upsert(&home, &written);
        run.expect_ok(&sent, result)?;
        run.record_written(&home, std::slice::from_ref(&written));
        let fetched = run.fetch(&home, &["wt-ryw"])?;
        if fetched.first().and_then(|document| document.content.as_deref())
            != Some(content.as_str())
        {
            return Err(fail(
                sent,
                format!(
                    "fetch saw {:?}",
                    fetched.iter().map(|document| document.content.clone()).collect::<Vec<_>>()
                ),
            ));
        }
        let request = SearchRequest {
            embedding: Embedding::new(vector.clone())
                .map_err(|err| CheckStatus::Error { reason: err.to_string() })?,
            top_k: 1,
            filter: None,
            include_content: true,
        };
        let response = run.search(&home, &request)?;
        let top = response
            .hits
            .first()
            .map(|hit| (hit.document.id.as_str().to_owned(), hit.document.content.clone()));
        if top != Some(("wt-ryw".to_owned(), Some(content.clone()))) {
            return Err(fail(sent, format!("search saw {top:?}")));
        }
    }
    Ok(())
}

fn write_through_delete(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let dataset = run.dataset()?;
    let written = document(
        "wt-delete",
        unit_vector(dataset.probe.len(), 81),
        &dataset.key,
        "2000",
        "to be deleted",
    );
    let sent = format!("upsert then delete wt-delete in {home}");
    let result = run.subject.connector.upsert(&home, &written);
    run.expect_ok(&sent, result)?;
    let id = written.id().clone();
    let result = run.subject.connector.delete(&home, &id);
    let ack = run.expect_ok(&sent, result)?;
    if ack.scope != home || ack.id != id || format!("{:?}", ack.outcome) != "Deleted" {
        return Err(fail(sent, format!("ack {ack:?}")));
    }
    let fetched = run.fetch(&home, &["wt-delete"])?;
    if !fetched.is_empty() {
        return Err(fail(sent, "the next fetch still returned the document"));
    }
    let result = run.subject.connector.delete(&home, &id);
    let again = run.expect_ok(&sent, result)?;
    if format!("{:?}", again.outcome) != "NotFound" {
        return Err(fail(
            format!("{sent}, twice"),
            format!("second ack outcome {:?}", again.outcome),
        ));
    }
    Ok(())
}

fn write_through_confined(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let dataset = run.dataset()?;
    let replacement = document(
        SHARED_ID,
        unit_vector(dataset.probe.len(), 91),
        &dataset.key,
        "1999",
        "shared: home copy, rewritten",
    );
    let sent = format!("upsert then delete {SHARED_ID} in {home}");
    let result = run.subject.connector.upsert(&home, &replacement);
    run.expect_ok(&sent, result)?;
    let id = replacement.id().clone();
    let result = run.subject.connector.delete(&home, &id);
    run.expect_ok(&sent, result)?;
    for (other, label) in [
        (run.space.other_tenant.clone(), "other tenant"),
        (run.space.other_namespace.clone(), "other namespace"),
    ] {
        let fetched = run.fetch(&other, &[SHARED_ID])?;
        let contents: Vec<Option<String>> =
            fetched.iter().map(|document| document.content.clone()).collect();
        if contents != [Some(format!("shared: {label} copy"))] {
            return Err(fail(sent.clone(), format!("{other} now holds {contents:?}")));
        }
    }
    Ok(())
}

// freshness.event_feed.*

fn event_feed_external_change(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let dataset = run.dataset()?;
    let (key, dimension) = (dataset.key.clone(), dataset.probe.len());
    for round in 1..=3 {
        let content = format!("external change {round}");
        run.write(
            &home,
            &[document("ef-change", unit_vector(dimension, 95), &key, "2000", &content)],
        )?;
        let fetched = run.fetch(&home, &["ef-change"])?;
        if fetched.first().and_then(|document| document.content.as_deref())
            != Some(content.as_str())
        {
            return Err(fail(
                format!("store write of ef-change ({content:?}) in {home}, then fetch"),
                format!(
                    "{:?}",
                    fetched.iter().map(|document| document.content.clone()).collect::<Vec<_>>()
                ),
            ));
        }
    }
    Ok(())
}

// freshness.watermark.*

fn watermark_of(run: &mut Run<'_>, scope: &Scope) -> Result<u64, CheckStatus> {
    let result = run.subject.connector.watermark(scope);
    run.expect_ok(&format!("watermark {scope}"), result).map(|watermark| watermark.value())
}

fn change(run: &mut Run<'_>, scope: &Scope, label: &str) -> CheckResult {
    let dataset = run.dataset()?;
    let written = document(
        &format!("wm-{label}"),
        unit_vector(dataset.probe.len(), 97),
        &dataset.key,
        "2000",
        label,
    );
    run.write(scope, &[written])
}

fn watermark_advances(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let before = watermark_of(run, &home)?;
    change(run, &home, "advance")?;
    let after = watermark_of(run, &home)?;
    if after > before {
        Ok(())
    } else {
        Err(fail(
            format!("watermark {home}, write into {home}, watermark again"),
            format!("{before} then {after}"),
        ))
    }
}

fn watermark_stays(run: &mut Run<'_>, other: Scope) -> CheckResult {
    let home = run.space.home.clone();
    let before = watermark_of(run, &home)?;
    change(run, &other, "elsewhere")?;
    let after = watermark_of(run, &home)?;
    if after == before {
        Ok(())
    } else {
        Err(fail(
            format!("watermark {home}, write into {other}, watermark {home} again"),
            format!("{before} then {after}"),
        ))
    }
}

fn watermark_other_tenant(run: &mut Run<'_>) -> CheckResult {
    let other = run.space.other_tenant.clone();
    watermark_stays(run, other)
}

fn watermark_other_namespace(run: &mut Run<'_>) -> CheckResult {
    let other = run.space.other_namespace.clone();
    watermark_stays(run, other)
}

// freshness.snapshot_bundle.*

fn snapshot_immutable(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let ids = ["doc-1", "doc-2", "doc-3", SHARED_ID];
    let result = run.subject.connector.snapshot_version(&home);
    let version = run.expect_ok(&format!("snapshot_version {home}"), result)?;
    let first = run.fetch(&home, &ids)?;
    let second = run.fetch(&home, &ids)?;
    let result = run.subject.connector.snapshot_version(&home);
    let version_after = run.expect_ok(&format!("snapshot_version {home}"), result)?;
    if version == version_after && first != second {
        return Err(fail(
            format!("fetch {home} twice under snapshot version {}", version.as_str()),
            "different content under the same version",
        ));
    }
    Ok(())
}

// unsupported.*

fn expect_unsupported<T: std::fmt::Debug>(
    run: &mut Run<'_>,
    operation: &str,
    result: kyro_connector_sdk::Result<T>,
) -> CheckResult {
    let home = run.space.home.clone();
    run.expect_error(
        &format!("{operation} in {home} (not declared)"),
        result,
        ErrorKind::Unsupported,
    )
}

fn unsupported_search(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let dimension = run.manifest.vector.map_or(8, |vector| vector.dimension as usize);
    let request = SearchRequest {
        embedding: Embedding::new(unit_vector(dimension, 3))
            .map_err(|err| CheckStatus::Error { reason: err.to_string() })?,
        top_k: 1,
        filter: None,
        include_content: false,
    };
    let result = run.subject.connector.search(&home, &request);
    expect_unsupported(run, "search", result)
}

fn unsupported_fetch(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let result = run.subject.connector.fetch(&home, &to_ids(&["doc-1"]));
    expect_unsupported(run, "fetch", result)
}

fn unsupported_upsert(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let dimension = run.manifest.vector.map_or(8, |vector| vector.dimension as usize);
    let written = document(
        "unsupported-upsert",
        unit_vector(dimension, 5),
        "kyro_cert_year",
        "2000",
        "must not be written",
    );
    let result = run.subject.connector.upsert(&home, &written);
    expect_unsupported(run, "upsert", result)
}

fn unsupported_delete(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let result = run.subject.connector.delete(&home, &to_ids(&["doc-1"])[0]);
    expect_unsupported(run, "delete", result)
}

fn unsupported_watermark(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let result = run.subject.connector.watermark(&home);
    expect_unsupported(run, "watermark", result)
}

fn unsupported_snapshot_version(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let result = run.subject.connector.snapshot_version(&home);
    expect_unsupported(run, "snapshot_version", result)
}

// redaction.*

fn redaction_canary(run: &mut Run<'_>) -> CheckResult {
    let Some(canary) = &run.subject.canary else {
        return Err(CheckStatus::NotApplicable {
            reason: "the configuration holds no secret".to_owned(),
        });
    };
    let canaries = canary.canaries.clone();
    let log_mark = run.subject.log_lines.lock().map_or(0, |lines| lines.len());
    let mut observed = Vec::new();
    match (canary.open)() {
        Err(err) => observed.push(format!("open failed: {err} / {err:?}")),
        Ok(connector) => {
            // Provoke the errors a connector is most likely to decorate with its configuration.
            let home = run.space.home.clone();
            let dimension = run.manifest.vector.map_or(8, |vector| vector.dimension as usize) + 1;
            if let Ok(embedding) = Embedding::new(unit_vector(dimension, 9)) {
                let request =
                    SearchRequest { embedding, top_k: 1, filter: None, include_content: false };
                observed.push(format!("{:?}", connector.search(&home, &request)));
            }
            if let Ok(key) = FilterKey::new("kyro_cert_undeclared_key")
                && let Ok(filter) = exact(&key, "x").and_then(|filter| {
                    RuntimeFilter::new(filter)
                        .map_err(|err| CheckStatus::Error { reason: err.to_string() })
                })
                && let Ok(embedding) = Embedding::new(unit_vector(dimension - 1, 9))
            {
                let request = SearchRequest {
                    embedding,
                    top_k: 1,
                    filter: Some(filter),
                    include_content: false,
                };
                observed.push(format!("{:?}", connector.search(&home, &request)));
            }
            observed.push(format!("{:?}", connector.health()));
            observed.push(format!("{:?}", connector.describe()));
            observed.push(format!("{:?}", connector.fetch(&home, &to_ids(&["doc-1"]))));
        }
    }
    if let Ok(lines) = run.subject.log_lines.lock() {
        observed.extend(lines.iter().skip(log_mark).cloned());
    }
    for text in &observed {
        if canaries.iter().any(|canary| !canary.is_empty() && text.contains(canary.as_str())) {
            return Err(fail(
                "open the connector with a canary secret in its configuration, then provoke errors",
                format!(
                    "the canary appeared in: {}",
                    crate::report::redact(&abbreviate(text), &canaries)
                ),
            ));
        }
    }
    Ok(())
}

fn redaction_errors(run: &mut Run<'_>) -> CheckResult {
    let leaked = run
        .errors_seen
        .iter()
        .find_map(|message| run.canary_scan(message).map(|what| (what, message.clone())));
    match leaked {
        Some((what, message)) => Err(fail(
            "every request of this run",
            format!(
                "{what} appeared in an error message: {}",
                crate::report::redact(&abbreviate(&message), &run.all_secrets())
            ),
        )),
        None if run.errors_seen.is_empty() => Err(CheckStatus::Error {
            reason: "the run produced no error message to inspect".to_owned(),
        }),
        None => Ok(()),
    }
}

fn redaction_logs(run: &mut Run<'_>) -> CheckResult {
    let lines = run.subject.log_lines.lock().map(|lines| lines.clone()).unwrap_or_default();
    match lines.iter().find_map(|line| run.canary_scan(line).map(|what| (what, line.clone()))) {
        Some((what, line)) => Err(fail(
            "every request of this run",
            format!(
                "{what} appeared in a log line: {}",
                crate::report::redact(&abbreviate(&line), &run.all_secrets())
            ),
        )),
        None => Ok(()),
    }
}
