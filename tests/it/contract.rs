//! The published Runtime API v1, exactly (issue #13): the validator of answers against the
//! pinned OpenAPI document (`kyro_e2e::contract`) accepts right answers and refuses wrong ones.

use kyro_e2e::contract::Contract;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The validator
// ---------------------------------------------------------------------------------------------

fn valid_packet() -> Value {
    json!({
        "packet_id": "pk_1", "trace_id": "tr_1", "status": "complete",
        "freshness": {
            "requested_mode": "strict", "served_mode": "strict", "ownership": "write_through",
            "generation": 3, "safe_as_of": "2026-01-01T00:00:00.000Z",
            "watermarks": [{ "scope": { "type": "namespace", "tenant_id": "acme", "namespace": "support" },
                             "source": "runtime_generation", "token": "3", "generation": 3,
                             "observed_at": "2026-01-01T00:00:00Z" }]
        },
        "items": [{ "id": "doc-1", "score": 0.9, "source": "backend",
                    "provenance": { "connector": "mem", "namespace": "support" } }],
        "omissions": [], "warnings": [],
        "meta": {
            "latency_ms": 1.5, "execution_path": "backend_fetch", "cache_hit": false,
            "stale_pruned": 0, "partial": false, "scope_fingerprint": "fp", "freshness_generation": 3,
            "proof_diagnostics": { "proof_status": "runtime_generation",
                "proof_invalidating_diagnostic_count": 0, "guard_rejection_count": 0,
                "watermark_count": 1, "source_native_watermark_count": 0,
                "source_bridged_watermark_count": 0, "runtime_generation_watermark_count": 1 }
        }
    })
}

fn valid_trace() -> Value {
    json!({
        "trace_id": "tr_1", "timestamp": "2026-01-01T00:00:00Z",
        "scope": { "tenant_id": "acme", "namespace": "support", "metadata_filter_hash": 42 },
        "query_hash": "1234567890", "top_k_requested": 6, "freshness_mode": "strict",
        "served_freshness_mode": "strict", "execution_path": "backend_fetch",
        "stages": [{ "stage": "fetch", "duration_ms": 0.4, "hit": false, "items_produced": 1 }],
        "freshness_generation": 3, "items_returned": 1, "items_omitted": 0, "status": "complete",
        "total_latency_ms": 1.2
    })
}

#[track_caller]
fn assert_refused(result: Result<(), kyro_e2e::contract::Violations>, at: &str, mentions: &str) {
    let violations = result.expect_err("a deliberately wrong answer must fail validation");
    assert!(
        violations.has_at(at) && violations.mentions(mentions),
        "expected a violation at {at:?} mentioning {mentions:?}, got: {violations}"
    );
}

/// Keeps the validator honest: it accepts right answers and refuses each kind of wrong one, at
/// the right place and for the right reason, through `$ref`s, unions and route lookups.
#[test]
fn the_validator_refuses_deliberately_wrong_answers() {
    let contract = Contract::pinned();
    assert_eq!(contract.document()["openapi"], "3.1.0");
    assert_eq!(contract.operations().len(), 17, "the contract's routes");
    contract.validate_schema("ContextPacket", &valid_packet()).unwrap();
    contract.validate_schema("ContextTrace", &valid_trace()).unwrap();
    contract.validate_response("POST", "/v1/context/retrieve", 200, &valid_packet()).unwrap();

    // A required field missing.
    let mut packet = valid_packet();
    packet.as_object_mut().unwrap().remove("trace_id");
    assert_refused(contract.validate_schema("ContextPacket", &packet), "", "trace_id");
    // A required field missing two `$ref`s deep.
    let mut packet = valid_packet();
    packet["meta"]["proof_diagnostics"].as_object_mut().unwrap().remove("watermark_count");
    assert_refused(
        contract.validate_schema("ContextPacket", &packet),
        "/meta/proof_diagnostics",
        "watermark_count",
    );
    // An extra field where `additionalProperties: false`.
    let feedback = json!({ "trace_id": "tr_1", "signal": "useful", "received_at": "2026-01-01T00:00:00Z",
                           "trace_known": true, "tenant_id": "acme" });
    assert_refused(contract.validate_schema("StoredContextFeedback", &feedback), "", "tenant_id");
    // ... but not where the schema allows extra fields.
    contract
        .validate_schema("ErrorResponse", &json!({ "error": "x", "code": "X", "detail": 1 }))
        .unwrap();
    // A wrong type: the trace scope's filter hash as a hex string.
    let mut trace = valid_trace();
    trace["scope"]["metadata_filter_hash"] = json!("9f86d081884c7d65");
    assert_refused(
        contract.validate_schema("ContextTrace", &trace),
        "/scope/metadata_filter_hash",
        "integer",
    );
    // An enum value outside the set.
    let mut packet = valid_packet();
    packet["status"] = json!("finished");
    assert_refused(contract.validate_schema("ContextPacket", &packet), "/status", "finished");
    // A date-time that is not one (the SDK parses these).
    let mut trace = valid_trace();
    trace["timestamp"] = json!("yesterday");
    assert_refused(contract.validate_schema("ContextTrace", &trace), "/timestamp", "date-time");
    // A tagged union: the branch the tag names explains the failure.
    let mut packet = valid_packet();
    packet["freshness"]["watermarks"][0]["scope"] = json!({ "type": "document" });
    assert_refused(
        contract.validate_schema("ContextPacket", &packet),
        "/freshness/watermarks/0/scope",
        "doc_id",
    );
    // Route lookups: a class of statuses, an inline array schema, and a response not listed.
    assert_refused(
        contract.validate_response("POST", "/v1/context/retrieve", 401, &json!({ "error": "no" })),
        "",
        "code",
    );
    assert_refused(
        contract.validate_response(
            "GET",
            "/v1/context/feedback/{trace_id}",
            200,
            &json!([{ "trace_id": 1 }]),
        ),
        "/0/trace_id",
        "string",
    );
    assert_refused(
        contract.validate_response(
            "GET",
            "/v1/health/context",
            401,
            &json!({ "error": "x", "code": "X" }),
        ),
        "",
        "no response for status 401",
    );
    let health = json!({ "status": "healthy", "connector": "mem", "connector_health": "healthy",
        "freshness_generation": 0, "trace_evidence_healthy": true, "feedback_evidence_healthy": true,
        "capture_evidence_healthy": true, "planner_state_healthy": true });
    contract.validate_response("GET", "/v1/health/context", 503, &health).unwrap();
    let mut extended = health.clone();
    extended["retentions"] = json!({});
    assert_refused(
        contract.validate_response("GET", "/v1/health/context", 200, &extended),
        "",
        "retentions",
    );
    // Request schemas: the shadow-session body is inline, and closed.
    contract
        .validate_request(
            "POST",
            "/v1/replay/shadow-sessions",
            &json!({ "schema_version": 1, "replay_primer": {} }),
        )
        .unwrap();
    assert_refused(
        contract.validate_request(
            "POST",
            "/v1/replay/shadow-sessions",
            &json!({ "schema_version": 1, "replay_primer": {}, "allow_connector_mutations": true }),
        ),
        "/allow_connector_mutations",
        "false",
    );
    assert_refused(contract.validate_schema("NoSuchSchema", &json!({})), "", "no such schema");
}
