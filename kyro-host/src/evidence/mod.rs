//! The evidence layer: what the runtime recorded, read back and turned into reports (proof
//! report and bundle, root cause, trace diagnosis), the capture export, replay diff,
//! counterfactual replay, shadow sessions and `kyro replay`.
//!
//! Reports are computed from stored traces, feedback and capture and redacted for whoever is
//! looking ([`redaction::Redactor`] takes the caller's principal): they never carry content,
//! embeddings, tokens, feedback comments or request bodies, and the trace and tenant ids of
//! tenants the caller may not see become keys. The capture export is the one admin document
//! that carries request bodies, because replaying needs them. This layer knows nothing of HTTP.

pub(crate) mod bundle;
pub(crate) mod capture;
pub(crate) mod facts;
pub(crate) mod proofs;
pub(crate) mod redaction;
pub(crate) mod replay;
pub(crate) mod root_cause;
pub(crate) mod runs;
pub(crate) mod summary;
pub(crate) mod traces;

use crate::runtime::error::{RuntimeError, RuntimeResult};

/// The most steps, primer entries, interventions or incidents one request may carry.
pub(crate) const MAX_ENTRIES: usize = 2000;
/// The most recent traces or steps one report reads.
pub(crate) const MAX_RECENT: usize = 1000;

/// `recent`, defaulted and checked.
pub(crate) fn recent_param(recent: Option<usize>, default: usize) -> RuntimeResult<usize> {
    let recent = recent.unwrap_or(default);
    if !(1..=MAX_RECENT).contains(&recent) {
        return Err(RuntimeError::invalid(format!("recent must be 1..{MAX_RECENT}, got {recent}")));
    }
    Ok(recent)
}

/// Refuses a list longer than [`MAX_ENTRIES`].
pub(crate) fn check_count(field: &str, count: usize) -> RuntimeResult<()> {
    if count > MAX_ENTRIES {
        return Err(RuntimeError::invalid(format!(
            "{field} has {count} entries, allowed is at most {MAX_ENTRIES}"
        )));
    }
    Ok(())
}
