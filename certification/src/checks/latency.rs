//! `latency.*`: each declared operation's p50 and p99 over every call of the run, against
//! budgets derived from the call timeout the caller serves with (see `latency`).

use super::{CheckResult, Run, fail};
use crate::report::CheckStatus;

fn within_budget(run: &mut Run<'_>, operation: &'static str) -> CheckResult {
    let Some(latency) = run.latency().into_iter().find(|latency| latency.operation == operation)
    else {
        // Calls refused by a quarantine are not timed; the quarantine is the finding.
        run.follows_from = run.quarantined_by;
        return Err(CheckStatus::Error {
            reason: format!("no {operation} call reached the connector during the run"),
        });
    };
    if latency.within_budget() {
        return Ok(());
    }
    Err(fail(
        format!(
            "{} {operation} calls during this run (call timeout {} ms)",
            latency.calls,
            run.options.call_timeout.as_millis()
        ),
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, slowest {:.1} ms",
            millis(latency.p50_us),
            millis(latency.p99_us),
            millis(latency.max_us)
        ),
        format!(
            "p50 at most {:.1} ms and p99 at most {:.1} ms",
            millis(latency.p50_budget_us),
            millis(latency.p99_budget_us)
        ),
    ))
}

fn millis(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

pub(super) fn search(run: &mut Run<'_>) -> CheckResult {
    within_budget(run, "search")
}

pub(super) fn fetch(run: &mut Run<'_>) -> CheckResult {
    within_budget(run, "fetch")
}

pub(super) fn upsert(run: &mut Run<'_>) -> CheckResult {
    within_budget(run, "upsert")
}

pub(super) fn delete(run: &mut Run<'_>) -> CheckResult {
    within_budget(run, "delete")
}

pub(super) fn watermark(run: &mut Run<'_>) -> CheckResult {
    within_budget(run, "watermark")
}

pub(super) fn health(run: &mut Run<'_>) -> CheckResult {
    within_budget(run, "health")
}
