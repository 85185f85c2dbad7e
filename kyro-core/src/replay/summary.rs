//! What a run of replay records adds up to, and what each record says about itself: its key,
//! and the diagnosis its facts classify to.

use super::{ReplayRecord, StepStatus, StepType};
use crate::diagnosis::{DiagnosisKind, TraceFacts, diagnose};
use crate::planner::ExecutionPath;

impl ReplayRecord {
    /// The key two runs of the same steps pair this record by: its type and its index in the
    /// capture. A record of another type at the same index is another step.
    pub fn step_key(&self) -> String {
        format!("{}:{}", self.step_type.as_str(), self.step_index)
    }

    /// The diagnosis kind a retrieve's recorded facts classify to, as `GET
    /// /v1/traces/{id}/diagnosis` would without feedback; `None` for changes and for records
    /// that do not carry the facts (the modes and the execution path).
    pub fn diagnosis_kind(&self) -> Option<DiagnosisKind> {
        if self.step_type != StepType::Retrieve {
            return None;
        }
        let observed = &self.observed;
        let facts = TraceFacts {
            freshness_mode: observed.requested_mode?,
            served_freshness_mode: observed.served_mode?,
            status: self.status.packet_status()?,
            execution_path: if observed.cache_hit? {
                ExecutionPath::ContextReuseHit
            } else {
                ExecutionPath::BackendFetch
            },
            diagnostic_codes: observed.diagnostic_codes.clone(),
            n_stale_pruned: observed.stale_pruned.len(),
            n_items: observed.items.len(),
            // A retrieve whose backend failed with nothing to stand in answers an error and is
            // never captured; one that was served from reuse is told apart by its status.
            backend_failed: false,
            degradation_reason: None,
            ownership: observed.ownership_mode,
        };
        Some(diagnose(&facts, &[]).kind)
    }

    /// Whether a retrieve was served in another mode than it asked for.
    pub fn is_downgraded(&self) -> bool {
        match (self.observed.requested_mode, self.observed.served_mode) {
            (Some(requested), Some(served)) => requested != served,
            _ => false,
        }
    }
}

/// What a run of records counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Every record.
    pub total_steps: usize,
    /// Retrieves.
    pub retrieve_steps: usize,
    /// Retrieves answered `complete`.
    pub complete_count: usize,
    /// Retrieves answered `partial`.
    pub partial_count: usize,
    /// Retrieves answered `degraded`.
    pub degraded_count: usize,
    /// Retrieves answered `stale_blocked`.
    pub stale_blocked_count: usize,
    /// Retrieves served from the reuse cache.
    pub cache_hit_count: usize,
    /// Retrieves served in another mode than asked for.
    pub downgraded_count: usize,
    /// Items pruned as stale, over every retrieve.
    pub stale_pruned_item_count: usize,
}

impl RunCounts {
    /// Counts `records`.
    pub fn of(records: &[ReplayRecord]) -> Self {
        let mut counts = Self { total_steps: records.len(), ..Self::default() };
        for record in records.iter().filter(|record| record.step_type == StepType::Retrieve) {
            counts.retrieve_steps += 1;
            match record.status {
                StepStatus::Complete => counts.complete_count += 1,
                StepStatus::Partial => counts.partial_count += 1,
                StepStatus::Degraded => counts.degraded_count += 1,
                StepStatus::StaleBlocked => counts.stale_blocked_count += 1,
                _ => {}
            }
            counts.cache_hit_count += usize::from(record.observed.cache_hit == Some(true));
            counts.downgraded_count += usize::from(record.is_downgraded());
            counts.stale_pruned_item_count += record.observed.stale_pruned.len();
        }
        counts
    }

    /// Stale context kept from an agent: items pruned as stale, and strict retrieves that were
    /// blocked rather than served something unproven.
    pub fn stale_prevented(&self) -> usize {
        self.stale_pruned_item_count + self.stale_blocked_count
    }
}
