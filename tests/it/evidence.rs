//! Evidence routes over the real binary: feedback is durable and turns a diagnosis, diagnoses
//! classify traces into the contract's kinds, reports and diffs are redacted, and evidence that
//! cannot be persisted fails the routes that depend on it, closed, until it recovers.

use kyro_e2e::postgres::Database;
use kyro_e2e::replay::run_report;
use kyro_e2e::server::{
    ACME_ADMIN_TOKEN, ACME_DATA_TOKEN, ACME_OBS_TOKEN, ADMIN_TOKEN, DATA_TOKEN, KyroServer,
    OBS_TOKEN, tokens_section,
};
use kyro_e2e::{fixture_package, plugin_path, temp_dir};
use kyro_fixture_support::Defect;
use serde_json::{Value, json};

fn start(name: &str) -> KyroServer {
    KyroServer::start(&temp_dir(name), &config()).unwrap()
}

/// The evidence tests' configuration: the reference store, write-through, SQLite state.
fn config() -> String {
    format!(
        "listen = \"{{listen}}\"\nmode = \"development\"\ndefault_freshness = \"balanced\"\nstate = \"sqlite://state.db\"\n{}\n\
         [[stores]]\nid = \"mem\"\nplugin = \"{}\"\nownership_mode = \"write_through\"\nnamespaces = [\"*\"]\n\
         [stores.config]\ndimension = 4\ndistance = \"cosine\"\nfilterable_keys = [\"lang\"]\n",
        tokens_section(),
        plugin_path(&fixture_package(Defect::None)).display()
    )
}

fn retrieve(server: &KyroServer, tenant: &str, extra: Value) -> Value {
    let mut body = json!({ "query_embedding": [1.0, 0.0, 0.0, 0.0], "scope": { "tenant_id": tenant, "namespace": "support" }, "freshness_mode": "strict" });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let response = server.post("/v1/context/retrieve", DATA_TOKEN, &body);
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    response.json()
}

fn diagnosis(server: &KyroServer, trace_id: &str) -> Value {
    let response = server.get(&format!("/v1/traces/{trace_id}/diagnosis"), Some(OBS_TOKEN));
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    response.json()
}

#[test]
fn stale_feedback_is_durable_and_turns_the_diagnosis() {
    let server = start("feedback");
    let packet = retrieve(&server, "acme", json!({}));
    let trace_id = packet["trace_id"].as_str().unwrap().to_owned();
    assert_eq!(diagnosis(&server, &trace_id)["kind"], "fresh_backend_fetch");
    let stored = server.post(
        "/v1/context/feedback",
        ACME_DATA_TOKEN,
        &json!({ "trace_id": trace_id, "signal": "stale", "item_ids": ["doc-1"], "comment": "refund policy changed", "client": "x" }),
    );
    assert_eq!(stored.status, 200, "{}", String::from_utf8_lossy(&stored.body));
    let stored = stored.json();
    assert_eq!(stored["trace_known"], true);
    assert_eq!(stored["signal"], "stale");
    let listed = server.get(&format!("/v1/context/feedback/{trace_id}"), Some(OBS_TOKEN)).json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["comment"], "refund policy changed");
    let diagnosed = diagnosis(&server, &trace_id);
    assert_eq!(diagnosed["kind"], "feedback_reported_stale");
    assert_eq!(diagnosed["feedback_signals"], json!(["stale"]));
    assert!(diagnosed["recommended_actions"].as_array().unwrap().len() >= 2);

    let unknown = server
        .post(
            "/v1/context/feedback",
            DATA_TOKEN,
            &json!({ "trace_id": "tr_gone", "signal": "useful" }),
        )
        .json();
    assert_eq!(unknown["trace_known"], false);
    let bad = server.post(
        "/v1/context/feedback",
        DATA_TOKEN,
        &json!({ "trace_id": trace_id, "signal": "meh" }),
    );
    assert_eq!(bad.status, 400);
}

#[test]
fn a_blocked_strict_retrieve_is_diagnosed_as_such() {
    let server = start("diagnosis-blocked");
    let packet = retrieve(&server, "acme", json!({ "required_generation": 999 }));
    assert_eq!(packet["status"], "stale_blocked");
    assert!(packet["items"].as_array().unwrap().is_empty());
    assert_eq!(
        diagnosis(&server, packet["trace_id"].as_str().unwrap())["kind"],
        "strict_freshness_blocked"
    );
    let reused = {
        retrieve(&server, "acme", json!({}));
        retrieve(&server, "acme", json!({}))
    };
    assert_eq!(reused["meta"]["execution_path"], "context_reuse_hit");
    let reused_trace = reused["trace_id"].as_str().unwrap();
    assert_eq!(diagnosis(&server, reused_trace)["kind"], "cache_reuse_hit");
    // The trace says what the planner decided in words, not in Rust's debug rendering.
    let trace = server.get(&format!("/v1/traces/{reused_trace}"), Some(OBS_TOKEN)).json();
    let lookup =
        trace["stages"].as_array().unwrap().iter().find(|stage| stage["stage"] == "reuse_lookup");
    assert_eq!(lookup.unwrap()["detail"], "reuse a fresh entry", "{trace}");
}

#[test]
fn evidence_of_another_tenant_is_refused_to_restricted_tokens() {
    let server = start("evidence-tenants");
    let packet = retrieve(&server, "globex", json!({}));
    let trace_id = packet["trace_id"].as_str().unwrap();
    for path in
        [format!("/v1/context/feedback/{trace_id}"), format!("/v1/traces/{trace_id}/diagnosis")]
    {
        assert_eq!(server.get(&path, Some(ACME_OBS_TOKEN)).status, 403, "{path}");
    }
    let feedback = server.post(
        "/v1/context/feedback",
        ACME_DATA_TOKEN,
        &json!({ "trace_id": trace_id, "signal": "stale" }),
    );
    assert_eq!(feedback.status, 403);
    assert_eq!(
        server.get(&format!("/v1/traces/{trace_id}/diagnosis"), Some(DATA_TOKEN)).status,
        403,
        "data tokens cannot read diagnoses"
    );
}

/// The entry of a JSON list whose `field` is `value`.
fn entry<'a>(list: &'a Value, field: &str, value: &str) -> &'a Value {
    let entries = list.as_array().unwrap_or_else(|| panic!("not a list: {list}"));
    let found = entries.iter().find(|entry| entry[field] == value);
    found.unwrap_or_else(|| panic!("no entry with {field} {value}: {list}"))
}

const CANARY_CONTENT: &str = "CANARY-CONTENT-7f3a9c";
const CANARY_COMMENT: &str = "CANARY-COMMENT-b41e07";
/// An embedding component whose decimal digits appear nowhere else.
const CANARY_COMPONENT: f64 = 0.918_273_645_5;

#[test]
fn reports_bundles_and_diffs_carry_no_content_embeddings_tokens_or_foreign_trace_ids() {
    let server = start("redaction");
    let upsert = server.post(
        "/v1/documents/upsert",
        DATA_TOKEN,
        &json!({ "scope": { "tenant_id": "acme", "namespace": "support" },
                 "document": { "id": "canary", "embedding": [CANARY_COMPONENT, 0.1, 0.2, 0.3], "content": CANARY_CONTENT, "metadata": { "lang": "en" }, "revision": "1" } }),
    );
    assert_eq!(upsert.status, 200, "{}", String::from_utf8_lossy(&upsert.body));
    let acme =
        retrieve(&server, "acme", json!({ "query_embedding": [CANARY_COMPONENT, 0.1, 0.2, 0.3] }));
    assert_eq!(acme["items"][0]["content"], CANARY_CONTENT, "the canary is served to its tenant");
    let globex = retrieve(&server, "globex", json!({ "required_generation": 99 }));
    let globex_trace = globex["trace_id"].as_str().unwrap().to_owned();
    let feedback = server.post(
        "/v1/context/feedback",
        DATA_TOKEN,
        &json!({ "trace_id": acme["trace_id"], "signal": "irrelevant", "comment": CANARY_COMMENT }),
    );
    assert_eq!(feedback.status, 200);

    let capture = server.get("/v1/replay/capture?recent=10", Some(ADMIN_TOKEN)).json();
    let capture_text = capture.to_string();
    assert!(capture_text.contains(CANARY_CONTENT), "the capture keeps requests to replay them");
    let run = run_report(&capture);
    let documents = [
        server.post("/v1/proofs/bundle", ADMIN_TOKEN, &json!({ "recent": 10 })),
        server.post("/v1/proofs/bundle", ACME_ADMIN_TOKEN, &json!({ "recent": 10 })),
        server.post("/v1/root-cause/report", ADMIN_TOKEN, &json!({})),
        server.post("/v1/root-cause/report", ACME_ADMIN_TOKEN, &json!({})),
        server.get("/v1/proofs/context?recent=10", Some(ACME_OBS_TOKEN)),
        server.post("/v1/replay/diff", ADMIN_TOKEN, &json!({ "baseline": run, "candidate": run })),
        server.post(
            "/v1/replay/counterfactual",
            ADMIN_TOKEN,
            &json!({ "capture": capture, "scenario": { "name": "drop acme's first step", "interventions": [{ "type": "drop_step", "step_index": 0 }] } }),
        ),
        server.post(
            "/v1/proofs/bundle",
            ADMIN_TOKEN,
            &json!({ "baseline_capture": capture, "candidate_run": run }),
        ),
        server.get("/v1/runtime/evidence?recent=10", Some(ADMIN_TOKEN)),
        server.get("/v1/runtime/evidence?recent=10", Some(ACME_ADMIN_TOKEN)),
    ];
    let canaries = [
        CANARY_CONTENT.to_owned(),
        CANARY_COMMENT.to_owned(),
        "918273".to_owned(),
        DATA_TOKEN.to_owned(),
        ADMIN_TOKEN.to_owned(),
        ACME_ADMIN_TOKEN.to_owned(),
        OBS_TOKEN.to_owned(),
    ];
    for (idx, response) in documents.iter().enumerate() {
        assert_eq!(response.status, 200, "{idx}: {}", String::from_utf8_lossy(&response.body));
        let text = String::from_utf8_lossy(&response.body);
        for canary in &canaries {
            assert!(!text.contains(canary.as_str()), "document {idx} leaks {canary}: {text}");
        }
    }
    let bundle = documents[0].json();
    assert_eq!(bundle["schema_version"], 4);
    assert_eq!(bundle["baseline_run_summary"]["retrieve_steps"], 2, "{bundle}");
    let irrelevant = entry(&bundle["feedback_signal_counts"], "signal", "irrelevant");
    assert_eq!(irrelevant["count"], 1, "the comment is gone, its feedback counted: {bundle}");
    assert!(
        bundle.to_string().contains(&globex_trace),
        "an unrestricted admin sees every trace id"
    );
    assert!(!bundle["baseline_run_summary"]["redactions"].as_array().unwrap().is_empty());
    // A token restricted to acme sees globex's traces only as keys, and is told so.
    for restricted in [documents[3].json(), documents[4].json(), documents[9].json()] {
        let text = restricted.to_string();
        assert!(!text.contains(&globex_trace), "{text}");
        assert!(text.contains("redacted:"), "{text}");
        assert!(
            restricted["redactions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|line| line.as_str().unwrap().contains("trace ids")),
            "{text}"
        );
    }
    // Its bundle rests on its own tenant's capture only.
    let restricted_bundle = documents[1].json();
    let text = restricted_bundle.to_string();
    assert!(!text.contains(&globex_trace), "{text}");
    assert_eq!(restricted_bundle["baseline_run_summary"]["retrieve_steps"], 1, "{text}");
    assert_eq!(documents[4].json()["deployment_evidence_redacted"], true);
    let root = documents[2].json();
    let blocked = entry(&root["root_causes"], "kind", "strict_freshness_blocked");
    assert_eq!(blocked["count"], 1, "{root}");
    assert_eq!(root["stale_incident_count"], 1, "{root}");
    assert_eq!(root["incidents"][0]["trace_key"], globex_trace);
    // A supplied capture and run are a bundle of their own, compared step by step.
    let supplied = documents[7].json();
    assert_eq!(supplied["baseline_capture_source"], "caller_supplied");
    assert_eq!(supplied["replay_diff_summary"]["changed_steps"], 0, "{supplied}");
    // KyroDB's own listing keeps the line per trace and per feedback the bundle used to carry.
    let listing = documents[8].json();
    assert_eq!(listing["traces"].as_array().unwrap().len(), 2, "{listing}");
    assert_eq!(listing["feedback"][0]["comment_bytes"], CANARY_COMMENT.len(), "{listing}");
    assert_eq!(listing["feedback"][0]["signal"], "irrelevant", "{listing}");
    // Reports take only the contract's fields: no tenant filter.
    let foreign =
        server.post("/v1/proofs/bundle", ACME_ADMIN_TOKEN, &json!({ "tenant_id": "globex" }));
    assert_eq!(foreign.status, 400);
    for (path, body) in [
        ("/v1/proofs/bundle", json!({ "recent": 0 })),
        ("/v1/proofs/bundle", json!({ "unknown": true })),
        ("/v1/root-cause/report", json!({ "max_incidents": 5000 })),
        ("/v1/replay/diff", json!({ "baseline": {}, "candidate": {} })),
        (
            "/v1/replay/shadow-sessions",
            json!({ "schema_version": 2, "replay_primer": { "current_generation": 0 } }),
        ),
        (
            "/v1/replay/shadow-sessions",
            json!({ "schema_version": 1, "replay_primer": { "current_generation": 1, "scope_generations": [{ "scope": "all", "generation": 7, "acknowledged_at": "2026-01-01T00:00:00Z" }] } }),
        ),
    ] {
        let response = server.post(path, ADMIN_TOKEN, &body);
        assert_eq!(
            response.status,
            400,
            "{path} {body}: {}",
            String::from_utf8_lossy(&response.body)
        );
        assert_eq!(response.json()["code"], "VALIDATION_FAILED");
    }
    assert_eq!(server.get("/v1/proofs/context?recent=0", Some(OBS_TOKEN)).status, 400);
    assert_eq!(server.get("/v1/proofs/context?recent=x", Some(OBS_TOKEN)).status, 400);
    assert_eq!(
        server.get("/v1/replay/capture", Some(OBS_TOKEN)).status,
        403,
        "capture is admin-only"
    );
    assert_eq!(server.post("/v1/proofs/bundle", OBS_TOKEN, &json!({})).status, 403);
}

#[test]
fn evidence_that_cannot_be_stored_fails_closed_and_health_names_it() {
    let database = Database::create("evidence_health");
    let config = format!(
        "listen = \"{{listen}}\"\nmode = \"development\"\ndefault_freshness = \"strict\"\nstate = \"{}\"\n\
         feedback_retention_hours = 48\ncapture_retention_hours = 24\ncapture_max_steps = 500\n{}\n\
         [[stores]]\nid = \"mem\"\nplugin = \"{}\"\nownership_mode = \"write_through\"\nnamespaces = [\"*\"]\n\
         [stores.config]\ndimension = 4\ndistance = \"cosine\"\nfilterable_keys = [\"lang\"]\n",
        database.url(),
        tokens_section(),
        plugin_path(&fixture_package(Defect::None)).display()
    );
    let server = KyroServer::start(&temp_dir("evidence-health"), &config).unwrap();
    let packet = retrieve(&server, "acme", json!({}));
    let health = server.get("/v1/health/context", Some(ADMIN_TOKEN)).json();
    assert_eq!(health["evidence_failures"], json!([]), "{health}");
    assert_eq!(health["feedback_retention"], "48h", "{health}");
    let health = server.get("/v1/runtime/health", Some(ADMIN_TOKEN)).json();
    assert_eq!(health["retentions"]["feedback_retention_hours"], 48);
    assert_eq!(health["retentions"]["capture_retention_hours"], 24);
    assert_eq!(health["retentions"]["capture_max_steps"], 500);
    assert_eq!(health["retentions"]["stored_traces"], 1);
    assert_eq!(health["retentions"]["stored_capture_steps"], 1);

    // Traces (and the capture steps written with them) can no longer be stored.
    database.break_table("kyro_trace");
    let failed = server.post(
        "/v1/context/retrieve",
        DATA_TOKEN,
        &json!({ "query_embedding": [1.0, 0.0, 0.0, 0.0], "scope": { "tenant_id": "acme", "namespace": "support" } }),
    );
    assert_eq!(failed.status, 503);
    assert_eq!(failed.json()["code"], "TRACE_PERSISTENCE_FAILED");
    let health = server.get("/v1/health/context", Some(ADMIN_TOKEN));
    let health_body = health.json();
    assert_eq!(health_body["trace_evidence_healthy"], false, "{health_body}");
    assert_eq!(health_body["capture_evidence_healthy"], false);
    assert_eq!(health_body["feedback_evidence_healthy"], true);
    assert_eq!(health_body["evidence_failures"], json!(["trace", "capture"]));
    assert_ne!(health_body["status"], "healthy");
    for (path, code) in [
        ("/v1/proofs/context?recent=5", "TRACE_EVIDENCE_UNHEALTHY"),
        ("/v1/replay/capture?recent=5", "REPLAY_CAPTURE_EVIDENCE_UNHEALTHY"),
    ] {
        let response = server.get(path, Some(ADMIN_TOKEN));
        assert_eq!(response.status, 503, "{path}");
        assert_eq!(response.json()["code"], code, "{path}");
    }
    let bundle = server.post("/v1/proofs/bundle", ADMIN_TOKEN, &json!({}));
    assert_eq!(bundle.json()["code"], "TRACE_EVIDENCE_UNHEALTHY");

    // Feedback storage breaks too; its reads fail closed with their own code.
    database.break_table("kyro_feedback");
    database.restore_table("kyro_trace");
    let trace_id = packet["trace_id"].as_str().unwrap();
    let feedback = server.post(
        "/v1/context/feedback",
        DATA_TOKEN,
        &json!({ "trace_id": trace_id, "signal": "useful" }),
    );
    assert_eq!(feedback.json()["code"], "FEEDBACK_PERSISTENCE_FAILED");
    let listed = server.get(&format!("/v1/context/feedback/{trace_id}"), Some(OBS_TOKEN));
    assert_eq!(listed.json()["code"], "FEEDBACK_EVIDENCE_UNHEALTHY");

    // Once storage works again, the next successful writes clear the failures.
    database.restore_table("kyro_feedback");
    retrieve(&server, "acme", json!({}));
    let stored = server.post(
        "/v1/context/feedback",
        DATA_TOKEN,
        &json!({ "trace_id": trace_id, "signal": "useful" }),
    );
    assert_eq!(stored.status, 200, "{}", String::from_utf8_lossy(&stored.body));
    let health = server.get("/v1/health/context", Some(ADMIN_TOKEN)).json();
    assert_eq!(health["evidence_failures"], json!([]), "{health}");
    assert_eq!(server.get("/v1/proofs/context?recent=5", Some(OBS_TOKEN)).status, 200);
}

#[test]
fn shadow_sessions_are_bounded_in_number_and_time() {
    let config = format!(
        "listen = \"{{listen}}\"\nmode = \"development\"\ndefault_freshness = \"strict\"\nstate = \"sqlite://state.db\"\n\
         shadow_session_ttl_secs = 1\nmax_shadow_sessions = 1\n{}\n\
         [[stores]]\nid = \"mem\"\nplugin = \"{}\"\nownership_mode = \"write_through\"\nnamespaces = [\"*\"]\n\
         [stores.config]\ndimension = 4\ndistance = \"cosine\"\nfilterable_keys = [\"lang\"]\n",
        tokens_section(),
        plugin_path(&fixture_package(Defect::None)).display()
    );
    let server = KyroServer::start(&temp_dir("shadow-bounds"), &config).unwrap();
    let create = || {
        server.post(
            "/v1/replay/shadow-sessions",
            ADMIN_TOKEN,
            &json!({ "schema_version": 1, "replay_primer": { "current_generation": 3 } }),
        )
    };
    let first = create();
    assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&first.body));
    let session_id = first.json()["session_id"].as_str().unwrap().to_owned();
    let ack = server.post_raw(
        "/v1/context/invalidate",
        Some(DATA_TOKEN),
        &[("kyro-shadow-session-id", &session_id)],
        json!({ "target": { "type": "all" } }).to_string().as_bytes(),
    );
    assert_eq!(ack.status, 200, "{}", String::from_utf8_lossy(&ack.body));
    assert_eq!(ack.json()["generation"], 4, "the session continues from its primer");
    let live =
        server.post("/v1/context/invalidate", DATA_TOKEN, &json!({ "target": { "type": "all" } }));
    assert_eq!(live.json()["generation"], 1, "the live ledger is its own");
    let second = create();
    assert_eq!(second.status, 503);
    assert_eq!(second.json()["code"], "GATEWAY_OVERLOADED");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let expired = server.post_raw(
        "/v1/context/invalidate",
        Some(DATA_TOKEN),
        &[("kyro-shadow-session-id", &session_id)],
        json!({ "target": { "type": "all" } }).to_string().as_bytes(),
    );
    assert_eq!(expired.status, 404);
    assert_eq!(create().status, 200, "an expired session frees its slot");
}

#[test]
fn a_killed_hosts_shadow_state_is_removed_by_the_next_host() {
    let killed = start("shadow-orphans");
    let created = killed.post(
        "/v1/replay/shadow-sessions",
        ADMIN_TOKEN,
        &json!({ "schema_version": 1, "replay_primer": { "current_generation": 0 } }),
    );
    assert_eq!(created.status, 200, "{}", String::from_utf8_lossy(&created.body));
    let session_id = created.json()["session_id"].as_str().unwrap().to_owned();
    let session_dir = || {
        std::fs::read_dir(std::env::temp_dir()).unwrap().flatten().find(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with("kyro-shadow-") && name.ends_with(&session_id)
        })
    };
    assert!(session_dir().is_some(), "the session keeps its state in the temp dir");
    killed.kill();
    assert!(session_dir().is_some(), "a killed host cannot clean up after itself");
    let _next = start("shadow-orphans-next");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while session_dir().is_some() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(session_dir().is_none(), "the next host removes a stopped host's shadow state");
}

#[test]
fn a_running_host_keeps_the_capture_within_its_bound() {
    let config = config().replace(
        "state = \"sqlite://state.db\"\n",
        "state = \"sqlite://state.db\"\ncapture_max_steps = 3\n",
    );
    let server = KyroServer::start(&temp_dir("capture-bound"), &config).unwrap();
    for _ in 0..8 {
        retrieve(&server, "acme", json!({}));
    }
    let stored = || {
        let health = server.get("/v1/runtime/health", Some(ADMIN_TOKEN)).json();
        health["retentions"]["stored_capture_steps"].as_u64().unwrap()
    };
    // The writer trims as it writes, without waiting for the ten-second retention pass.
    assert_eq!(stored(), 3, "the capture went over its bound of 3");
    let capture = server.get("/v1/replay/capture?recent=100", Some(ADMIN_TOKEN)).json();
    assert_eq!(capture["steps"].as_array().unwrap().len(), 3, "the newest three are kept");
}
