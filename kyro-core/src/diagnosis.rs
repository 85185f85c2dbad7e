//! Trace diagnosis: why was this answer fresh, stale-blocked, degraded, irrelevant or
//! wrong-scope? A pure classification of one trace and its feedback into exactly one of the
//! contract's kinds, with a summary, recommended actions and evidence lines.

use serde::Serialize;

#[cfg(test)]
mod tests;

/// A feedback signal on a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
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

/// What the classifier reads from a trace: the contract's trace fields, as plain values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceFacts {
    /// `strict`, `balanced` or `eventual`, as asked.
    pub freshness_mode: String,
    /// As served.
    pub served_freshness_mode: String,
    /// `complete`, `partial`, `degraded` or `stale_blocked`.
    pub status: String,
    /// `context_reuse_hit` or `backend_fetch`.
    pub execution_path: String,
    /// Diagnostic codes of the trace's notes.
    pub diagnostic_codes: Vec<String>,
    /// How many items were pruned as stale.
    pub n_stale_pruned: usize,
    /// How many items were returned.
    pub n_items: usize,
    /// Why the answer was degraded or blocked.
    pub degradation_reason: Option<String>,
    /// The store's ownership mode.
    pub ownership: Option<String>,
}

/// The contract's `TraceDiagnosis`, minus the trace id the host adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// One of the contract's kinds.
    pub kind: &'static str,
    /// One sentence.
    pub summary: String,
    /// What to do about it.
    pub recommended_actions: Vec<String>,
    /// The facts the kind was chosen from.
    pub evidence: Vec<String>,
}

fn has(facts: &TraceFacts, code: &str) -> bool {
    facts.diagnostic_codes.iter().any(|candidate| candidate == code)
}

/// Classifies a trace with its feedback into exactly one kind. Feedback that says the answer
/// was wrong outranks what the trace says about itself; among trace facts, refusals and
/// weakened evidence outrank the ordinary paths.
pub fn diagnose(facts: &TraceFacts, feedback: &[FeedbackSignal]) -> Diagnosis {
    let mut evidence = vec![
        format!("status {}", facts.status),
        format!("freshness {} served as {}", facts.freshness_mode, facts.served_freshness_mode),
        format!("execution path {}", facts.execution_path),
        format!("{} items returned, {} pruned as stale", facts.n_items, facts.n_stale_pruned),
    ];
    if !facts.diagnostic_codes.is_empty() {
        evidence.push(format!("diagnostics: {}", facts.diagnostic_codes.join(", ")));
    }
    if let Some(reason) = &facts.degradation_reason {
        evidence.push(format!("degradation: {reason}"));
    }
    if !feedback.is_empty() {
        let signals: Vec<&str> = feedback.iter().map(|signal| signal.as_str()).collect();
        evidence.push(format!("feedback: {}", signals.join(", ")));
    }
    let diagnosis = |kind: &'static str, summary: &str, actions: &[&str]| Diagnosis {
        kind,
        summary: summary.to_owned(),
        recommended_actions: actions.iter().map(|action| (*action).to_owned()).collect(),
        evidence: evidence.clone(),
    };
    if feedback.contains(&FeedbackSignal::Stale) {
        return diagnosis(
            "feedback_reported_stale",
            "a user reported the answer as stale",
            &[
                "check that the source emits a change event (with revision) for every content change",
                "use strict freshness for this scope",
                "compare the item revisions in the trace with the source system",
            ],
        );
    }
    if feedback.contains(&FeedbackSignal::WrongScope) {
        return diagnosis(
            "feedback_reported_wrong_scope",
            "a user reported context from the wrong scope",
            &[
                "check the tenant and namespace the agent sent",
                "re-run certification for the store's scope checks",
                "check the token's tenant restrictions",
            ],
        );
    }
    if facts.status == "stale_blocked" {
        return diagnosis(
            "strict_freshness_blocked",
            "strict freshness could not be proven, so no context was served",
            &[
                "check ledger health and the store's certification",
                "send required_generation only after the matching change is acknowledged",
                "use balanced freshness where stale context is acceptable",
            ],
        );
    }
    if facts.freshness_mode != facts.served_freshness_mode {
        return diagnosis(
            "freshness_downgrade",
            "the requested freshness mode was downgraded",
            &[
                "certify the store for a strict-eligible ownership mode",
                "in production, best_effort stores are refused",
            ],
        );
    }
    if has(facts, "watermark_generation_lag") {
        return diagnosis(
            "watermark_generation_lag",
            "the store lagged behind what the ledger acknowledged",
            &["check replication or indexing lag in the store"],
        );
    }
    if has(facts, "watermark_generation_ahead") {
        return diagnosis(
            "watermark_generation_ahead",
            "the store was ahead of the ledger: changes landed without acknowledged events",
            &["check that every writer emits change events"],
        );
    }
    if facts.status == "degraded" && facts.execution_path == "context_reuse_hit" {
        return diagnosis(
            "stale_fallback",
            "stale reusable context was served instead of a fresh fetch",
            &[
                "check the backend's health",
                "use strict freshness where stale context is not acceptable",
            ],
        );
    }
    if facts.degradation_reason.as_deref().is_some_and(|reason| reason.contains("backend"))
        || has(facts, "watermark_lookup_failed")
    {
        return diagnosis(
            "backend_unavailable",
            "the backend or the freshness ledger did not answer",
            &["check the store's health and the connector's quarantine state"],
        );
    }
    if feedback.contains(&FeedbackSignal::Irrelevant) {
        return diagnosis(
            "fresh_but_irrelevant",
            "the context was fresh but did not answer the question",
            &[
                "review the query embedding, filters and top_k",
                "check the embedding model id in the scope",
            ],
        );
    }
    if facts.ownership.as_deref() == Some("best_effort") || has(facts, "watermark_unavailable") {
        return diagnosis(
            "weak_watermark_evidence",
            "the answer rests on weak freshness evidence",
            &["move the store to event_feed or write_through ownership"],
        );
    }
    if facts.execution_path == "context_reuse_hit" {
        return diagnosis(
            "cache_reuse_hit",
            "the answer was reused; no acknowledged change covered it",
            &["nothing to do"],
        );
    }
    diagnosis(
        "fresh_backend_fetch",
        "the answer was fetched fresh from the backend",
        &["nothing to do"],
    )
}
