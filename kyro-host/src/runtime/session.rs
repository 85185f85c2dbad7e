//! Sessions: the state a request is served from. The live session is the runtime's; a shadow
//! session (`runtime::shadow`) has its own ledger, traces, feedback and capture in a private
//! SQLite file, and shares only the certified stores.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kyro_core::planner::ReuseCache;

use super::commit::{ChangeWriter, TraceWriter, change_writer, trace_writer};
use super::error::{RuntimeError, RuntimeResult};
use super::evidence::Evidence;
use kyro_state::StateStore;

/// The state one session serves from.
pub(crate) struct Session {
    /// The shadow session id; `None` for the live session.
    pub(crate) id: Option<String>,
    /// The durable ledger, traces, feedback and capture.
    pub(crate) state: Arc<StateStore>,
    /// Group-commits retrieve traces (with their capture steps).
    pub(crate) traces: TraceWriter,
    /// Group-commits ledger changes (with their capture steps).
    pub(crate) changes: ChangeWriter,
    /// The reuse cache.
    pub(crate) cache: Mutex<ReuseCache>,
    /// Whether serving steps are captured.
    pub(crate) capture: bool,
    /// Whether connector mutations are allowed (always for the live session).
    pub(crate) allow_mutations: bool,
    /// When a shadow session expires, in Unix milliseconds.
    pub(crate) expires_at_ms: Option<i64>,
    /// A shadow session's private directory, removed with the session.
    pub(crate) directory: Option<std::path::PathBuf>,
    /// Whether the last write of each evidence kind failed, by [`Evidence`].
    unhealthy: [AtomicBool; 4],
    /// The highest generation this session has seen committed (read from the ledger, or
    /// applied by itself): a lower bound of the ledger's generation at any later moment.
    observed_generation: AtomicU64,
}

impl Session {
    /// A session over `state`, with writers started on the current tokio runtime; `generation`
    /// is the state's generation when the session starts.
    pub(crate) fn new(
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
            capture,
            allow_mutations: true,
            expires_at_ms: None,
            directory: None,
            unhealthy: Default::default(),
            observed_generation: AtomicU64::new(generation),
        }
    }

    /// Records that `generation` is committed.
    pub(crate) fn observe(&self, generation: u64) {
        self.observed_generation.fetch_max(generation, Ordering::AcqRel);
    }

    /// A generation committed no later than now.
    pub(crate) fn observed(&self) -> u64 {
        self.observed_generation.load(Ordering::Acquire)
    }

    /// Records whether the latest operation on some evidence succeeded.
    pub(crate) fn mark(&self, evidence: &[Evidence], healthy: bool) {
        for kind in evidence {
            self.unhealthy[kind.slot()].store(!healthy, Ordering::Relaxed);
        }
    }

    /// Whether the last write of `evidence` failed.
    pub(crate) fn is_unhealthy(&self, evidence: Evidence) -> bool {
        self.unhealthy[evidence.slot()].load(Ordering::Relaxed)
    }

    /// The names of the evidence kinds whose last write failed.
    pub(crate) fn failures(&self) -> Vec<String> {
        Evidence::ALL
            .iter()
            .filter(|(kind, _)| self.is_unhealthy(*kind))
            .map(|(_, name)| (*name).to_owned())
            .collect()
    }

    /// Refuses a read of `evidence` while its last write failed: a report built from it would
    /// silently miss what could not be stored.
    ///
    /// # Errors
    ///
    /// The first unhealthy kind.
    pub(crate) fn require_healthy(&self, evidence: &[Evidence]) -> RuntimeResult<()> {
        match evidence.iter().find(|kind| self.is_unhealthy(**kind)) {
            Some(kind) => Err(RuntimeError::evidence_unhealthy(*kind)),
            None => Ok(()),
        }
    }

    /// Logs a failed evidence read, marks the evidence unhealthy and returns the error for it.
    pub(crate) fn read_failed(
        &self,
        evidence: Evidence,
        err: &dyn std::fmt::Display,
    ) -> RuntimeError {
        tracing::error!(error = %err, ?evidence, "evidence read failed");
        self.mark(&[evidence], false);
        RuntimeError::evidence_unhealthy(evidence)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(directory) = &self.directory {
            let _ = std::fs::remove_dir_all(directory);
        }
    }
}
