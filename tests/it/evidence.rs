//! Evidence routes over the real binary: feedback is durable and turns a diagnosis, and
//! diagnoses classify traces into the contract's kinds.

use kyro_e2e::server::{
    ACME_DATA_TOKEN, ACME_OBS_TOKEN, DATA_TOKEN, KyroServer, OBS_TOKEN, tokens_section,
};
use kyro_e2e::{fixture_package, plugin_path, temp_dir};
use kyro_fixture_support::Defect;
use serde_json::{Value, json};

fn start(name: &str) -> KyroServer {
    let config = format!(
        "listen = \"{{listen}}\"\nmode = \"development\"\ndefault_freshness = \"balanced\"\nstate = \"sqlite://state.db\"\n{}\n\
         [[stores]]\nid = \"mem\"\nplugin = \"{}\"\nownership_mode = \"write_through\"\nnamespaces = [\"*\"]\n\
         [stores.config]\ndimension = 4\ndistance = \"cosine\"\nfilterable_keys = [\"lang\"]\n",
        tokens_section(),
        plugin_path(&fixture_package(Defect::None)).display()
    );
    KyroServer::start(&temp_dir(name), &config).unwrap()
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
    assert_eq!(diagnosis(&server, reused["trace_id"].as_str().unwrap())["kind"], "cache_reuse_hit");
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
