//! Replay over the real binary and a live pgvector table: a stale incident recorded by one
//! runtime shows in its proof and root-cause reports; its capture, replayed into a shadow session
//! of a second runtime, diffs empty when both are configured alike and shows the changed fields
//! when the candidate is weakened (over HTTP and through `kyro replay`); a counterfactual that
//! drops the change event shows the stale-block delta; shadow sessions leave live state alone.

use std::process::Command;

use kyro_e2e::server::{ADMIN_TOKEN, DATA_TOKEN, KyroServer, OBS_TOKEN, tokens_section};
use kyro_e2e::{kyro_binary, plugin_path, temp_dir};
use serde_json::{Value, json};

use kyro_e2e::postgres::psql;
use kyro_e2e::replay::run_report;

use crate::pgvector::{Table, create_table, store_config};

const SHADOW_HEADER: &str = "kyro-shadow-session-id";

fn config(table: &str, default_freshness: &str) -> String {
    format!(
        "listen = \"{{listen}}\"\nmode = \"development\"\ndefault_freshness = \"{default_freshness}\"\nstate = \"sqlite://state.db\"\n{}\n\
         [[stores]]\nid = \"pg\"\nplugin = \"{}\"\nownership_mode = \"event_feed\"\nnamespaces = [\"*\"]\n[stores.config]\n{}",
        tokens_section(),
        plugin_path("kyro-connector-pgvector").display(),
        store_config(table, "event_feed")
    )
}

fn seeded_table(name: &str) -> Table {
    let table = Table(create_table(name));
    psql(&format!(
        "INSERT INTO {} (tenant_id, namespace, id, embedding, metadata, content) VALUES \
         ('acme', 'support', 'refunds', '[1,0,0,0]', '{{\"lang\":\"en\"}}', 'refunds in 14 days'), \
         ('acme', 'support', 'shipping', '[0.9,0.1,0,0]', '{{\"lang\":\"en\"}}', 'ships in 2 days')",
        table.0
    ));
    table
}

fn send(server: &KyroServer, path: &str, body: &Value, shadow: Option<&str>) -> Value {
    let headers: Vec<(&str, &str)> = shadow.map(|id| (SHADOW_HEADER, id)).into_iter().collect();
    let response = server.post_raw(path, Some(DATA_TOKEN), &headers, body.to_string().as_bytes());
    assert_eq!(response.status, 200, "{path}: {}", String::from_utf8_lossy(&response.body));
    response.json()
}

fn retrieve_body(required_generation: Option<u64>) -> Value {
    let mut body = json!({ "query_embedding": [1.0, 0.0, 0.0, 0.0], "scope": { "tenant_id": "acme", "namespace": "support" }, "top_k": 5 });
    if let Some(generation) = required_generation {
        body["required_generation"] = json!(generation);
    }
    body
}

fn change_body() -> Value {
    json!({ "target": { "type": "document", "doc_id": "refunds" }, "change_type": "content_updated",
            "scope": { "tenant_id": "acme", "namespace": "support" }, "source_event_id": "billing-7", "revision": "3" })
}

/// The incident: a fresh answer, a change the store has not caught up with, a strict answer that
/// prunes the stale row, and a strict answer that must wait for a generation not yet reached.
/// Returns the traces of the pruned and the blocked answer.
fn run_incident(server: &KyroServer, shadow: Option<&str>) -> (Value, Value) {
    let fresh = send(server, "/v1/context/retrieve", &retrieve_body(None), shadow);
    assert_eq!(fresh["status"], "complete", "{fresh}");
    assert_eq!(fresh["items"].as_array().unwrap().len(), 2);
    let ack = send(server, "/v1/events/change", &change_body(), shadow);
    assert_eq!(ack["generation"], 1);
    let pruned = send(server, "/v1/context/retrieve", &retrieve_body(Some(1)), shadow);
    let blocked = send(server, "/v1/context/retrieve", &retrieve_body(Some(5)), shadow);
    (pruned, blocked)
}

fn capture(server: &KyroServer, shadow: Option<&str>) -> Value {
    let headers: Vec<(&str, &str)> = shadow.map(|id| (SHADOW_HEADER, id)).into_iter().collect();
    let response = server.get_with("/v1/replay/capture?recent=50", Some(ADMIN_TOKEN), &headers);
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    response.json()
}

fn admin(server: &KyroServer, path: &str, body: &Value) -> Value {
    let response = server.post(path, ADMIN_TOKEN, body);
    assert_eq!(response.status, 200, "{path}: {}", String::from_utf8_lossy(&response.body));
    response.json()
}

fn shadow_session(server: &KyroServer, primer: &Value) -> String {
    let created = admin(
        server,
        "/v1/replay/shadow-sessions",
        &json!({ "schema_version": 1, "replay_primer": primer }),
    );
    assert_eq!(created["schema_version"], 1);
    assert!(created["expires_at"].as_str().is_some());
    created["session_id"].as_str().unwrap().to_owned()
}

/// Replays every captured step into the shadow session over HTTP, as a cutover gate would.
fn replay_over_http(server: &KyroServer, exported: &Value, shadow: &str) {
    for step in exported["steps"].as_array().unwrap() {
        let request = &step["request"];
        send(server, request["route"].as_str().unwrap(), &request["body"], Some(shadow));
    }
}

fn statuses(exported: &Value) -> Vec<(String, String)> {
    exported["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            let record = &step["observed_record"];
            (
                record["step_type"].as_str().unwrap().to_owned(),
                record["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_stale_incident_is_reported_captured_replayed_and_counterfactually_undone() {
    let table = seeded_table("replay");
    let live = KyroServer::start(&temp_dir("replay-live"), &config(&table.0, "strict")).unwrap();
    let (pruned, blocked) = run_incident(&live, None);
    assert_eq!(pruned["status"], "partial", "{pruned}");
    assert_eq!(pruned["omissions"][0]["reason"], "stale_pruned");
    assert_eq!(blocked["status"], "stale_blocked");
    let stale_feedback = live.post(
        "/v1/context/feedback",
        DATA_TOKEN,
        &json!({ "trace_id": pruned["trace_id"], "signal": "stale" }),
    );
    assert_eq!(stale_feedback.status, 200);

    // The proof report counts the incident.
    let report = live.get("/v1/proofs/context?recent=10", Some(OBS_TOKEN));
    assert_eq!(report.status, 200, "{}", String::from_utf8_lossy(&report.body));
    let report = report.json();
    assert_eq!(report["traces_considered"], 3);
    assert_eq!(report["stale_blocked_count"], 1);
    assert_eq!(report["feedback_entries_considered"], 1);
    assert_eq!(
        report["incident_counts"],
        json!([
            { "kind": "strict_freshness_blocked", "count": 1 },
            { "kind": "feedback_reported_stale", "count": 1 },
        ]),
        "{report}"
    );
    // Newest first.
    assert_eq!(report["incident_trace_keys"], json!([blocked["trace_id"], pruned["trace_id"]]));
    assert_eq!(report["proof_quality"]["stale_pruned_item_count"], 1, "{report}");

    // The root-cause report ties the blocked answer to the change event before it.
    let root = admin(&live, "/v1/root-cause/report", &json!({ "recent": 10 }));
    assert_eq!(root["schema_version"], 2);
    assert_eq!(root["stale_incident_count"], 2, "{root}");
    assert_eq!(root["incidents"].as_array().unwrap().len(), 2, "only stale incidents: {root}");
    let blocked_incident = root["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|incident| incident["trace_key"] == blocked["trace_id"])
        .unwrap_or_else(|| panic!("the blocked trace is an incident: {root}"));
    assert_eq!(blocked_incident["kind"], "strict_freshness_blocked");
    assert_eq!(blocked_incident["preceding_changes"][0]["label"], "change_event billing-7");
    assert_eq!(blocked_incident["preceding_changes"][0]["generation"], 1);
    let every =
        admin(&live, "/v1/root-cause/report", &json!({ "recent": 10, "include_non_stale": true }));
    assert_eq!(every["incidents"].as_array().unwrap().len(), 3, "every trace: {every}");
    let one = admin(&live, "/v1/root-cause/report", &json!({ "trace_id": pruned["trace_id"] }));
    assert_eq!(one["incidents"][0]["kind"], "feedback_reported_stale");
    assert_eq!(one["incidents"][0]["feedback_signals"], json!(["stale"]));

    // The capture holds the four steps in order, with the primer before the first.
    let exported = capture(&live, None);
    assert_eq!(exported["schema_version"], 4);
    assert_eq!(exported["total_steps"], 4);
    assert_eq!(
        statuses(&exported),
        [
            ("retrieve".to_owned(), "complete".to_owned()),
            ("change_event".to_owned(), "accepted".to_owned()),
            ("retrieve".to_owned(), "partial".to_owned()),
            ("retrieve".to_owned(), "stale_blocked".to_owned()),
        ]
    );
    assert_eq!(exported["replay_primer"]["current_generation"], 0);
    assert_eq!(exported["steps"][2]["pre_step_replay_primer"]["current_generation"], 1);
    assert_eq!(exported["steps"][2]["observed_record"]["stale_pruned"], json!(["refunds"]));

    // Counterfactual: without the change event, the answer that waited for it is blocked.
    let counterfactual = admin(
        &live,
        "/v1/replay/counterfactual",
        &json!({ "capture": exported, "scenario": { "name": "no billing-7", "interventions": [{ "type": "drop_step", "step_index": 1 }] } }),
    );
    let baseline = &counterfactual["baseline_run_summary"];
    let statuses_of = |summary: &Value| -> Vec<String> {
        let records = summary["records"].as_array().unwrap();
        records.iter().map(|record| record["status"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(
        statuses_of(baseline),
        ["complete", "accepted", "partial", "stale_blocked"],
        "the simulated baseline answers as captured: {counterfactual}"
    );
    assert_eq!(counterfactual["stale_block_delta"], 1, "{counterfactual}");
    assert_eq!(counterfactual["transformed_steps"], 1, "{counterfactual}");
    let blocked_now = |result: &Value| -> Value {
        let diffs = result["replay_diff_summary"]["diffs"].as_array().unwrap();
        let step = diffs.iter().find(|diff| diff["step_key"] == "retrieve:2");
        let step = step.unwrap_or_else(|| panic!("the pruned retrieve changed: {result}"));
        json!([step["baseline"]["status"], step["candidate"]["status"]])
    };
    assert_eq!(blocked_now(&counterfactual), json!(["partial", "stale_blocked"]));
    assert_eq!(counterfactual["replay_diff_summary"]["only_in_baseline_count"], 1);
    let moved = admin(
        &live,
        "/v1/replay/counterfactual",
        &json!({ "capture": exported, "scenario": { "name": "billing-7 late", "interventions": [{ "type": "move_step_after", "step_index": 1, "after_step_index": 3 }] } }),
    );
    assert_eq!(blocked_now(&moved), json!(["partial", "stale_blocked"]), "{moved}");
    let refused = live.post(
        "/v1/replay/counterfactual",
        ADMIN_TOKEN,
        &json!({ "capture": exported, "scenario": { "name": "nothing", "interventions": [{ "type": "drop_step", "step_index": 99 }] } }),
    );
    assert_eq!(refused.status, 400);

    // A second runtime configured alike answers the replay alike, in a shadow session.
    let candidate =
        KyroServer::start(&temp_dir("replay-candidate"), &config(&table.0, "strict")).unwrap();
    let shadow = shadow_session(&candidate, &exported["replay_primer"]);
    replay_over_http(&candidate, &exported, &shadow);
    let replayed = capture(&candidate, Some(&shadow));
    let same = admin(
        &candidate,
        "/v1/replay/diff",
        &json!({ "baseline": run_report(&exported), "candidate": run_report(&replayed) }),
    );
    assert_eq!(same["compared_steps"], 4, "{same}");
    assert_eq!(same["changed_steps"], 0, "{same}");
    assert_eq!(same["only_in_baseline_count"], 0, "{same}");

    // ... and leaves its own live state untouched.
    let health = candidate.get("/v1/health/context", Some(ADMIN_TOKEN)).json();
    assert_eq!(health["freshness_generation"], 0, "{health}");
    let health = candidate.get("/v1/runtime/health", Some(ADMIN_TOKEN)).json();
    assert_eq!(health["retentions"]["stored_traces"], 0, "{health}");
    assert_eq!(health["retentions"]["stored_capture_steps"], 0, "{health}");
    let live_capture = capture(&candidate, None);
    assert_eq!(live_capture["total_steps"], 0);
    let shadow_trace = replayed["steps"][0]["observed_record"]["label"].clone();
    assert_eq!(shadow_trace, "retrieve acme/support");
    let shadow_packet =
        send(&candidate, "/v1/context/retrieve", &retrieve_body(None), Some(&shadow));
    let trace_path = format!("/v1/traces/{}", shadow_packet["trace_id"].as_str().unwrap());
    assert_eq!(candidate.get(&trace_path, Some(OBS_TOKEN)).status, 404, "not in live traces");
    assert_eq!(
        candidate.get_with(&trace_path, Some(OBS_TOKEN), &[(SHADOW_HEADER, &shadow)]).status,
        200
    );
    let mutation = candidate.post_raw(
        "/v1/documents/delete",
        Some(DATA_TOKEN),
        &[(SHADOW_HEADER, &shadow)],
        json!({ "scope": { "tenant_id": "acme", "namespace": "support" }, "id": "refunds" })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(mutation.status, 409, "{}", String::from_utf8_lossy(&mutation.body));
    assert!(String::from_utf8_lossy(&mutation.body).contains("shadow session"));
    let unknown = candidate.post_raw(
        "/v1/context/retrieve",
        Some(DATA_TOKEN),
        &[(SHADOW_HEADER, "sh_nope")],
        retrieve_body(None).to_string().as_bytes(),
    );
    assert_eq!(unknown.status, 404);
    let malformed = candidate.post_raw(
        "/v1/context/retrieve",
        Some(DATA_TOKEN),
        &[(SHADOW_HEADER, "no spaces allowed")],
        retrieve_body(None).to_string().as_bytes(),
    );
    assert_eq!(malformed.status, 400);

    // A weakened candidate (eventual by default) answers differently, and the diff says where.
    let weak = KyroServer::start(&temp_dir("replay-weak"), &config(&table.0, "eventual")).unwrap();
    let weak_shadow = shadow_session(&weak, &exported["replay_primer"]);
    replay_over_http(&weak, &exported, &weak_shadow);
    let weak_capture = capture(&weak, Some(&weak_shadow));
    let differs = admin(
        &weak,
        "/v1/replay/diff",
        &json!({ "baseline": run_report(&exported), "candidate": run_report(&weak_capture) }),
    );
    let diffs = differs["diffs"].as_array().unwrap();
    let pruned_step = diffs
        .iter()
        .find(|diff| diff["step_key"] == "retrieve:2")
        .unwrap_or_else(|| panic!("the pruned retrieve differs: {differs}"));
    let fields = pruned_step["changed_fields"].as_array().unwrap();
    assert!(fields.contains(&json!("served_freshness_mode")), "{differs}");
    assert!(fields.contains(&json!("status")), "{differs}");
    assert_eq!(pruned_step["baseline"]["status"], "partial", "{differs}");
    assert_eq!(pruned_step["candidate"]["status"], "degraded", "{differs}");

    // `kyro replay` is the same gate from the command line: 0 when alike, 1 when not.
    let capture_path = temp_dir("replay-cli").join("capture.json");
    std::fs::write(&capture_path, exported.to_string()).unwrap();
    for (dir, expected_code) in [(&candidate.dir, 0), (&weak.dir, 1)] {
        let output = Command::new(kyro_binary())
            .args(["replay", "--config"])
            .arg(dir.join("kyro.toml"))
            .arg("--capture")
            .arg(&capture_path)
            .current_dir(dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(expected_code),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["identical"], expected_code == 0, "{report}");
        assert_eq!(report["diff"]["compared_steps"], 4, "{report}");
    }
}
