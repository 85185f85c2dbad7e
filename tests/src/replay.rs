//! Replay artifacts built the way a client builds them: a `ReplayRunReport` (what
//! `POST /v1/replay/diff` and a proof bundle's `candidate_run` take) from a capture export's
//! observed records.

use serde_json::{Value, json};

/// The run a capture export observed: its steps' `observed_record`s, counted, with the latency
/// each retrieve recorded (`latency_ms`, KyroDB's own field on the record) summed.
///
/// # Panics
///
/// When a step carries no `observed_record`.
pub fn run_report(capture: &Value) -> Value {
    let mut records = Vec::new();
    for (step_idx, step) in capture["steps"].as_array().into_iter().flatten().enumerate() {
        let record = step
            .get("observed_record")
            .unwrap_or_else(|| panic!("capture steps[{step_idx}] has no observed_record"));
        records.push(record.clone());
    }
    let count =
        |field: &str, value: &str| records.iter().filter(|record| record[field] == value).count();
    let total_latency_ms: f64 =
        records.iter().filter_map(|record| record["latency_ms"].as_f64()).sum();
    json!({
        "generated_at": capture["generated_at"],
        "total_steps": records.len(),
        "retrieve_steps": count("step_type", "retrieve"),
        "complete_count": count("status", "complete"),
        "degraded_count": count("status", "degraded"),
        "stale_blocked_count": count("status", "stale_blocked"),
        "total_latency_ms": total_latency_ms,
        "records": records,
    })
}
