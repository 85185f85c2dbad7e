//! Latency as a conformance property: every call the harness makes is timed per operation, and
//! an operation whose p50 or p99 is above its budget is refused.
//!
//! The budget comes from the call timeout the caller will serve with: p50 at most a quarter of
//! it and p99 at most half. A store that answers in half its timeout in a quiet certification
//! run times out under load; one at 80% of it times out on the first slow disk.
//!
//! What it deliberately does not do: time `describe` (answered from the guard's copy) or the
//! harness's seeding and purging, which the host never calls while serving.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kyro_connector_sdk::{
    CapabilityManifest, Connector, ConnectorHealth, Document, DocumentId, ErrorKind, MutationAck,
    Result, Scope, SearchRequest, SearchResponse, SnapshotVersion, StoredDocument, Watermark,
};
use serde::Serialize;

/// The operations whose latency is measured and budgeted, in report order.
pub(crate) const TIMED_OPERATIONS: [&str; 7] =
    ["search", "fetch", "upsert", "delete", "watermark", "snapshot_version", "health"];

/// A connector whose calls are timed.
pub(crate) struct Timed<'a> {
    inner: &'a dyn Connector,
    samples: Mutex<BTreeMap<&'static str, Vec<Duration>>>,
}

impl<'a> Timed<'a> {
    pub(crate) fn new(inner: &'a dyn Connector) -> Self {
        Self { inner, samples: Mutex::new(BTreeMap::new()) }
    }

    /// Runs and times `call`; a call refused because the connector is quarantined never reached
    /// it and is not a sample.
    fn time<T>(&self, operation: &'static str, call: impl FnOnce() -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let result = call();
        let reached = !matches!(&result, Err(err) if err.kind() == ErrorKind::Quarantined);
        if reached && let Ok(mut samples) = self.samples.lock() {
            samples.entry(operation).or_default().push(started.elapsed());
        }
        result
    }

    /// The samples of one operation, sorted.
    pub(crate) fn samples(&self, operation: &str) -> Vec<Duration> {
        let mut samples = self
            .samples
            .lock()
            .map(|samples| samples.get(operation).cloned().unwrap_or_default())
            .unwrap_or_default();
        samples.sort();
        samples
    }
}

impl Connector for Timed<'_> {
    fn describe(&self) -> CapabilityManifest {
        self.inner.describe()
    }

    fn search(&self, scope: &Scope, request: &SearchRequest) -> Result<SearchResponse> {
        self.time("search", || self.inner.search(scope, request))
    }

    fn fetch(&self, scope: &Scope, ids: &[DocumentId]) -> Result<Vec<StoredDocument>> {
        self.time("fetch", || self.inner.fetch(scope, ids))
    }

    fn upsert(&self, scope: &Scope, document: &Document) -> Result<MutationAck> {
        self.time("upsert", || self.inner.upsert(scope, document))
    }

    fn delete(&self, scope: &Scope, id: &DocumentId) -> Result<MutationAck> {
        self.time("delete", || self.inner.delete(scope, id))
    }

    fn watermark(&self, scope: &Scope) -> Result<Watermark> {
        self.time("watermark", || self.inner.watermark(scope))
    }

    fn snapshot_version(&self, scope: &Scope) -> Result<SnapshotVersion> {
        self.time("snapshot_version", || self.inner.snapshot_version(scope))
    }

    fn health(&self) -> Result<ConnectorHealth> {
        self.time("health", || self.inner.health())
    }

    fn certification_seed(&self, scope: &Scope, documents: &[Document]) -> Result<()> {
        self.inner.certification_seed(scope, documents)
    }

    fn certification_purge(&self, scope: &Scope) -> Result<()> {
        self.inner.certification_purge(scope)
    }
}

/// One operation's measured latency, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationLatency {
    /// The operation, such as `search`.
    pub operation: &'static str,
    /// How many calls were timed.
    pub calls: usize,
    /// Median, in microseconds.
    pub p50_us: u64,
    /// 99th percentile (nearest rank), in microseconds.
    pub p99_us: u64,
    /// The slowest call, in microseconds.
    pub max_us: u64,
    /// The p50 budget, in microseconds: a quarter of the call timeout.
    pub p50_budget_us: u64,
    /// The p99 budget, in microseconds: half of the call timeout.
    pub p99_budget_us: u64,
}

impl OperationLatency {
    /// Whether both percentiles are within their budgets.
    pub fn within_budget(&self) -> bool {
        self.p50_us <= self.p50_budget_us && self.p99_us <= self.p99_budget_us
    }
}

/// Summarizes sorted `samples` of `operation` against budgets derived from `call_timeout`;
/// `None` when nothing was timed.
pub(crate) fn summarize(
    operation: &'static str,
    samples: &[Duration],
    call_timeout: Duration,
) -> Option<OperationLatency> {
    if samples.is_empty() {
        return None;
    }
    let rank = |percent: usize| {
        let idx = (samples.len() * percent).div_ceil(100).max(1) - 1;
        micros(samples[idx.min(samples.len() - 1)])
    };
    Some(OperationLatency {
        operation,
        calls: samples.len(),
        p50_us: rank(50),
        p99_us: rank(99),
        max_us: samples.last().map_or(0, |max| micros(*max)),
        p50_budget_us: micros(call_timeout / 4),
        p99_budget_us: micros(call_timeout / 2),
    })
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
