//! The serving path: retrieve, change events, invalidations and write-through mutations, over
//! the registered stores, the durable state store and the in-memory reuse cache.
//!
//! Decisions come from `kyro_core::planner`; this module gathers the facts (ledger reads,
//! connector answers) and does the IO. Invariants it keeps:
//! - a change is acknowledged only after the state store committed it, and the reuse entries it
//!   covers are invalidated before the acknowledgement is sent;
//! - every retrieve's trace is durable before its packet is returned;
//! - connector output is re-checked (scope, ids, counts) before it can reach a packet.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use kyro_connector_sdk::{Connector, ErrorKind, SearchRequest, SearchResponse, ShortfallReason};
use kyro_core::change::{ChangeScope, ChangeTarget, ChangeType, ScopeKey};
use kyro_core::planner::{
    Action, CacheEntry, CachedItem, DiagnosticCode, DocumentFacts, Fingerprint, Fingerprinter,
    Invalidation, ItemVerdict, LedgerFacts, Note, PacketStatus, ReuseCache, Severity, StoreFacts,
    assess_item, decide, packet_status,
};
use kyro_core::replay::{Candidate, DocumentPlan, Observed, ReplayItem, StepPlan};
use kyro_core::{DocumentId, FreshnessMode, MutationOutcome, OwnershipMode, Scope, Watermark};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[cfg(test)]
mod tests;

use crate::api::{
    ApiError, ChangeEventResult, ContextItem, ContextOmission, ContextPacket,
    DocumentMutationResult, EvidenceDto, FreshnessProof, FreshnessScopeDto, MutationAckDto,
    MutationScopeDto, PacketMeta, ProofDiagnostics, ProvenanceDto, RetrieveRequest, ScopeDto,
    ValidChange, ValidRetrieve, WatermarkDto, rfc3339_ms,
};
use crate::config::ValidatedConfig;
use crate::stores::{RefusedStore, RegisteredStore};
use kyro_state::{
    ApplyOutcome, CaptureRow, CaptureStatus, ChangeInput, DocumentChange, DocumentKey, EventTenant,
    ScopeChange, SourceEvent, StateStore, TraceRow,
};

/// Milliseconds since the epoch, from the system clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

/// Shadow sessions keep their state in `<temp dir>/kyro-shadow-<pid>-<session id>`.
const SHADOW_DIR_PREFIX: &str = "kyro-shadow-";

/// Removes the shadow-session directories of hosts that are no longer running (a host that was
/// killed never dropped its sessions). Returns how many it removed. Linux only: elsewhere a
/// process's liveness is not checked and nothing is removed.
pub fn remove_orphaned_shadow_dirs() -> usize {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return 0 };
    let mut n_removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(SHADOW_DIR_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = !cfg!(target_os = "linux")
            || std::path::Path::new("/proc").join(pid.to_string()).exists();
        if !alive && std::fs::remove_dir_all(entry.path()).is_ok() {
            n_removed += 1;
        }
    }
    n_removed
}

/// Everything the routes share.
pub struct Runtime {
    /// The checked configuration.
    pub config: ValidatedConfig,
    /// Stores that serve.
    pub stores: Vec<Arc<RegisteredStore>>,
    /// Stores that were refused at startup.
    pub refused: Vec<RefusedStore>,
    /// The live session: the durable ledger, traces, feedback and capture.
    pub live: Arc<Session>,
    /// Shadow sessions by id.
    pub shadows: Mutex<HashMap<String, Arc<Session>>>,
}

/// Which evidence a failed or successful operation concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// Retrieve traces.
    Trace,
    /// Feedback.
    Feedback,
    /// Replay capture.
    Capture,
    /// The freshness ledger.
    PlannerState,
}

impl Evidence {
    /// Every kind, with its health-report name.
    pub const ALL: [(Self, &'static str); 4] = [
        (Self::Trace, "trace"),
        (Self::Feedback, "feedback"),
        (Self::Capture, "capture"),
        (Self::PlannerState, "planner_state"),
    ];

    /// The contract's `*_EVIDENCE_UNHEALTHY` code for this kind.
    pub fn unhealthy_code(self) -> &'static str {
        match self {
            Self::Trace => "TRACE_EVIDENCE_UNHEALTHY",
            Self::Feedback => "FEEDBACK_EVIDENCE_UNHEALTHY",
            Self::Capture => "REPLAY_CAPTURE_EVIDENCE_UNHEALTHY",
            Self::PlannerState => "PLANNER_STATE_EVIDENCE_UNHEALTHY",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// The state one session serves from: the live runtime's, or a shadow session's own.
pub struct Session {
    /// The shadow session id; `None` for the live session.
    pub id: Option<String>,
    /// The durable ledger, traces, feedback and capture.
    pub state: Arc<StateStore>,
    /// Group-commits retrieve traces (with their capture steps).
    pub traces: TraceWriter,
    /// Group-commits ledger changes (with their capture steps).
    pub changes: ChangeWriter,
    /// The reuse cache.
    pub cache: Mutex<ReuseCache>,
    /// Whether the last write of each evidence kind failed, by [`Evidence`].
    unhealthy: [std::sync::atomic::AtomicBool; 4],
    /// Whether serving steps are captured.
    pub capture: bool,
    /// Whether connector mutations are allowed (always for the live session).
    pub allow_mutations: bool,
    /// When a shadow session expires, in Unix milliseconds.
    pub expires_at_ms: Option<i64>,
    /// A shadow session's private directory, removed with the session.
    pub directory: Option<std::path::PathBuf>,
    /// The highest generation this session has seen committed (read from the ledger, or
    /// applied by itself): a lower bound of the ledger's generation at any later moment.
    observed_generation: std::sync::atomic::AtomicU64,
}

impl Session {
    /// A session over `state`, with writers started on the current tokio runtime; `generation`
    /// is the state's generation when the session starts.
    pub fn new(
        state: Arc<StateStore>,
        cache_entries: usize,
        capture: bool,
        generation: u64,
    ) -> Self {
        Self {
            id: None,
            traces: trace_writer(Arc::clone(&state)),
            changes: change_writer(Arc::clone(&state)),
            state,
            cache: Mutex::new(ReuseCache::new(cache_entries)),
            unhealthy: Default::default(),
            capture,
            allow_mutations: true,
            expires_at_ms: None,
            directory: None,
            observed_generation: std::sync::atomic::AtomicU64::new(generation),
        }
    }

    /// Records that `generation` is committed.
    fn observe(&self, generation: u64) {
        self.observed_generation.fetch_max(generation, std::sync::atomic::Ordering::AcqRel);
    }

    /// A generation committed no later than now.
    fn observed(&self) -> u64 {
        self.observed_generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Records whether the latest operation on some evidence succeeded.
    pub fn mark(&self, evidence: &[Evidence], healthy: bool) {
        for kind in evidence {
            self.unhealthy[kind.slot()].store(!healthy, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Whether the last write of `evidence` failed.
    pub fn is_unhealthy(&self, evidence: Evidence) -> bool {
        self.unhealthy[evidence.slot()].load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The names of the evidence kinds whose last write failed.
    pub fn failures(&self) -> Vec<&'static str> {
        Evidence::ALL
            .iter()
            .filter(|(kind, _)| self.is_unhealthy(*kind))
            .map(|(_, name)| *name)
            .collect()
    }

    /// Refuses a read of `evidence` while its last write failed: a report built from it would
    /// silently miss what could not be stored.
    ///
    /// # Errors
    ///
    /// 503 with the kind's `*_EVIDENCE_UNHEALTHY` code.
    pub fn require_healthy(&self, evidence: &[Evidence]) -> Result<(), ApiError> {
        match evidence.iter().find(|kind| self.is_unhealthy(**kind)) {
            Some(kind) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                kind.unhealthy_code(),
                "evidence persistence failed recently; reports are refused until it recovers",
            )),
            None => Ok(()),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(directory) = &self.directory {
            let _ = std::fs::remove_dir_all(directory);
        }
    }
}

type Reply<O> = tokio::sync::oneshot::Sender<Result<O, String>>;

/// Group commit: items submitted while a batch is being committed share the next commit (one
/// transaction, one fsync), and each submitter waits for the commit that carries its item.
/// Retrieve traces and ledger changes both go through one of these.
pub struct GroupCommit<I, O> {
    sender: tokio::sync::mpsc::Sender<(I, Reply<O>)>,
}

/// The most items one commit carries.
const MAX_BATCH: usize = 512;

impl<I: Send + 'static, O: Send + 'static> GroupCommit<I, O> {
    /// Starts the committing task on the current tokio runtime. `commit` makes a batch durable
    /// and returns each item's own outcome, in order, or fails the whole batch.
    pub fn spawn<F, Fut>(commit: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<Result<O, String>>, String>> + Send,
    {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<(I, Reply<O>)>(4096);
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match receiver.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
                let (items, replies): (Vec<I>, Vec<Reply<O>>) = batch.into_iter().unzip();
                match commit(items).await {
                    Ok(outcomes) => {
                        for (reply, outcome) in replies.into_iter().zip(outcomes) {
                            let _ = reply.send(outcome);
                        }
                    }
                    Err(message) => {
                        for reply in replies {
                            let _ = reply.send(Err(message.clone()));
                        }
                    }
                }
            }
        });
        Self { sender }
    }

    /// Submits one item and waits until the commit that carries it is durable.
    ///
    /// # Errors
    ///
    /// The commit failed, the item was refused, or the committing task stopped.
    pub async fn submit(&self, item: I) -> Result<O, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.sender
            .send((item, reply))
            .await
            .map_err(|_| "the committing task stopped".to_owned())?;
        answer.await.map_err(|_| "the committing task stopped".to_owned())?
    }
}

/// Group-committed retrieve traces.
pub type TraceWriter = GroupCommit<TraceRow, ()>;

/// Group-committed ledger changes.
pub type ChangeWriter = GroupCommit<ChangeInput, ApplyOutcome>;

/// The trace writer over `state`.
pub fn trace_writer(state: Arc<StateStore>) -> TraceWriter {
    GroupCommit::spawn(move |rows: Vec<TraceRow>| {
        let state = Arc::clone(&state);
        async move {
            let outcomes = state.put_traces(&rows).await.map_err(|err| err.to_string())?;
            Ok(outcomes.into_iter().map(|outcome| outcome.map_err(|err| err.to_string())).collect())
        }
    })
}

/// The change writer over `state`.
pub fn change_writer(state: Arc<StateStore>) -> ChangeWriter {
    GroupCommit::spawn(move |changes: Vec<ChangeInput>| {
        let state = Arc::clone(&state);
        async move {
            let outcomes = state.apply_changes(&changes).await.map_err(|err| err.to_string())?;
            Ok(outcomes.into_iter().map(Ok).collect())
        }
    })
}

/// One stage of a retrieve, for the trace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stage {
    /// `plan`, `ledger_check`, `reuse_lookup`, `backend_fetch`, `stale_prune`, `trace_persist`.
    pub stage: String,
    /// How long it took.
    pub duration_ms: f64,
    /// Whether it hit (cache) or succeeded.
    pub hit: bool,
    /// Items it produced.
    pub items_produced: usize,
    /// Detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A pruned item, for the trace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StalePruned {
    /// The document.
    pub doc_id: String,
    /// The generation of the change it is older than.
    pub stale_at_generation: u64,
    /// The generation the retrieve required.
    pub required_generation: u64,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A diagnostic, for the trace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiagnosticNote {
    /// The contract's code.
    pub code: String,
    /// `info`, `warning` or `error`.
    pub severity: String,
    /// For people.
    pub message: String,
    /// The scope it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The trace's scope: the request scope plus the filter's hash and fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceScope {
    /// The request scope.
    #[serde(flatten)]
    pub scope: ScopeDto,
    /// Hash of the filter.
    pub metadata_filter_hash: String,
    /// Fingerprint of the filter.
    pub metadata_filter_fingerprint: String,
}

/// The contract's `ContextTrace`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContextTrace {
    /// Its id.
    pub trace_id: String,
    /// When (RFC 3339).
    pub timestamp: String,
    /// The scope.
    pub scope: TraceScope,
    /// Decimal u64 hash of the query.
    pub query_hash: String,
    /// `top_k` asked for.
    pub top_k_requested: u32,
    /// Mode asked for.
    pub freshness_mode: String,
    /// Mode served.
    pub served_freshness_mode: String,
    /// `context_reuse_hit` or `backend_fetch`.
    pub execution_path: String,
    /// Stages.
    pub stages: Vec<Stage>,
    /// The runtime generation.
    pub freshness_generation: u64,
    /// Items returned.
    pub items_returned: usize,
    /// Items omitted.
    pub items_omitted: usize,
    /// The packet status.
    pub status: String,
    /// Host latency.
    pub total_latency_ms: f64,
    /// Watermarks of the proof.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freshness_watermarks: Option<Vec<WatermarkDto>>,
    /// Pruned items.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub stale_pruned: Vec<StalePruned>,
    /// Diagnostics.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub diagnostic_notes: Vec<DiagnosticNote>,
    /// Why it was degraded or blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degradation_reason: Option<String>,
    /// The store used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector_used: Option<String>,
    /// Connector latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector_latency_ms: Option<f64>,
}

fn elapsed_ms(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

fn connector_error(store_id: &str, err: &kyro_connector_sdk::ConnectorError) -> ApiError {
    let status = match err.kind() {
        ErrorKind::InvalidRequest | ErrorKind::LimitExceeded => StatusCode::BAD_REQUEST,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let code = if status == StatusCode::BAD_REQUEST {
        "VALIDATION_FAILED"
    } else {
        "CONNECTOR_UNAVAILABLE"
    };
    tracing::warn!(store = %store_id, kind = %err.kind(), error = %err.message(), "connector call failed");
    ApiError::new(
        status,
        code,
        format!("store {store_id} answered {}: {}", err.kind(), err.message()),
    )
}

/// Runs a blocking connector call on the guard's workers and waits for it without blocking the
/// async runtime; the guard's timeout and quarantine apply.
async fn call_connector<T: Send + 'static>(
    store: &RegisteredStore,
    operation: &'static str,
    call: impl FnOnce(&dyn Connector) -> kyro_connector_sdk::Result<T> + Send + 'static,
) -> kyro_connector_sdk::Result<T> {
    let pending = start_call(store, call)?;
    finish_call(store, operation, pending).await
}

/// The backend search a retrieve asks for, as a call for the guard's workers.
fn search_call(
    valid: &ValidRetrieve,
) -> impl FnOnce(&dyn Connector) -> kyro_connector_sdk::Result<SearchResponse> + Send + 'static {
    let request = SearchRequest {
        embedding: valid.embedding.clone(),
        top_k: valid.top_k,
        filter: valid.filter.clone(),
        include_content: valid.include_content,
    };
    let scope = valid.scope.clone();
    move |connector| connector.search(&scope, &request)
}

/// A connector call running on the guard's workers.
struct PendingCall<T> {
    answer: tokio::sync::oneshot::Receiver<kyro_connector_sdk::Result<T>>,
    deadline: tokio::time::Instant,
}

/// Starts a connector call; [`finish_call`] waits for it (bounded by the store's timeout from
/// now) and applies the quarantine rule.
fn start_call<T: Send + 'static>(
    store: &RegisteredStore,
    call: impl FnOnce(&dyn Connector) -> kyro_connector_sdk::Result<T> + Send + 'static,
) -> kyro_connector_sdk::Result<PendingCall<T>> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    store.connector.submit(call, move |result| {
        let _ = reply.send(result);
    })?;
    Ok(PendingCall { answer, deadline: tokio::time::Instant::now() + store.config.call_timeout })
}

async fn finish_call<T: Send + 'static>(
    store: &RegisteredStore,
    operation: &'static str,
    pending: PendingCall<T>,
) -> kyro_connector_sdk::Result<T> {
    let result = match tokio::time::timeout_at(pending.deadline, pending.answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(kyro_connector_sdk::ConnectorError::internal("connector worker stopped")),
        Err(_) => Err(kyro_connector_sdk::ConnectorError::new(
            ErrorKind::Timeout,
            format!(
                "store {} did not answer {operation} within {:?}",
                store.config.id, store.config.call_timeout
            ),
        )),
    };
    store.connector.observe(operation, result)
}

fn freshness_scope(scope: &Scope) -> FreshnessScopeDto {
    FreshnessScopeDto::Namespace {
        namespace: scope.namespace().to_owned(),
        tenant_id: Some(scope.tenant_id().to_owned()),
    }
}

fn diagnostic_name(code: DiagnosticCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

/// The retrieve's reuse fingerprint, its filter's fingerprint, and its query hash (the
/// embedding alone, for the trace).
///
/// The reuse fingerprint is SHA-256 over every field of the reuse boundary (every scope field,
/// the filter, top_k, the content flag, the store, its plugin and the certification suite
/// version) and the query, cut to 64 bits: a client chooses every number of its query, so a
/// hash it could steer into another request's fingerprint would let it read that request's
/// cached answer. (The cache also compares the entry's scope on every hit.)
fn fingerprint(
    request: &RetrieveRequest,
    valid: &ValidRetrieve,
    store: &RegisteredStore,
) -> (Fingerprint, RequestHashes) {
    let scope = &request.scope;
    let filter = valid.filter.as_ref().map(|filter| format!("{:?}", filter.root()));
    let filter_fingerprint =
        Fingerprinter::default().optional(filter.as_deref()).finish().to_string();
    let query: Vec<u8> =
        valid.embedding.as_slice().iter().flat_map(|value| value.to_bits().to_le_bytes()).collect();
    let query_digest = Sha256::digest(&query);
    let auth_scope = scope.auth_scope.as_ref().map(|entries| entries.join("\u{1f}"));
    let top_k = valid.top_k.to_string();
    let plugin_sha256 = store.report.plugin.sha256.as_deref().unwrap_or_default();
    let fields: [Option<&str>; 15] = [
        Some(&scope.tenant_id),
        Some(&scope.namespace),
        scope.app_id.as_deref(),
        scope.locale.as_deref(),
        auth_scope.as_deref(),
        scope.entitlement_boundary.as_deref(),
        scope.embedding_model_id.as_deref(),
        scope.reranker_version.as_deref(),
        scope.prompt_template_version.as_deref(),
        filter.as_deref(),
        Some(&top_k),
        Some(if valid.include_content { "content" } else { "no-content" }),
        Some(&store.config.id),
        Some(plugin_sha256),
        Some(kyro_certification::SUITE_VERSION),
    ];
    let mut key = Sha256::new();
    for field in fields {
        // Length-prefixed and tagged: ("ab", "c") differs from ("a", "bc"), absent from empty.
        match field {
            Some(value) => {
                key.update([1]);
                key.update((value.len() as u64).to_le_bytes());
                key.update(value.as_bytes());
            }
            None => key.update([0]),
        }
    }
    key.update(query_digest);
    let hashes =
        RequestHashes { filter: filter_fingerprint, query: first_u64(&query_digest).to_string() };
    (Fingerprint(first_u64(&key.finalize())), hashes)
}

/// The first eight bytes of a digest, as a little-endian number.
fn first_u64(digest: &[u8]) -> u64 {
    let mut bytes = [0_u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

/// The hashes a retrieve's trace names its filter and query by.
struct RequestHashes {
    filter: String,
    query: String,
}

/// What a retrieve produced, before it is turned into the wire packet.
struct Assembled {
    /// What the backend returned, checked, before pruning (for the replay capture).
    candidates: Vec<Candidate>,
    items: Vec<(CachedItem, &'static str)>,
    omissions: Vec<ContextOmission>,
    notes: Vec<Note>,
    stale_pruned: Vec<StalePruned>,
    status: PacketStatus,
    execution_path: &'static str,
    generation: u64,
    short: bool,
    degradation_reason: Option<String>,
    connector_latency_ms: Option<f64>,
}

impl Runtime {
    /// The session a request is served in: the live one, or the named shadow session.
    ///
    /// # Errors
    ///
    /// 404 `NOT_FOUND` when no live shadow session has that id (an expired one is dropped).
    pub fn session(&self, shadow_id: Option<&str>) -> Result<Arc<Session>, ApiError> {
        let Some(id) = shadow_id else { return Ok(Arc::clone(&self.live)) };
        let not_found = |message: &str| ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", message);
        let mut shadows = self.shadows.lock().map_err(|_| not_found("no such shadow session"))?;
        match shadows.get(id) {
            Some(session) if session.expires_at_ms.is_none_or(|expires| expires > now_ms()) => {
                Ok(Arc::clone(session))
            }
            Some(_) => {
                shadows.remove(id);
                Err(not_found("the shadow session expired"))
            }
            None => Err(not_found("no shadow session with that id")),
        }
    }

    /// Drops every expired shadow session (its private state goes with it).
    pub fn expire_shadow_sessions(&self) {
        let now = now_ms();
        if let Ok(mut shadows) = self.shadows.lock() {
            shadows.retain(|_, session| session.expires_at_ms.is_none_or(|expires| expires > now));
        }
    }

    /// Starts a shadow session seeded from `primer`: its own ledger, traces, feedback and
    /// capture in a private SQLite file, its own reuse cache, the live stores for reads.
    /// Returns the session id and when it expires (Unix milliseconds).
    ///
    /// # Errors
    ///
    /// 503 `GATEWAY_OVERLOADED` when the configured number of sessions is alive, or
    /// `PLANNER_STATE_PERSISTENCE_FAILED` when its state could not be created.
    pub async fn create_shadow_session(
        &self,
        primer: &kyro_state::Primer,
        allow_mutations: bool,
    ) -> Result<(String, i64), ApiError> {
        self.expire_shadow_sessions();
        let overloaded = |n_alive: usize| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "GATEWAY_OVERLOADED",
                format!(
                    "{n_alive} shadow sessions are alive, the configured maximum; retry after one expires"
                ),
            )
        };
        let n_alive = self.shadows.lock().map(|shadows| shadows.len()).unwrap_or(usize::MAX);
        if n_alive >= self.config.max_shadow_sessions {
            return Err(overloaded(n_alive));
        }
        let id = format!("sh_{}", uuid::Uuid::new_v4().simple());
        let directory =
            std::env::temp_dir().join(format!("{SHADOW_DIR_PREFIX}{}-{id}", std::process::id()));
        let failed = |what: &str, err: &dyn std::fmt::Display| {
            tracing::error!(error = %err, "shadow session {what} failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "PLANNER_STATE_PERSISTENCE_FAILED",
                format!("the shadow session's state could not be {what}"),
            )
        };
        std::fs::create_dir_all(&directory).map_err(|err| failed("created", &err))?;
        let url = format!("sqlite://{}", directory.join("state.db").display());
        // sqlx's migrator future is not `Send` (a higher-ranked lifetime), so the open runs to
        // completion on a blocking thread of its own instead of inside this handler's future.
        let handle = tokio::runtime::Handle::current();
        let primer = primer.clone();
        let opened = tokio::task::spawn_blocking(move || {
            handle.block_on(async move {
                let state = StateStore::open(&url).await?;
                state.seed(&primer).await?;
                Ok::<_, kyro_state::StateError>(state)
            })
        })
        .await
        .map_err(|err| failed("opened", &err))?;
        let state = match opened {
            Ok(state) => state,
            Err(err) => {
                let _ = std::fs::remove_dir_all(&directory);
                return Err(failed("seeded", &err));
            }
        };
        let expires_at_ms = now_ms().saturating_add(
            i64::try_from(self.config.shadow_session_ttl.as_millis()).unwrap_or(i64::MAX),
        );
        let generation = match state.current_generation().await {
            Ok(generation) => generation,
            Err(err) => {
                let _ = std::fs::remove_dir_all(&directory);
                return Err(failed("read", &err));
            }
        };
        let mut session =
            Session::new(Arc::new(state), self.config.reuse_cache_entries, true, generation);
        session.id = Some(id.clone());
        session.allow_mutations = allow_mutations;
        session.expires_at_ms = Some(expires_at_ms);
        session.directory = Some(directory);
        // Another request may have filled the last slot while this one opened its state; the
        // bound is enforced where the session is inserted (dropping the session removes its files).
        let mut shadows = self.shadows.lock().map_err(|_| overloaded(usize::MAX))?;
        if shadows.len() >= self.config.max_shadow_sessions {
            return Err(overloaded(shadows.len()));
        }
        shadows.insert(id.clone(), Arc::new(session));
        Ok((id, expires_at_ms))
    }

    /// The store serving `namespace`, the first configured one that does.
    fn store_for(&self, namespace: &str) -> Result<&Arc<RegisteredStore>, ApiError> {
        self.stores.iter().find(|store| store.serves(namespace)).ok_or_else(|| {
            if self.refused.is_empty() {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    format!("no configured store serves namespace {namespace}"),
                )
            } else {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "STORE_NOT_CERTIFIED",
                    format!(
                        "no certified store serves namespace {namespace}; refused stores: {}",
                        self.refused_ids()
                    ),
                )
            }
        })
    }

    fn refused_ids(&self) -> String {
        self.refused.iter().map(|store| store.id.as_str()).collect::<Vec<_>>().join(", ")
    }

    async fn ledger_facts(
        &self,
        session: &Session,
        keys: &[String],
        documents: &[DocumentKey],
    ) -> Option<(LedgerFacts, BTreeMap<String, DocumentFacts>, Vec<ScopeSeen>)> {
        match session.state.read_freshness(keys, documents).await {
            Ok(view) => {
                session.mark(&[Evidence::PlannerState], true);
                session.observe(view.current_generation);
                let seen = view
                    .scope_generations
                    .iter()
                    .zip(&view.scope_acknowledged_at_ms)
                    .map(|((key, generation), acknowledged_at_ms)| ScopeSeen {
                        key: key.clone(),
                        generation: *generation,
                        acknowledged_at_ms: *acknowledged_at_ms,
                    })
                    .collect();
                let scope_generation = view
                    .scope_generations
                    .iter()
                    .map(|(_, generation)| *generation)
                    .max()
                    .unwrap_or(0);
                let documents = view
                    .documents
                    .into_iter()
                    .map(|state| {
                        (
                            state.key.doc_id.clone(),
                            DocumentFacts {
                                generation: state.generation,
                                revision: state.revision,
                                watermark: state.watermark,
                                tombstone: state.tombstone,
                                event_timestamp_ms: state.event_timestamp_ms,
                            },
                        )
                    })
                    .collect();
                Some((
                    LedgerFacts { current_generation: view.current_generation, scope_generation },
                    documents,
                    seen,
                ))
            }
            Err(err) => {
                session.mark(&[Evidence::PlannerState], false);
                tracing::error!(error = %err, "freshness ledger read failed");
                None
            }
        }
    }

    /// `POST /v1/context/retrieve`.
    ///
    /// # Errors
    ///
    /// Validation failures (4xx), an unavailable store with nothing to fall back on, or a trace
    /// that could not be persisted.
    pub async fn retrieve(
        &self,
        session: &Session,
        request: RetrieveRequest,
        raw_body: Option<String>,
    ) -> Result<ContextPacket, ApiError> {
        let started = Instant::now();
        let valid = request.validate(self.config.default_freshness)?;
        let store = Arc::clone(self.store_for(valid.scope.namespace())?);
        if let Some(vector) = store.manifest.vector
            && vector.dimension as usize != valid.embedding.dimension()
        {
            return Err(ApiError::validation(format!(
                "query_embedding has {} dimensions; store {} holds {}",
                valid.embedding.dimension(),
                store.config.id,
                vector.dimension
            )));
        }
        if valid.top_k > store.manifest.caps.max_top_k {
            return Err(ApiError::validation(format!(
                "top_k {} is over store {}'s cap of {}",
                valid.top_k, store.config.id, store.manifest.caps.max_top_k
            )));
        }
        if let Some(filter) = &valid.filter {
            for key in filter.keys() {
                if !store.manifest.filterable_keys.allows(key) {
                    return Err(ApiError::validation(format!(
                        "filter key {key} is not filterable on store {}",
                        store.config.id
                    )));
                }
            }
        }
        let (fingerprint, hashes) = fingerprint(&request, &valid, &store);
        let mut stages = Vec::new();
        let read_keys: Vec<String> =
            ScopeKey::read_keys(valid.scope.tenant_id(), valid.scope.namespace(), &store.config.id)
                .into_iter()
                .map(|key| key.0)
                .collect();
        let cached = session.cache.lock().ok().and_then(|mut cache| {
            cache
                .get_scoped(
                    fingerprint,
                    valid.scope.tenant_id(),
                    valid.scope.namespace(),
                    &store.config.id,
                )
                .cloned()
        });
        let cached_docs: Vec<DocumentKey> = cached
            .as_ref()
            .map(|entry| {
                entry.items.iter().map(|item| document_key(&valid.scope, &item.id)).collect()
            })
            .unwrap_or_default();
        // A search started before the ledger read may answer from before a change the read then
        // sees, so what it fetched is only known to be as fresh as a generation committed
        // before it started. With a `required_generation` the search waits for the read, so
        // the answer is at least as fresh as what the client asked for.
        let searched_at = session.observed();
        let mut early = if cached.is_none() && valid.required_generation.is_none() {
            Self::start_search(&store, &valid)
        } else {
            None
        };
        let searched_early = early.is_some();
        let ledger_started = Instant::now();
        let ledger = self.ledger_facts(session, &read_keys, &cached_docs).await;
        stages.push(Stage {
            stage: "ledger_check".to_owned(),
            duration_ms: elapsed_ms(ledger_started),
            hit: ledger.is_some(),
            items_produced: 0,
            detail: ledger
                .as_ref()
                .map(|(facts, _, _)| format!("generation {}", facts.current_generation)),
        });
        // The cached entry is fresh only if none of its documents changed after it was filled.
        let cached = cached.map(|mut entry| {
            if let Some((_, documents, _)) = &ledger
                && let Some(newest) = documents.values().map(|facts| facts.generation).max()
                && newest > entry.generation
            {
                entry.invalidated_at = Some(newest);
            }
            entry
        });
        let facts = StoreFacts { ownership: store.config.ownership, certified: true };
        let decision = decide(
            valid.freshness_mode,
            self.config.production,
            facts,
            ledger.as_ref().map(|(facts, _, _)| *facts),
            valid.required_generation,
            cached.as_ref(),
        );
        stages.push(Stage {
            stage: "reuse_lookup".to_owned(),
            duration_ms: 0.0,
            hit: matches!(decision.action, Action::Reuse { .. }),
            items_produced: cached.as_ref().map_or(0, |entry| entry.items.len()),
            detail: Some(format!("{:?}", decision.action)),
        });
        let generation = ledger.as_ref().map_or(0, |(facts, _, _)| facts.current_generation);
        let pre_step = PreStep {
            read_keys: read_keys.clone(),
            seen: ledger.as_ref().map(|(_, _, seen)| seen.clone()).unwrap_or_default(),
            raw_body,
        };
        let mut notes = decision.notes.clone();
        let degraded_by_notes = notes.iter().any(|note| {
            matches!(
                note.code,
                DiagnosticCode::ConnectorCapabilityMismatch
                    | DiagnosticCode::RequiredGenerationUnsatisfied
            )
        });
        let assembled = match decision.action {
            Action::Block => Assembled {
                items: Vec::new(),
                omissions: Vec::new(),
                degradation_reason: notes.first().map(|note| note.message.clone()),
                notes,
                stale_pruned: Vec::new(),
                status: PacketStatus::StaleBlocked,
                execution_path: "backend_fetch",
                generation,
                short: false,
                connector_latency_ms: None,
                candidates: Vec::new(),
            },
            Action::Reuse { stale } => {
                let entry =
                    cached.clone().unwrap_or_else(|| empty_entry(&valid.scope, &store.config.id));
                Assembled {
                    items: entry.items.into_iter().map(|item| (item, "context_reuse")).collect(),
                    omissions: Vec::new(),
                    degradation_reason: stale
                        .then(|| "stale reusable context served (eventual)".to_owned()),
                    status: packet_status(false, stale || degraded_by_notes, 0, false),
                    notes,
                    stale_pruned: Vec::new(),
                    execution_path: "context_reuse_hit",
                    generation,
                    short: false,
                    connector_latency_ms: None,
                    candidates: Vec::new(),
                }
            }
            Action::Fetch { fallback } => {
                let fetched_at =
                    if searched_early { searched_at.min(generation) } else { generation };
                self.fetch(
                    session,
                    &store,
                    early.take(),
                    &valid,
                    decision.served_mode,
                    fetched_at,
                    fallback,
                    cached.as_ref(),
                    fingerprint,
                    &mut notes,
                    &mut stages,
                    degraded_by_notes,
                )
                .await?
            }
        };
        if let Some(pending) = early {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let _ = finish_call(&store, "search", pending).await;
            });
        }
        let total_latency_ms = elapsed_ms(started);
        self.finish(
            session,
            pre_step,
            request,
            valid,
            &store,
            decision.served_mode,
            fingerprint,
            hashes,
            assembled,
            stages,
            total_latency_ms,
        )
        .await
    }

    /// Starts the backend search for a retrieve before the ledger has been read, when the
    /// answer cannot come from the reuse cache anyway: the search and the ledger read then
    /// overlap instead of adding up. A search the planner turns out not to need is still
    /// awaited in the background, so a panic or hang in it quarantines the connector as usual.
    fn start_search(
        store: &Arc<RegisteredStore>,
        valid: &ValidRetrieve,
    ) -> Option<PendingCall<SearchResponse>> {
        start_call(store, search_call(valid)).ok()
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; the arguments are the retrieve's facts"
    )]
    async fn fetch(
        &self,
        session: &Session,
        store: &Arc<RegisteredStore>,
        early: Option<PendingCall<SearchResponse>>,
        valid: &ValidRetrieve,
        served_mode: FreshnessMode,
        generation: u64,
        fallback: bool,
        cached: Option<&CacheEntry>,
        fingerprint: Fingerprint,
        notes: &mut Vec<Note>,
        stages: &mut Vec<Stage>,
        degraded_by_notes: bool,
    ) -> Result<Assembled, ApiError> {
        let fetch_started = Instant::now();
        let result = match early {
            Some(pending) => finish_call(store, "search", pending).await,
            None => call_connector(store, "search", search_call(valid)).await,
        };
        let connector_latency_ms = elapsed_ms(fetch_started);
        let response = match result {
            Ok(response) => response,
            Err(err) => {
                stages.push(Stage {
                    stage: "backend_fetch".to_owned(),
                    duration_ms: connector_latency_ms,
                    hit: false,
                    items_produced: 0,
                    detail: Some(format!("{}: {}", err.kind(), err.message())),
                });
                if let (true, Some(entry)) = (fallback, cached) {
                    notes.push(Note {
                        code: DiagnosticCode::StaleReuseServed,
                        severity: Severity::Warning,
                        message: format!(
                            "the backend failed ({}); stale reusable context was served",
                            err.kind()
                        ),
                    });
                    return Ok(Assembled {
                        items: entry
                            .items
                            .iter()
                            .cloned()
                            .map(|item| (item, "context_reuse"))
                            .collect(),
                        omissions: Vec::new(),
                        notes: std::mem::take(notes),
                        stale_pruned: Vec::new(),
                        status: PacketStatus::Degraded,
                        execution_path: "context_reuse_hit",
                        generation,
                        short: false,
                        degradation_reason: Some(format!("backend unavailable: {}", err.message())),
                        connector_latency_ms: Some(connector_latency_ms),
                        candidates: Vec::new(),
                    });
                }
                return Err(connector_error(&store.config.id, &err));
            }
        };
        stages.push(Stage {
            stage: "backend_fetch".to_owned(),
            duration_ms: connector_latency_ms,
            hit: true,
            items_produced: response.hits.len(),
            detail: response.shortfall.as_ref().map(|shortfall| {
                format!(
                    "{} of {} ({:?})",
                    shortfall.returned, shortfall.requested, shortfall.reason
                )
            }),
        });
        let SearchResponse { hits, shortfall } = response;
        // Connector output is untrusted: keep only hits of the requested scope, once each, at most top_k.
        let mut seen = BTreeSet::new();
        let mut items = Vec::new();
        let mut omissions = Vec::new();
        let now = now_ms();
        for hit in hits {
            let document = hit.document;
            if document.scope != valid.scope {
                notes.push(Note {
                    code: DiagnosticCode::ConnectorScopeViolation,
                    severity: Severity::Error,
                    message: format!(
                        "store {} returned a document of another scope; it was dropped",
                        store.config.id
                    ),
                });
                continue;
            }
            if !seen.insert(document.id.clone())
                || items.len() >= valid.top_k as usize
                || !hit.score.is_finite()
            {
                omissions.push(ContextOmission {
                    id: document.id.to_string(),
                    reason: "verifier_rejected".to_owned(),
                    detail: Some("duplicate, non-finite score, or beyond top_k".to_owned()),
                });
                continue;
            }
            items.push(CachedItem {
                id: document.id,
                score: hit.score,
                content: if valid.include_content { document.content } else { None },
                metadata: document.metadata,
                revision: document.revision,
                watermark: document.watermark,
                retrieved_at_ms: now,
            });
        }
        // Stale pruning against what the ledger acknowledged for these documents, read after the
        // fetch so that a change acknowledged before or during it is taken into account.
        let prune_started = Instant::now();
        let candidates: Vec<Candidate> = items
            .iter()
            .map(|item| Candidate {
                id: item.id.to_string(),
                revision: item.revision.as_ref().map(|revision| revision.as_str().to_owned()),
                watermark: item.watermark.map(Watermark::value),
            })
            .collect();
        let keys: Vec<DocumentKey> =
            items.iter().map(|item| document_key(&valid.scope, &item.id)).collect();
        let after = self.ledger_facts(session, &[], &keys).await;
        let mut stale_pruned = Vec::new();
        let mut kept = Vec::new();
        let mut cacheable = after.is_some();
        match &after {
            None if served_mode == FreshnessMode::Strict => {
                notes.push(Note {
                    code: DiagnosticCode::WatermarkLookupFailed,
                    severity: Severity::Error,
                    message: "the freshness ledger could not be read after the fetch".to_owned(),
                });
                return Ok(Assembled {
                    items: Vec::new(),
                    omissions: Vec::new(),
                    notes: std::mem::take(notes),
                    stale_pruned,
                    status: PacketStatus::StaleBlocked,
                    execution_path: "backend_fetch",
                    generation,
                    short: false,
                    degradation_reason: Some("the freshness ledger could not be read".to_owned()),
                    connector_latency_ms: Some(connector_latency_ms),
                    candidates,
                });
            }
            None => kept = items,
            Some((facts_after, documents, _)) => {
                if facts_after.current_generation > generation {
                    notes.push(Note {
                        code: DiagnosticCode::GenerationAdvancedDuringRetrieval,
                        severity: Severity::Info,
                        message: format!(
                            "the generation moved from {generation} to {} during the fetch",
                            facts_after.current_generation
                        ),
                    });
                }
                for item in items {
                    let verdict = documents
                        .get(item.id.as_str())
                        .map(|facts| assess_item(item.revision.as_ref(), item.watermark, facts));
                    match verdict {
                        Some(ItemVerdict::Stale { detail, stale_at_generation, tombstone })
                            if served_mode != FreshnessMode::Eventual =>
                        {
                            cacheable = false;
                            if tombstone {
                                notes.push(Note {
                                    code: DiagnosticCode::TombstonePruned,
                                    severity: Severity::Info,
                                    message: format!(
                                        "{} was deleted; the store still returned it",
                                        item.id
                                    ),
                                });
                            }
                            omissions.push(ContextOmission {
                                id: item.id.to_string(),
                                reason: "stale_pruned".to_owned(),
                                detail: Some(detail.clone()),
                            });
                            stale_pruned.push(StalePruned {
                                doc_id: item.id.to_string(),
                                stale_at_generation,
                                required_generation: stale_at_generation,
                                reason: Some(detail),
                            });
                        }
                        Some(ItemVerdict::Stale { detail, .. }) => {
                            notes.push(Note {
                                code: DiagnosticCode::StaleReuseServed,
                                severity: Severity::Warning,
                                message: format!("{} may be stale (eventual): {detail}", item.id),
                            });
                            kept.push(item);
                        }
                        Some(ItemVerdict::Keep) | None => {
                            if documents
                                .get(item.id.as_str())
                                .is_some_and(|facts| facts.generation > generation)
                            {
                                cacheable = false;
                            }
                            kept.push(item);
                        }
                    }
                }
            }
        }
        stages.push(Stage {
            stage: "stale_prune".to_owned(),
            duration_ms: elapsed_ms(prune_started),
            hit: true,
            items_produced: kept.len(),
            detail: Some(format!("{} pruned", stale_pruned.len())),
        });
        let short = match &shortfall {
            Some(shortfall) => {
                let exhausted = matches!(shortfall.reason, ShortfallReason::Exhausted);
                if !exhausted {
                    notes.push(Note {
                        code: DiagnosticCode::ContextGuardRejected,
                        severity: Severity::Warning,
                        message: format!(
                            "the store returned {} of {} items: its index stopped scanning early",
                            shortfall.returned, shortfall.requested
                        ),
                    });
                    omissions.push(ContextOmission {
                        id: "request".to_owned(),
                        reason: "rank_cutoff".to_owned(),
                        detail: Some(format!(
                            "{} of {} returned; the index scan limit was reached",
                            shortfall.returned, shortfall.requested
                        )),
                    });
                }
                !exhausted
            }
            None => false,
        };
        if cacheable && !short {
            let entry = CacheEntry {
                items: kept.clone(),
                generation,
                tenant_id: valid.scope.tenant_id().to_owned(),
                namespace: valid.scope.namespace().to_owned(),
                store_id: store.config.id.clone(),
                invalidated_at: None,
            };
            if let Ok(mut cache) = session.cache.lock() {
                cache.insert(fingerprint, entry);
            }
        }
        let status = packet_status(false, degraded_by_notes, stale_pruned.len(), short);
        Ok(Assembled {
            items: kept.into_iter().map(|item| (item, "backend")).collect(),
            omissions,
            notes: std::mem::take(notes),
            stale_pruned,
            status,
            execution_path: "backend_fetch",
            generation,
            short,
            degradation_reason: None,
            connector_latency_ms: Some(connector_latency_ms),
            candidates,
        })
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; the arguments are the retrieve's facts"
    )]
    async fn finish(
        &self,
        session: &Session,
        pre_step: PreStep,
        request: RetrieveRequest,
        valid: ValidRetrieve,
        store: &RegisteredStore,
        served_mode: FreshnessMode,
        fingerprint: Fingerprint,
        hashes: RequestHashes,
        assembled: Assembled,
        mut stages: Vec<Stage>,
        total_latency_ms: f64,
    ) -> Result<ContextPacket, ApiError> {
        let now = now_ms();
        let trace_id = format!("tr_{}", uuid::Uuid::new_v4().simple());
        let packet_id = format!("pk_{}", uuid::Uuid::new_v4().simple());
        let proof_source = if store.config.ownership == OwnershipMode::BestEffort {
            "unavailable"
        } else {
            "runtime_generation"
        };
        let watermarks = vec![WatermarkDto {
            scope: freshness_scope(&valid.scope),
            source: "runtime_generation".to_owned(),
            token: format!("g{}", assembled.generation),
            generation: assembled.generation,
            observed_at: rfc3339_ms(now),
        }];
        let n_invalidating =
            assembled.notes.iter().filter(|note| note.code.invalidates_proof()).count();
        let proof_status = match (assembled.status, proof_source) {
            (PacketStatus::StaleBlocked, _) => "invalid",
            (_, "unavailable") => "unavailable",
            _ if n_invalidating > 0 => "invalid",
            _ => "runtime_generation",
        };
        let mut codes: Vec<String> =
            assembled.notes.iter().map(|note| diagnostic_name(note.code)).collect();
        codes.dedup();
        let warnings: Vec<String> = assembled
            .notes
            .iter()
            .filter(|note| note.severity != Severity::Info)
            .map(|note| note.message.clone())
            .collect();
        let items: Vec<ContextItem> = assembled
            .items
            .iter()
            .map(|(item, source)| ContextItem {
                id: item.id.to_string(),
                score: item.score.max(0.0),
                source: (*source).to_owned(),
                provenance: ProvenanceDto {
                    connector: store.config.id.clone(),
                    namespace: valid.scope.namespace().to_owned(),
                    doc_revision: item
                        .revision
                        .as_ref()
                        .map(|revision| revision.as_str().to_owned()),
                    retrieved_at: Some(rfc3339_ms(item.retrieved_at_ms)),
                    metadata: (!item.metadata.is_empty()).then(|| item.metadata.as_map().clone()),
                },
                content: if valid.include_content { item.content.clone() } else { None },
                evidence: item.content.as_ref().map(|content| EvidenceDto {
                    content_sha256: Some(hex(&Sha256::digest(content.as_bytes()))),
                    content_bytes: Some(content.len()),
                }),
            })
            .collect();
        let cache_hit = assembled.execution_path == "context_reuse_hit";
        let persist_started = Instant::now();
        let trace = ContextTrace {
            trace_id: trace_id.clone(),
            timestamp: rfc3339_ms(now),
            scope: TraceScope {
                scope: request.scope.clone(),
                metadata_filter_hash: hashes.filter.clone(),
                metadata_filter_fingerprint: hashes.filter,
            },
            query_hash: hashes.query,
            top_k_requested: valid.top_k,
            freshness_mode: valid.freshness_mode.as_str().to_owned(),
            served_freshness_mode: served_mode.as_str().to_owned(),
            execution_path: assembled.execution_path.to_owned(),
            stages: stages.clone(),
            freshness_generation: assembled.generation,
            items_returned: items.len(),
            items_omitted: assembled.omissions.len(),
            status: assembled.status.as_str().to_owned(),
            total_latency_ms,
            freshness_watermarks: Some(watermarks.clone()),
            stale_pruned: assembled.stale_pruned.clone(),
            diagnostic_notes: assembled
                .notes
                .iter()
                .map(|note| DiagnosticNote {
                    code: diagnostic_name(note.code),
                    severity: severity_name(note.severity).to_owned(),
                    message: note.message.clone(),
                    scope: Some(valid.scope.to_string()),
                })
                .collect(),
            degradation_reason: assembled.degradation_reason.clone(),
            connector_used: Some(store.config.id.clone()),
            connector_latency_ms: assembled.connector_latency_ms,
        };
        let body = serde_json::to_string(&trace).map_err(|err| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "TRACE_PERSISTENCE_FAILED",
                format!("failed to encode trace: {err}"),
            )
        })?;
        let capture = session.capture.then(|| {
            let record = Observed {
                ownership_mode: Some(store.config.ownership.as_str().to_owned()),
                served_mode: Some(served_mode.as_str().to_owned()),
                warnings: warnings.clone(),
                items: items
                    .iter()
                    .map(|item| ReplayItem {
                        id: item.id.clone(),
                        source: item.source.clone(),
                        doc_revision: item.provenance.doc_revision.clone(),
                    })
                    .collect(),
                stale_pruned: assembled
                    .stale_pruned
                    .iter()
                    .map(|pruned| pruned.doc_id.clone())
                    .collect(),
            };
            let plan = StepPlan::Retrieve {
                fingerprint: fingerprint.0,
                requested_mode: valid.freshness_mode.as_str().to_owned(),
                production: self.config.production,
                store_id: store.config.id.clone(),
                ownership: store.config.ownership.as_str().to_owned(),
                required_generation: valid.required_generation,
                read_keys: pre_step.read_keys.clone(),
                tenant_id: valid.scope.tenant_id().to_owned(),
                namespace: valid.scope.namespace().to_owned(),
                candidates: assembled.candidates.clone(),
                short: assembled.short,
            };
            let step = StepRequest {
                step_type: "retrieve",
                tenant_id: Some(valid.scope.tenant_id()),
                label: format!("retrieve {}/{}", valid.scope.tenant_id(), valid.scope.namespace()),
                route: "/v1/context/retrieve",
                body: pre_step
                    .raw_body
                    .unwrap_or_else(|| serde_json::to_string(&request).unwrap_or_default()),
                idempotency_key: None,
            };
            capture_row(
                step,
                plan,
                Some(record),
                &pre_step.seen,
                assembled.generation,
                (assembled.generation, assembled.status.into()),
                now,
            )
        });
        let row = TraceRow {
            trace_id: trace_id.clone(),
            tenant_id: valid.scope.tenant_id().to_owned(),
            created_at_ms: now,
            body,
            capture,
        };
        if let Err(err) = session.traces.submit(row).await {
            session.mark(&[Evidence::Trace, Evidence::Capture], false);
            tracing::error!(error = %err, "trace persistence failed");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "TRACE_PERSISTENCE_FAILED",
                "the retrieve's trace could not be persisted, so no packet is served",
            ));
        }
        session.mark(&[Evidence::Trace, Evidence::Capture], true);
        stages.push(Stage {
            stage: "trace_persist".to_owned(),
            duration_ms: elapsed_ms(persist_started),
            hit: true,
            items_produced: 0,
            detail: None,
        });
        Ok(ContextPacket {
            packet_id,
            trace_id,
            status: assembled.status.as_str().to_owned(),
            freshness: FreshnessProof {
                requested_mode: valid.freshness_mode.as_str().to_owned(),
                served_mode: served_mode.as_str().to_owned(),
                ownership: store.config.ownership.as_str().to_owned(),
                generation: assembled.generation,
                safe_as_of: rfc3339_ms(now),
                watermarks: Some(watermarks),
            },
            meta: PacketMeta {
                latency_ms: total_latency_ms,
                execution_path: assembled.execution_path.to_owned(),
                cache_hit,
                stale_pruned: assembled.stale_pruned.len(),
                partial: assembled.status == PacketStatus::Partial || assembled.short,
                scope_fingerprint: fingerprint.to_string(),
                freshness_generation: assembled.generation,
                proof_diagnostics: ProofDiagnostics {
                    proof_status: proof_status.to_owned(),
                    proof_invalidating_diagnostic_count: n_invalidating,
                    guard_rejection_count: assembled
                        .omissions
                        .iter()
                        .filter(|omission| omission.reason == "verifier_rejected")
                        .count(),
                    watermark_count: 1,
                    source_native_watermark_count: 0,
                    source_bridged_watermark_count: 0,
                    runtime_generation_watermark_count: 1,
                    diagnostic_codes: (!codes.is_empty()).then_some(codes),
                },
            },
            items,
            omissions: assembled.omissions,
            warnings,
        })
    }

    /// Applies a durable change and invalidates what it covers; returns the generation and
    /// how many reuse entries it invalidated.
    async fn apply(
        &self,
        session: &Session,
        input: ChangeInput,
        invalidations: &[Invalidation],
    ) -> Result<(ApplyOutcome, usize), ApiError> {
        let outcome = session.changes.submit(input).await.map_err(|err| {
            session.mark(&[Evidence::PlannerState, Evidence::Capture], false);
            tracing::error!(error = %err, "planner state persistence failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "PLANNER_STATE_PERSISTENCE_FAILED",
                "the change could not be made durable; it was not acknowledged",
            )
        })?;
        session.mark(&[Evidence::PlannerState, Evidence::Capture], true);
        session.observe(outcome.generation());
        let invalidated = match outcome {
            ApplyOutcome::Applied { generation } => session
                .cache
                .lock()
                .map(|mut cache| {
                    invalidations
                        .iter()
                        .map(|invalidation| cache.invalidate(invalidation, generation))
                        .sum()
                })
                .unwrap_or(0),
            _ => 0,
        };
        Ok((outcome, invalidated))
    }

    /// `POST /v1/events/change`, with the raw body for the dedupe fingerprint.
    ///
    /// # Errors
    ///
    /// Validation failures, a replayed id with a different body (409), or a ledger that could not
    /// persist the change.
    pub async fn change_event(
        &self,
        session: &Session,
        change: ValidChange,
        source_event_id: String,
        body: &serde_json::Value,
    ) -> Result<ChangeEventResult, ApiError> {
        let fingerprint =
            Fingerprinter::default().field(&crate::api::canonical_json(body)).finish().to_string();
        let keys = change.target.touched_keys_for(&change.scope, change.change_type)?;
        let documents = match (&change.target, &change.scope.tenant_id, &change.scope.namespace) {
            (ChangeTarget::Document { doc_id }, Some(tenant_id), Some(namespace)) => {
                vec![DocumentChange {
                    key: DocumentKey {
                        tenant_id: tenant_id.clone(),
                        namespace: namespace.clone(),
                        doc_id: doc_id.clone(),
                    },
                    revision: change.revision.clone(),
                    watermark: None,
                    tombstone: change.change_type.is_tombstone(),
                    event_timestamp_ms: change.timestamp_ms,
                }]
            }
            _ => Vec::new(),
        };
        let invalidation =
            Invalidation::for_change(&change.target, &change.scope, change.change_type);
        let mut input = ChangeInput {
            source_event: Some(SourceEvent::new(
                EventTenant::from(change.scope.tenant_id.as_deref()),
                source_event_id.clone(),
            )),
            fingerprint,
            scope_keys: keys
                .into_iter()
                .map(|key| ScopeChange { key: key.0, trigger: "change_event".to_owned() })
                .collect(),
            documents,
            now_ms: now_ms(),
            capture: None,
        };
        input.capture = session.capture.then(|| {
            let step = StepRequest {
                step_type: "change_event",
                tenant_id: change.scope.tenant_id.as_deref(),
                label: format!("change_event {source_event_id}"),
                route: "/v1/events/change",
                body: body.to_string(),
                idempotency_key: None,
            };
            change_capture(step, &input, invalidation.clone())
        });
        change_result(self.apply(session, input, &[invalidation]).await?, "source_event_id")
    }

    /// `POST /v1/context/invalidate`.
    ///
    /// # Errors
    ///
    /// Validation failures or a ledger that could not persist the invalidation.
    pub async fn invalidate(
        &self,
        session: &Session,
        target: ChangeTarget,
        tenant_id: Option<String>,
        idempotency_key: Option<String>,
        body: &serde_json::Value,
    ) -> Result<ChangeEventResult, ApiError> {
        let scope = ChangeScope { tenant_id, namespace: None, connector_id: None };
        scope.validate()?;
        let keys = target.touched_keys(&scope)?;
        let trigger = if matches!(target, ChangeTarget::Namespace { .. }) {
            "namespace_invalidation"
        } else {
            "manual_invalidation"
        };
        let mut input = ChangeInput {
            source_event: idempotency_key.as_ref().map(|key| {
                SourceEvent::new(
                    EventTenant::from(scope.tenant_id.as_deref()),
                    format!("idempotency:invalidate:{key}"),
                )
            }),
            fingerprint: Fingerprinter::default()
                .field(&crate::api::canonical_json(body))
                .finish()
                .to_string(),
            scope_keys: keys
                .into_iter()
                .map(|key| ScopeChange { key: key.0, trigger: trigger.to_owned() })
                .collect(),
            documents: Vec::new(),
            now_ms: now_ms(),
            capture: None,
        };
        let invalidation = Invalidation::for_target(&target, &scope);
        input.capture = session.capture.then(|| {
            let step = StepRequest {
                step_type: "invalidate",
                tenant_id: scope.tenant_id.as_deref(),
                label: format!("invalidate {trigger}"),
                route: "/v1/context/invalidate",
                body: body.to_string(),
                idempotency_key: idempotency_key.clone(),
            };
            change_capture(step, &input, invalidation.clone())
        });
        change_result(self.apply(session, input, &[invalidation]).await?, "Idempotency-Key")
    }

    fn write_through_store(&self, scope: &Scope) -> Result<Arc<RegisteredStore>, ApiError> {
        let store = Arc::clone(self.store_for(scope.namespace())?);
        if !store.allows_write_through() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "VALIDATION_FAILED",
                format!(
                    "store {} is not certified for write_through; send change events instead",
                    store.config.id
                ),
            ));
        }
        Ok(store)
    }

    /// `POST /v1/documents/upsert` and `/v1/documents/delete`: the connector's ACK is verified,
    /// then made durable in the ledger, then the covered reuse entries are invalidated.
    ///
    /// # Errors
    ///
    /// Validation failures, a store without certified write-through, a connector failure, or a
    /// ledger failure after the store already applied the write (`acknowledged: true`).
    pub async fn mutate(
        &self,
        session: &Session,
        scope: Scope,
        document: Option<kyro_core::Document>,
        id: DocumentId,
        raw_body: String,
    ) -> Result<DocumentMutationResult, ApiError> {
        if !session.allow_mutations {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "VALIDATION_FAILED",
                "connector mutations are refused in this shadow session (allow_connector_mutations is false)",
            ));
        }
        let store = self.write_through_store(&scope)?;
        if let (Some(document), Some(vector)) = (&document, store.manifest.vector)
            && let Some(embedding) = document.embedding()
            && embedding.dimension() != vector.dimension as usize
        {
            return Err(ApiError::validation(format!(
                "document.embedding has {} dimensions; store {} holds {}",
                embedding.dimension(),
                store.config.id,
                vector.dimension
            )));
        }
        let deleting = document.is_none();
        let revision = document
            .as_ref()
            .and_then(|document| document.revision().map(|revision| revision.as_str().to_owned()));
        let (call_scope, call_id) = (scope.clone(), id.clone());
        let ack = match document {
            Some(document) => {
                call_connector(&store, "upsert", move |connector| {
                    connector.upsert(&call_scope, &document)
                })
                .await
            }
            None => {
                call_connector(&store, "delete", move |connector| {
                    connector.delete(&call_scope, &call_id)
                })
                .await
            }
        }
        .map_err(|err| connector_error(&store.config.id, &err))?;
        let verified = ack.scope == scope && ack.id == id;
        if !verified {
            tracing::error!(store = %store.config.id, "connector ACK named another scope or id");
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "CONNECTOR_UNAVAILABLE",
                format!("store {} acknowledged a different tenant, namespace or id; the mutation is not treated as freshness evidence", store.config.id),
            )
            .acknowledged());
        }
        let key = DocumentKey {
            tenant_id: scope.tenant_id().to_owned(),
            namespace: scope.namespace().to_owned(),
            doc_id: id.to_string(),
        };
        // A written document may now rank into any result of its namespace; a deleted one only
        // leaves the results that held it (see `ChangeType::may_reorder_results`).
        let kind = if deleting { ChangeType::Deleted } else { ChangeType::ContentUpdated };
        let change_scope = ChangeScope {
            tenant_id: Some(scope.tenant_id().to_owned()),
            namespace: Some(scope.namespace().to_owned()),
            connector_id: None,
        };
        let target = ChangeTarget::Document { doc_id: id.to_string() };
        let scope_keys = target
            .touched_keys_for(&change_scope, kind)
            .map_err(|err| ApiError::validation(err.to_string()))?
            .into_iter()
            .map(|key| ScopeChange { key: key.0, trigger: "write_through".to_owned() })
            .collect();
        let mut input = ChangeInput {
            source_event: None,
            fingerprint: ack.backend_mutation_id.clone(),
            scope_keys,
            documents: vec![DocumentChange {
                key,
                revision: revision.clone(),
                watermark: ack.watermark.map(|watermark| watermark.value()),
                tombstone: deleting && ack.outcome == MutationOutcome::Deleted,
                event_timestamp_ms: None,
            }],
            now_ms: now_ms(),
            capture: None,
        };
        let invalidation = Invalidation::for_change(&target, &change_scope, kind);
        let step_type = if deleting { "delete" } else { "upsert" };
        input.capture = session.capture.then(|| {
            let step = StepRequest {
                step_type,
                tenant_id: Some(scope.tenant_id()),
                label: format!("{step_type} {}/{}/{id}", scope.tenant_id(), scope.namespace()),
                route: if deleting { "/v1/documents/delete" } else { "/v1/documents/upsert" },
                body: raw_body,
                idempotency_key: None,
            };
            change_capture(step, &input, invalidation.clone())
        });
        let (outcome, entries_invalidated) =
            self.apply(session, input, &[invalidation]).await.map_err(ApiError::acknowledged)?;
        let generation = match outcome {
            ApplyOutcome::Applied { generation }
            | ApplyOutcome::Replayed { generation }
            | ApplyOutcome::Conflict { generation } => generation,
        };
        Ok(DocumentMutationResult {
            id: id.to_string(),
            outcome: ack.outcome.as_str().to_owned(),
            generation,
            entries_invalidated,
            invalidated_scope: freshness_scope(&scope),
            revision,
            mutation_ack: MutationAckDto {
                id: ack.backend_mutation_id,
                scope: MutationScopeDto {
                    tenant_id: ack.scope.tenant_id().to_owned(),
                    namespace: ack.scope.namespace().to_owned(),
                },
                verified,
            },
        })
    }
}

/// The answer to a change event or invalidation, from the ledger's outcome; `key_name` names
/// the idempotency key the caller sent (`source_event_id` or `Idempotency-Key`).
fn change_result(
    (outcome, entries_invalidated): (ApplyOutcome, usize),
    key_name: &str,
) -> Result<ChangeEventResult, ApiError> {
    match outcome {
        ApplyOutcome::Applied { generation } => {
            Ok(ChangeEventResult { accepted: true, generation, entries_invalidated, detail: None })
        }
        ApplyOutcome::Replayed { generation } => Ok(ChangeEventResult {
            accepted: true,
            generation,
            entries_invalidated: 0,
            detail: Some(format!(
                "{key_name} was already processed; its original generation is returned"
            )),
        }),
        ApplyOutcome::Conflict { generation } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "VALIDATION_FAILED",
            format!(
                "{key_name} was already processed at generation {generation} with a different body"
            ),
        )),
    }
}

fn document_key(scope: &Scope, id: &DocumentId) -> DocumentKey {
    DocumentKey {
        tenant_id: scope.tenant_id().to_owned(),
        namespace: scope.namespace().to_owned(),
        doc_id: id.to_string(),
    }
}

fn empty_entry(scope: &Scope, store_id: &str) -> CacheEntry {
    CacheEntry {
        items: Vec::new(),
        generation: 0,
        tenant_id: scope.tenant_id().to_owned(),
        namespace: scope.namespace().to_owned(),
        store_id: store_id.to_owned(),
        invalidated_at: None,
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

/// What a retrieve saw of one scope key before it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSeen {
    /// The scope key.
    pub key: String,
    /// Its generation.
    pub generation: u64,
    /// When its latest change was acknowledged, in Unix milliseconds.
    pub acknowledged_at_ms: i64,
}

/// What a retrieve read before it ran, for its capture step.
struct PreStep {
    read_keys: Vec<String>,
    seen: Vec<ScopeSeen>,
    /// The request body as the client sent it, when it came over HTTP.
    raw_body: Option<String>,
}

/// The JSON body of one capture step, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptureBody {
    /// For people.
    pub label: String,
    /// The route the step was served on.
    pub route: String,
    /// The `Idempotency-Key` the request carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The planner's inputs, for counterfactual replay.
    pub plan: StepPlan,
    /// What a retrieve answered beyond status and generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
    /// The scope generations the step read before it ran.
    #[serde(default)]
    pub scopes_seen: Vec<(String, u64, i64)>,
}

/// The request side of a capture step.
struct StepRequest<'a> {
    step_type: &'a str,
    tenant_id: Option<&'a str>,
    label: String,
    route: &'a str,
    /// The request body as the client sent it.
    body: String,
    idempotency_key: Option<String>,
}

fn capture_row(
    step: StepRequest<'_>,
    plan: StepPlan,
    observed: Option<Observed>,
    seen: &[ScopeSeen],
    pre_generation: u64,
    (generation, status): (u64, CaptureStatus),
    now: i64,
) -> CaptureRow {
    let body = CaptureBody {
        label: step.label,
        route: step.route.to_owned(),
        idempotency_key: step.idempotency_key,
        plan,
        observed,
        scopes_seen: seen
            .iter()
            .map(|scope| (scope.key.clone(), scope.generation, scope.acknowledged_at_ms))
            .collect(),
    };
    CaptureRow {
        step_type: step.step_type.to_owned(),
        tenant_id: step.tenant_id.map(str::to_owned),
        captured_at_ms: now,
        pre_generation,
        generation,
        status,
        request: step.body,
        body: serde_json::to_string(&body).unwrap_or_default(),
    }
}

/// A change's capture step; the ledger fills in its generation and status.
fn change_capture(
    step: StepRequest<'_>,
    input: &ChangeInput,
    invalidation: Invalidation,
) -> CaptureRow {
    let plan = StepPlan::Change {
        source_event_id: input.source_event.as_ref().map(|event| event.id.clone()),
        scope_keys: input.scope_keys.iter().map(|change| change.key.clone()).collect(),
        documents: input
            .documents
            .iter()
            .map(|document| DocumentPlan {
                tenant_id: document.key.tenant_id.clone(),
                namespace: document.key.namespace.clone(),
                doc_id: document.key.doc_id.clone(),
                revision: document.revision.clone(),
                watermark: document.watermark,
                tombstone: document.tombstone,
                event_timestamp_ms: document.event_timestamp_ms,
            })
            .collect(),
        invalidation,
    };
    // The ledger decides a change's generations and status from its outcome.
    capture_row(step, plan, None, &[], 0, (0, CaptureStatus::Accepted), input.now_ms)
}
