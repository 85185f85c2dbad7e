//! The freshness planner: pure, deterministic decisions about one retrieve.
//!
//! The host gathers facts (the store's ownership and certification, what the durable ledger
//! says, the reuse cache's entry, the connector's answer) and passes them in as values; the
//! planner says whether to block, reuse or fetch ([`decide`]), and once the backend answered,
//! what is served ([`settle`]): which items, which are pruned as stale, the packet's status,
//! warnings and diagnostics, and whether the answer may be reused. It never does IO and never
//! reads a clock: the contract's §6 is implemented here and only here. The serving path and the
//! replay simulator (`crate::replay`) both call these functions, so a counterfactual replay
//! decides exactly as serving did.

use serde::{Deserialize, Serialize};

use crate::freshness::{FreshnessMode, OwnershipMode};

mod cache;
mod fingerprint;
mod settle;
#[cfg(test)]
mod tests;

pub use cache::{CacheEntry, CachedItem, Invalidation, ReuseCache};
pub use fingerprint::{Fingerprint, Fingerprinter, encode_filter};
pub use settle::{
    Answer, Backend, BackendFailed, CheckedHits, DocumentFacts, ExecutionPath, ItemSource,
    ItemVerdict, LedgerAfter, Omission, OmissionReason, PacketStatus, SettleInput, Settlement,
    ShortAnswer, StalePruned, assess_item, check_hits, packet_status, settle,
};

/// The contract's diagnostic codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosticCode {
    /// Stale reuse was served (eventual, or balanced fallback).
    StaleReuseServed,
    /// The store has no watermark; the runtime generation is the proof.
    WatermarkUnavailable,
    /// A watermark was missing for an item; the generation was used instead.
    WatermarkGenerationFallback,
    /// The store lags behind what the ledger acknowledged.
    WatermarkGenerationLag,
    /// The store is ahead of the ledger.
    WatermarkGenerationAhead,
    /// The watermark or ledger lookup failed.
    WatermarkLookupFailed,
    /// The store does not declare what the request needs.
    ConnectorCapabilityMismatch,
    /// The connector returned something outside the requested scope.
    ConnectorScopeViolation,
    /// The freshness proof could not be validated.
    ProofValidationFailed,
    /// Strict evidence is not available for this store.
    StrictEvidenceUnavailable,
    /// The generation moved while the retrieve ran.
    GenerationAdvancedDuringRetrieval,
    /// Planner state could not be persisted.
    PlannerStatePersistenceFailed,
    /// `required_generation` is above the current generation.
    RequiredGenerationUnsatisfied,
    /// A guard rejected an item.
    ContextGuardRejected,
    /// A deleted or unpublished document was pruned.
    TombstonePruned,
}

impl DiagnosticCode {
    /// The contract's snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StaleReuseServed => "stale_reuse_served",
            Self::WatermarkUnavailable => "watermark_unavailable",
            Self::WatermarkGenerationFallback => "watermark_generation_fallback",
            Self::WatermarkGenerationLag => "watermark_generation_lag",
            Self::WatermarkGenerationAhead => "watermark_generation_ahead",
            Self::WatermarkLookupFailed => "watermark_lookup_failed",
            Self::ConnectorCapabilityMismatch => "connector_capability_mismatch",
            Self::ConnectorScopeViolation => "connector_scope_violation",
            Self::ProofValidationFailed => "proof_validation_failed",
            Self::StrictEvidenceUnavailable => "strict_evidence_unavailable",
            Self::GenerationAdvancedDuringRetrieval => "generation_advanced_during_retrieval",
            Self::PlannerStatePersistenceFailed => "planner_state_persistence_failed",
            Self::RequiredGenerationUnsatisfied => "required_generation_unsatisfied",
            Self::ContextGuardRejected => "context_guard_rejected",
            Self::TombstonePruned => "tombstone_pruned",
        }
    }

    /// Whether this code, among a decision's notes, makes the answer degraded: it is served,
    /// but with weaker evidence than was asked for.
    pub fn degrades(self) -> bool {
        matches!(self, Self::ConnectorCapabilityMismatch | Self::RequiredGenerationUnsatisfied)
    }

    /// Whether this code makes the freshness proof invalid rather than merely weaker.
    pub fn invalidates_proof(self) -> bool {
        matches!(
            self,
            Self::ConnectorScopeViolation
                | Self::ProofValidationFailed
                | Self::StrictEvidenceUnavailable
                | Self::WatermarkLookupFailed
                | Self::RequiredGenerationUnsatisfied
        )
    }
}

/// How serious a note is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For the record.
    Info,
    /// The answer is weaker than asked for.
    Warning,
    /// The answer could not be given.
    Error,
}

impl Severity {
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// A diagnostic with its human message; warnings in the packet are the messages of the
/// warning- and error-level notes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The code.
    pub code: DiagnosticCode,
    /// How serious it is.
    pub severity: Severity,
    /// What happened, for people.
    pub message: String,
}

impl Note {
    pub(crate) fn new(
        code: DiagnosticCode,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        Self { code, severity, message: message.into() }
    }
}

/// What the host knows about the store serving a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StoreFacts {
    /// The configured ownership mode.
    pub ownership: OwnershipMode,
    /// Whether the store was certified for that mode (a refused store never serves at all).
    pub certified: bool,
}

/// What the durable ledger says for a request's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LedgerFacts {
    /// The current runtime generation.
    pub current_generation: u64,
    /// The latest generation of any change covering the request's scope (0 when none).
    pub scope_generation: u64,
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Answer `stale_blocked` with no items.
    Block,
    /// Serve the cached entry; `stale` when a change covered it since it was filled.
    Reuse {
        /// Whether the entry is stale (served only in eventual mode, flagged).
        stale: bool,
    },
    /// Ask the backend. `fallback` when a stale entry may be served if the backend fails.
    Fetch {
        /// Whether the cached stale entry may be served, degraded, if the backend fails.
        fallback: bool,
    },
}

/// The planner's decision before any backend call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The mode the retrieve is served in.
    pub served_mode: FreshnessMode,
    /// What to do.
    pub action: Action,
    /// Diagnostics so far.
    pub notes: Vec<Note>,
}

/// Whether a cached entry is fresh for the ledger: filled at or after the latest change covering
/// its scope, and not marked by an invalidation since.
pub fn entry_is_fresh(entry: &CacheEntry, ledger: &LedgerFacts) -> bool {
    entry.invalidated_at.is_none() && entry.generation >= ledger.scope_generation
}

/// Decides how to serve a retrieve (contract §6).
///
/// `ledger` is `None` when the ledger could not be read; `entry` is the reuse cache's entry for
/// the request's fingerprint, if any.
pub fn decide(
    requested: FreshnessMode,
    production: bool,
    store: StoreFacts,
    ledger: Option<LedgerFacts>,
    required_generation: Option<u64>,
    entry: Option<&CacheEntry>,
) -> Decision {
    let mut notes = Vec::new();
    let mut served = requested;
    if requested == FreshnessMode::Strict && !store.ownership.is_strict_eligible() {
        if production {
            notes.push(Note::new(
                DiagnosticCode::StrictEvidenceUnavailable,
                Severity::Error,
                "strict freshness needs a write_through, event_feed or snapshot_bundle store; this store is best_effort",
            ));
            return Decision { served_mode: requested, action: Action::Block, notes };
        }
        served = FreshnessMode::Balanced;
        notes.push(Note::new(
            DiagnosticCode::ConnectorCapabilityMismatch,
            Severity::Warning,
            "strict was downgraded to balanced: the store is best_effort (development mode)",
        ));
    }
    if served == FreshnessMode::Strict && !store.certified {
        notes.push(Note::new(
            DiagnosticCode::StrictEvidenceUnavailable,
            Severity::Error,
            "strict freshness needs a store certified for its ownership mode",
        ));
        return Decision { served_mode: served, action: Action::Block, notes };
    }
    let Some(ledger) = ledger else {
        notes.push(Note::new(
            DiagnosticCode::WatermarkLookupFailed,
            Severity::Error,
            "the freshness ledger could not be read",
        ));
        return match served {
            FreshnessMode::Strict => Decision { served_mode: served, action: Action::Block, notes },
            FreshnessMode::Balanced => Decision {
                served_mode: served,
                action: Action::Fetch { fallback: entry.is_some() },
                notes,
            },
            FreshnessMode::Eventual => {
                let action = if entry.is_some() {
                    Action::Reuse { stale: true }
                } else {
                    Action::Fetch { fallback: false }
                };
                Decision { served_mode: served, action, notes }
            }
        };
    };
    if let Some(required) = required_generation
        && required > ledger.current_generation
    {
        notes.push(Note::new(
            DiagnosticCode::RequiredGenerationUnsatisfied,
            if served == FreshnessMode::Strict { Severity::Error } else { Severity::Warning },
            format!(
                "required_generation {required} is above the current generation {}",
                ledger.current_generation
            ),
        ));
        if served == FreshnessMode::Strict {
            return Decision { served_mode: served, action: Action::Block, notes };
        }
    }
    let fresh = entry.is_some_and(|entry| entry_is_fresh(entry, &ledger));
    let action = match (served, entry, fresh) {
        (_, Some(_), true) => Action::Reuse { stale: false },
        (FreshnessMode::Eventual, Some(_), false) => {
            notes.push(Note::new(
                DiagnosticCode::StaleReuseServed,
                Severity::Warning,
                "stale reusable context was served without a fetch (eventual)",
            ));
            Action::Reuse { stale: true }
        }
        (FreshnessMode::Balanced, Some(_), false) => Action::Fetch { fallback: true },
        _ => Action::Fetch { fallback: false },
    };
    Decision { served_mode: served, action, notes }
}

/// Marks a cached entry invalidated when a document it holds changed after it was filled:
/// `document_generations` are the ledger's generations of the entry's documents (those the
/// ledger knows). A change to a held document that the cache did not see (another host, or a
/// change applied before this entry was filled but acknowledged later) is caught here.
pub fn refresh_entry(mut entry: CacheEntry, document_generations: &[u64]) -> CacheEntry {
    if let Some(&newest) = document_generations.iter().max()
        && newest > entry.generation
        && entry.invalidated_at.is_none()
    {
        entry.invalidated_at = Some(newest);
    }
    entry
}
