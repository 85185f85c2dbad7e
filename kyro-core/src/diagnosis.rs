//! Trace diagnosis: why was this answer fresh, stale-blocked, degraded, irrelevant or
//! wrong-scope? A pure classification of one trace and its feedback into exactly one of the
//! contract's kinds, with a summary, recommended actions and evidence lines.

use serde::{Deserialize, Serialize};

use crate::freshness::{FreshnessMode, OwnershipMode};
use crate::planner::{DiagnosticCode, ExecutionPath, PacketStatus};

#[cfg(test)]
mod tests;

/// A feedback signal on a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackSignal {
    /// The context helped.
    Useful,
    /// The context was fresh but did not answer the question.
    Irrelevant,
    /// The context was out of date.
    Stale,
    /// The context belonged to another scope.
    WrongScope,
}

impl FeedbackSignal {
    /// Every signal with its contract name.
    pub const NAMES: [(Self, &'static str); 4] = [
        (Self::Useful, "useful"),
        (Self::Irrelevant, "irrelevant"),
        (Self::Stale, "stale"),
        (Self::WrongScope, "wrong_scope"),
    ];

    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES.iter().find(|(signal, _)| *signal == self).map_or("useful", |(_, name)| name)
    }

    /// Parses a contract name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(_, candidate)| *candidate == name).map(|(signal, _)| *signal)
    }
}

/// What the classifier reads from a trace: the contract's trace fields, typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceFacts {
    /// The mode asked for.
    pub freshness_mode: FreshnessMode,
    /// The mode served.
    pub served_freshness_mode: FreshnessMode,
    /// The packet status.
    pub status: PacketStatus,
    /// How the packet was produced.
    pub execution_path: ExecutionPath,
    /// Diagnostic codes of the trace's notes.
    pub diagnostic_codes: Vec<DiagnosticCode>,
    /// How many items were pruned as stale.
    pub n_stale_pruned: usize,
    /// How many items were returned.
    pub n_items: usize,
    /// Whether the backend was asked and failed.
    pub backend_failed: bool,
    /// Why the answer was degraded or blocked, for people (never branched on).
    pub degradation_reason: Option<String>,
    /// The serving store's ownership mode, when the store is still configured.
    pub ownership: Option<OwnershipMode>,
}

/// The contract's diagnosis kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosisKind {
    /// The requested freshness mode was downgraded.
    FreshnessDowngrade,
    /// Strict freshness could not be proven; nothing was served.
    StrictFreshnessBlocked,
    /// The store lagged behind the ledger.
    WatermarkGenerationLag,
    /// The store was ahead of the ledger.
    WatermarkGenerationAhead,
    /// The answer rests on weak evidence.
    WeakWatermarkEvidence,
    /// A user reported the answer as stale.
    FeedbackReportedStale,
    /// A user reported context from the wrong scope.
    FeedbackReportedWrongScope,
    /// Fresh, but not what was asked.
    FreshButIrrelevant,
    /// The backend or the ledger did not answer.
    BackendUnavailable,
    /// Stale reusable context stood in for a fetch.
    StaleFallback,
    /// Reused, and no change covered it.
    CacheReuseHit,
    /// Fetched fresh.
    FreshBackendFetch,
}

impl DiagnosisKind {
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FreshnessDowngrade => "freshness_downgrade",
            Self::StrictFreshnessBlocked => "strict_freshness_blocked",
            Self::WatermarkGenerationLag => "watermark_generation_lag",
            Self::WatermarkGenerationAhead => "watermark_generation_ahead",
            Self::WeakWatermarkEvidence => "weak_watermark_evidence",
            Self::FeedbackReportedStale => "feedback_reported_stale",
            Self::FeedbackReportedWrongScope => "feedback_reported_wrong_scope",
            Self::FreshButIrrelevant => "fresh_but_irrelevant",
            Self::BackendUnavailable => "backend_unavailable",
            Self::StaleFallback => "stale_fallback",
            Self::CacheReuseHit => "cache_reuse_hit",
            Self::FreshBackendFetch => "fresh_backend_fetch",
        }
    }

    /// Whether a trace of this kind is a stale incident: stale context was served or reported,
    /// or held back because freshness could not be proven.
    pub fn is_stale(self) -> bool {
        matches!(
            self,
            Self::StrictFreshnessBlocked
                | Self::StaleFallback
                | Self::FeedbackReportedStale
                | Self::FreshnessDowngrade
                | Self::WatermarkGenerationLag
                | Self::WatermarkGenerationAhead
        )
    }

    /// Whether a trace of this kind is an incident: the answer was refused, weakened, stale or
    /// from the wrong scope.
    pub fn is_incident(self) -> bool {
        !matches!(self, Self::CacheReuseHit | Self::FreshBackendFetch | Self::FreshButIrrelevant)
    }
}

/// The contract's `TraceDiagnosis`, minus the trace id the host adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// One of the contract's kinds.
    pub kind: DiagnosisKind,
    /// One sentence.
    pub summary: String,
    /// What to do about it.
    pub recommended_actions: Vec<String>,
    /// The facts the kind was chosen from.
    pub evidence: Vec<String>,
}

fn has(facts: &TraceFacts, code: DiagnosticCode) -> bool {
    facts.diagnostic_codes.contains(&code)
}

/// Classifies a trace with its feedback into exactly one kind. Feedback that says the answer
/// was wrong outranks what the trace says about itself; among trace facts, refusals and
/// weakened evidence outrank the ordinary paths.
pub fn diagnose(facts: &TraceFacts, feedback: &[FeedbackSignal]) -> Diagnosis {
    let mut evidence = vec![
        format!("status {}", facts.status.as_str()),
        format!(
            "freshness {} served as {}",
            facts.freshness_mode.as_str(),
            facts.served_freshness_mode.as_str()
        ),
        format!("execution path {}", facts.execution_path.as_str()),
        format!("{} items returned, {} pruned as stale", facts.n_items, facts.n_stale_pruned),
    ];
    if !facts.diagnostic_codes.is_empty() {
        let codes: Vec<&str> = facts.diagnostic_codes.iter().map(|code| code.as_str()).collect();
        evidence.push(format!("diagnostics: {}", codes.join(", ")));
    }
    if let Some(reason) = &facts.degradation_reason {
        evidence.push(format!("degradation: {reason}"));
    }
    if !feedback.is_empty() {
        let signals: Vec<&str> = feedback.iter().map(|signal| signal.as_str()).collect();
        evidence.push(format!("feedback: {}", signals.join(", ")));
    }
    let (kind, summary, actions) = classify(facts, feedback);
    Diagnosis {
        kind,
        summary: summary.to_owned(),
        recommended_actions: actions.iter().map(|action| (*action).to_owned()).collect(),
        evidence,
    }
}

type Classification = (DiagnosisKind, &'static str, &'static [&'static str]);

fn classify(facts: &TraceFacts, feedback: &[FeedbackSignal]) -> Classification {
    use DiagnosisKind as Kind;
    if feedback.contains(&FeedbackSignal::Stale) {
        return (
            Kind::FeedbackReportedStale,
            "a user reported the answer as stale",
            &[
                "check that the source emits a change event (with revision) for every content change",
                "use strict freshness for this scope",
                "compare the item revisions in the trace with the source system",
            ],
        );
    }
    if feedback.contains(&FeedbackSignal::WrongScope) {
        return (
            Kind::FeedbackReportedWrongScope,
            "a user reported context from the wrong scope",
            &[
                "check the tenant and namespace the agent sent",
                "re-run certification for the store's scope checks",
                "check the token's tenant restrictions",
            ],
        );
    }
    if facts.status == PacketStatus::StaleBlocked {
        return (
            Kind::StrictFreshnessBlocked,
            "strict freshness could not be proven, so no context was served",
            &[
                "check ledger health and the store's certification",
                "send required_generation only after the matching change is acknowledged",
                "use balanced freshness where stale context is acceptable",
            ],
        );
    }
    if facts.freshness_mode != facts.served_freshness_mode {
        return (
            Kind::FreshnessDowngrade,
            "the requested freshness mode was downgraded",
            &[
                "certify the store for a strict-eligible ownership mode",
                "in production, best_effort stores are refused",
            ],
        );
    }
    if has(facts, DiagnosticCode::WatermarkGenerationLag) {
        return (
            Kind::WatermarkGenerationLag,
            "the store lagged behind what the ledger acknowledged",
            &["check replication or indexing lag in the store"],
        );
    }
    if has(facts, DiagnosticCode::WatermarkGenerationAhead) {
        return (
            Kind::WatermarkGenerationAhead,
            "the store was ahead of the ledger: changes landed without acknowledged events",
            &["check that every writer emits change events"],
        );
    }
    if facts.status == PacketStatus::Degraded
        && facts.execution_path == ExecutionPath::ContextReuseHit
    {
        return (
            Kind::StaleFallback,
            "stale reusable context was served instead of a fresh fetch",
            &[
                "check the backend's health",
                "use strict freshness where stale context is not acceptable",
            ],
        );
    }
    if facts.backend_failed || has(facts, DiagnosticCode::WatermarkLookupFailed) {
        return (
            Kind::BackendUnavailable,
            "the backend or the freshness ledger did not answer",
            &["check the store's health and the connector's quarantine state"],
        );
    }
    if feedback.contains(&FeedbackSignal::Irrelevant) {
        return (
            Kind::FreshButIrrelevant,
            "the context was fresh but did not answer the question",
            &[
                "review the query embedding, filters and top_k",
                "check the embedding model id in the scope",
            ],
        );
    }
    if facts.ownership == Some(OwnershipMode::BestEffort)
        || has(facts, DiagnosticCode::WatermarkUnavailable)
    {
        return (
            Kind::WeakWatermarkEvidence,
            "the answer rests on weak freshness evidence",
            &["move the store to event_feed or write_through ownership"],
        );
    }
    if facts.execution_path == ExecutionPath::ContextReuseHit {
        return (
            Kind::CacheReuseHit,
            "the answer was reused; no acknowledged change covered it",
            &["nothing to do"],
        );
    }
    (Kind::FreshBackendFetch, "the answer was fetched fresh from the backend", &["nothing to do"])
}
