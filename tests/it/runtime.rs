//! The serving path end to end: the real `kyro serve` with real plugin cdylibs, driven over HTTP.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kyro_e2e::server::{
    ACME_DATA_TOKEN, ACME_OBS_TOKEN, ADMIN_TOKEN, DATA_TOKEN, KyroServer, OBS_TOKEN, tokens_section,
};
use kyro_e2e::{fixture_package, plugin_path, temp_dir};
use kyro_fixture_support::Defect;
use serde_json::{Value, json};

fn memory_store(id: &str, defect: Defect, namespaces: &str) -> String {
    format!(
        "[[stores]]\nid = \"{id}\"\nplugin = \"{}\"\nownership_mode = \"write_through\"\nnamespaces = {namespaces}\n\
         [stores.config]\ndimension = 4\ndistance = \"cosine\"\nfilterable_keys = [\"lang\"]\nmax_top_k = 50\nmax_fetch_ids = 50\n",
        plugin_path(&fixture_package(defect)).display()
    )
}

fn config(mode: &str, stores: &str) -> String {
    format!(
        "listen = \"{{listen}}\"\nmode = \"{mode}\"\ndefault_freshness = \"balanced\"\nstate = \"sqlite://state.db\"\n{}\n{stores}",
        tokens_section()
    )
}

fn start(name: &str) -> KyroServer {
    KyroServer::start(
        &temp_dir(name),
        &config("development", &memory_store("mem", Defect::None, "[\"*\"]")),
    )
    .unwrap()
}

fn upsert(
    server: &KyroServer,
    tenant: &str,
    id: &str,
    vector: [f32; 4],
    content: &str,
    revision: &str,
) -> Value {
    let response = server.post(
        "/v1/documents/upsert",
        DATA_TOKEN,
        &json!({
            "scope": { "tenant_id": tenant, "namespace": "support" },
            "document": { "id": id, "embedding": vector, "content": content, "metadata": { "lang": "en" }, "revision": revision },
        }),
    );
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    response.json()
}

fn retrieve(
    server: &KyroServer,
    token: &str,
    tenant: &str,
    mode: &str,
) -> kyro_e2e::http::HttpResponse {
    server.post(
        "/v1/context/retrieve",
        token,
        &json!({
            "query_embedding": [1.0, 0.0, 0.0, 0.0],
            "scope": { "tenant_id": tenant, "namespace": "support" },
            "top_k": 5,
            "freshness_mode": mode,
        }),
    )
}

fn ids_and_content(packet: &Value) -> Vec<(String, String)> {
    packet["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["id"].as_str().unwrap().to_owned(),
                item["content"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_packet_and_trace_have_the_contract_shape() {
    let server = start("packet-shape");
    upsert(&server, "acme", "doc-1", [1.0, 0.0, 0.0, 0.0], "refunds take 5 days", "1");
    upsert(&server, "acme", "doc-2", [0.9, 0.1, 0.0, 0.0], "billing runs monthly", "1");
    let response = retrieve(&server, DATA_TOKEN, "acme", "strict");
    assert_eq!(response.status, 200);
    assert!(response.header("x-request-id").is_some());
    let packet = response.json();
    insta::assert_json_snapshot!("retrieve_packet", kyro_e2e::sorted_json(packet.clone()), {
        ".packet_id" => "[packet_id]",
        ".trace_id" => "[trace_id]",
        ".freshness.safe_as_of" => "[time]",
        ".freshness.watermarks[].observed_at" => "[time]",
        ".items[].provenance.retrieved_at" => "[time]",
        ".meta.latency_ms" => "[ms]",
        // The fingerprint includes the plugin file's SHA-256, which depends on the build.
        ".meta.scope_fingerprint" => "[fingerprint]",
    });
    assert_eq!(packet["meta"]["scope_fingerprint"].as_str().unwrap().len(), 16);
    let trace_id = packet["trace_id"].as_str().unwrap();
    let trace = server.get(&format!("/v1/traces/{trace_id}"), Some(OBS_TOKEN));
    assert_eq!(trace.status, 200);
    let trace = trace.json();
    for field in [
        "trace_id",
        "timestamp",
        "scope",
        "query_hash",
        "top_k_requested",
        "freshness_mode",
        "served_freshness_mode",
        "execution_path",
        "stages",
        "freshness_generation",
        "items_returned",
        "items_omitted",
        "status",
        "total_latency_ms",
    ] {
        assert!(trace.get(field).is_some(), "trace lacks {field}: {trace}");
    }
    assert_eq!(trace["items_returned"], 2);
    assert!(trace["query_hash"].as_str().unwrap().parse::<u64>().is_ok());
    assert!(trace["scope"]["metadata_filter_hash"].is_u64(), "{trace}");
    // The second identical strict retrieve is a reuse hit with the ledger check.
    let again = retrieve(&server, DATA_TOKEN, "acme", "strict").json();
    assert_eq!(again["meta"]["execution_path"], "context_reuse_hit");
    assert_eq!(again["meta"]["cache_hit"], true);
    assert_eq!(ids_and_content(&again), ids_and_content(&packet));
}

#[test]
fn a_change_acknowledged_before_a_strict_retrieve_is_never_followed_by_stale_content() {
    let server = start("strict-stale");
    upsert(&server, "acme", "doc-1", [1.0, 0.0, 0.0, 0.0], "version one", "1");
    upsert(&server, "acme", "doc-2", [0.8, 0.2, 0.0, 0.0], "unrelated", "1");
    let warm = retrieve(&server, DATA_TOKEN, "acme", "strict").json();
    assert_eq!(ids_and_content(&warm).len(), 2);
    // The source reports revision 2 of doc-1; the store still holds revision 1.
    let ack = server.post(
        "/v1/events/change",
        DATA_TOKEN,
        &json!({
            "target": { "type": "document", "doc_id": "doc-1" },
            "change_type": "content_updated",
            "scope": { "tenant_id": "acme", "namespace": "support" },
            "source_event_id": "evt-1",
            "revision": "2",
        }),
    );
    assert_eq!(ack.status, 200);
    let ack = ack.json();
    assert_eq!(ack["accepted"], true);
    assert_eq!(ack["entries_invalidated"], 1, "the cached packet holding doc-1 is invalidated");
    let strict = retrieve(&server, DATA_TOKEN, "acme", "strict").json();
    assert_eq!(
        strict["meta"]["execution_path"], "backend_fetch",
        "the stale cache entry is not reused"
    );
    assert!(
        !ids_and_content(&strict).iter().any(|(_, content)| content == "version one"),
        "{strict}"
    );
    assert_eq!(strict["status"], "partial");
    assert_eq!(strict["omissions"][0]["id"], "doc-1");
    assert_eq!(strict["omissions"][0]["reason"], "stale_pruned");
    assert_eq!(strict["meta"]["stale_pruned"], 1);
    assert!(
        strict["freshness"]["generation"].as_u64().unwrap() >= ack["generation"].as_u64().unwrap()
    );
    // Once the store has revision 2, strict serves it.
    upsert(&server, "acme", "doc-1", [1.0, 0.0, 0.0, 0.0], "version two", "2");
    let fresh = retrieve(&server, DATA_TOKEN, "acme", "strict").json();
    assert!(
        ids_and_content(&fresh).contains(&("doc-1".to_owned(), "version two".to_owned())),
        "{fresh}"
    );
    assert_eq!(fresh["status"], "complete");
}

#[test]
fn eventual_may_serve_stale_reuse_but_flags_it() {
    let server = start("eventual-stale");
    upsert(&server, "acme", "doc-1", [1.0, 0.0, 0.0, 0.0], "cached copy", "1");
    assert_eq!(retrieve(&server, DATA_TOKEN, "acme", "eventual").status, 200);
    let invalidate = server.post(
        "/v1/context/invalidate",
        DATA_TOKEN,
        &json!({ "target": { "type": "namespace", "namespace": "support" }, "tenant_id": "acme", "reason": "reindex" }),
    );
    assert_eq!(invalidate.status, 200, "{}", String::from_utf8_lossy(&invalidate.body));
    assert_eq!(invalidate.json()["entries_invalidated"], 1);
    let eventual = retrieve(&server, DATA_TOKEN, "acme", "eventual").json();
    assert_eq!(eventual["meta"]["execution_path"], "context_reuse_hit");
    assert_eq!(eventual["status"], "degraded");
    assert!(
        eventual["meta"]["proof_diagnostics"]["diagnostic_codes"]
            .to_string()
            .contains("stale_reuse_served")
    );
    let strict = retrieve(&server, DATA_TOKEN, "acme", "strict").json();
    assert_eq!(strict["meta"]["execution_path"], "backend_fetch");
}

#[test]
fn a_replayed_source_event_id_returns_its_original_generation() {
    let server = start("replay");
    let event = json!({
        "target": { "type": "tenant", "tenant_id": "acme" },
        "change_type": "access_policy_updated",
        "scope": { "tenant_id": "acme" },
        "source_event_id": "evt-42",
        "extra_field_from_the_source": true,
    });
    let first = server.post("/v1/events/change", DATA_TOKEN, &event).json();
    let other = server.post(
        "/v1/events/change",
        DATA_TOKEN,
        &json!({ "target": { "type": "all" }, "change_type": "connector_resynced", "scope": {}, "source_event_id": "evt-43" }),
    );
    assert_eq!(
        other.json()["generation"].as_u64().unwrap(),
        first["generation"].as_u64().unwrap() + 1
    );
    let replay = server.post("/v1/events/change", DATA_TOKEN, &event).json();
    assert_eq!(replay["generation"], first["generation"]);
    assert_eq!(replay["entries_invalidated"], 0);
    let mut changed = event.clone();
    changed["change_type"] = json!("deleted");
    let conflict = server.post("/v1/events/change", DATA_TOKEN, &changed);
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.json()["code"], "VALIDATION_FAILED");
}

#[test]
fn tenant_restricted_tokens_are_refused_for_other_tenants_on_every_route() {
    let server = start("tenant-tokens");
    upsert(&server, "globex", "doc-1", [1.0, 0.0, 0.0, 0.0], "globex secret", "1");
    let globex_packet = retrieve(&server, DATA_TOKEN, "globex", "eventual").json();
    let trace_id = globex_packet["trace_id"].as_str().unwrap().to_owned();
    let scope = json!({ "tenant_id": "globex", "namespace": "support" });
    let attempts: Vec<(&str, Value)> = vec![
        (
            "/v1/context/retrieve",
            json!({ "query_embedding": [1.0, 0.0, 0.0, 0.0], "scope": scope }),
        ),
        (
            "/v1/events/change",
            json!({ "target": { "type": "document", "doc_id": "doc-1" }, "change_type": "deleted", "scope": scope, "source_event_id": "x" }),
        ),
        (
            "/v1/events/change",
            json!({ "target": { "type": "all" }, "change_type": "deleted", "scope": {}, "source_event_id": "y" }),
        ),
        (
            "/v1/context/invalidate",
            json!({ "target": { "type": "tenant", "tenant_id": "globex" } }),
        ),
        ("/v1/context/invalidate", json!({ "target": { "type": "all" } })),
        (
            "/v1/documents/upsert",
            json!({ "scope": scope, "document": { "id": "doc-1", "embedding": [1.0, 0.0, 0.0, 0.0] } }),
        ),
        ("/v1/documents/delete", json!({ "scope": scope, "id": "doc-1" })),
    ];
    for (path, body) in attempts {
        let response = server.post(path, ACME_DATA_TOKEN, &body);
        assert_eq!(
            response.status,
            403,
            "{path} {body}: {}",
            String::from_utf8_lossy(&response.body)
        );
        assert_eq!(response.json()["code"], "FORBIDDEN");
    }
    let trace = server.get(&format!("/v1/traces/{trace_id}"), Some(ACME_OBS_TOKEN));
    assert_eq!(trace.status, 403);
    // Nothing changed: globex's document is still there.
    assert_eq!(ids_and_content(&retrieve(&server, DATA_TOKEN, "globex", "strict").json()).len(), 1);
    // The restricted token works for its own tenant.
    assert_eq!(retrieve(&server, ACME_DATA_TOKEN, "acme", "eventual").status, 200);
}

#[test]
fn tokens_are_valid_for_their_plane_only() {
    let server = start("planes");
    let packet = retrieve(&server, DATA_TOKEN, "acme", "eventual").json();
    let trace_path = format!("/v1/traces/{}", packet["trace_id"].as_str().unwrap());
    assert_eq!(
        server.get(&trace_path, Some(DATA_TOKEN)).status,
        403,
        "a data token cannot read traces"
    );
    assert_eq!(server.get(&trace_path, Some(OBS_TOKEN)).status, 200);
    assert_eq!(
        server.get(&trace_path, Some(ADMIN_TOKEN)).status,
        200,
        "admin tokens may call observability routes"
    );
    assert_eq!(
        retrieve(&server, OBS_TOKEN, "acme", "eventual").status,
        403,
        "an observability token cannot retrieve"
    );
    let unauthenticated = server.post_raw("/v1/context/retrieve", None, &[], b"{}");
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(unauthenticated.json()["code"], "UNAUTHORIZED");
    assert_eq!(retrieve(&server, "wrong-token-0123456789", "acme", "eventual").status, 401);
    assert_eq!(server.get("/v1/health/context", Some(OBS_TOKEN)).status, 403);
    let health = server.get("/v1/health/context", Some(ADMIN_TOKEN));
    assert_eq!(health.status, 200, "{}", String::from_utf8_lossy(&health.body));
    let health = health.json();
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["connector_certification"]["ownership"], "write_through");
    assert_eq!(health["connector_capabilities"]["supports_write_through"], true);
}

#[test]
fn bad_requests_get_a_4xx_with_the_right_code_and_change_nothing() {
    let server = start("bad-requests");
    let scope = json!({ "tenant_id": "acme", "namespace": "support" });
    let big = "x".repeat(5 * 1024 * 1024);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("/v1/context/retrieve", b"{not json".to_vec(), 400),
        ("/v1/context/retrieve", br#"{"query_embedding": [NaN, 1, 2, 3], "scope": {"tenant_id": "acme", "namespace": "support"}}"#.to_vec(), 400),
        ("/v1/context/retrieve", br#"{"query_embedding": [1e999, 1, 2, 3], "scope": {"tenant_id": "acme", "namespace": "support"}}"#.to_vec(), 400),
        ("/v1/context/retrieve", br#"{"query_embedding": [1e39, 1, 2, 3], "scope": {"tenant_id": "acme", "namespace": "support"}}"#.to_vec(), 400),
        ("/v1/context/retrieve", json!({ "query_embedding": [1.0, 2.0, 3.0], "scope": scope }).to_string().into_bytes(), 400),
        ("/v1/context/retrieve", json!({ "query_embedding": [1.0, 2.0, 3.0, 4.0], "scope": scope, "surprise": 1 }).to_string().into_bytes(), 400),
        ("/v1/context/retrieve", json!({ "query_embedding": [1.0, 2.0, 3.0, 4.0], "scope": { "tenant_id": "", "namespace": "support" } }).to_string().into_bytes(), 400),
        ("/v1/context/retrieve", json!({ "query_embedding": [1.0, 2.0, 3.0, 4.0], "scope": { "tenant_id": " acme", "namespace": "support" } }).to_string().into_bytes(), 400),
        ("/v1/context/retrieve", json!({ "query_embedding": [1.0, 2.0, 3.0, 4.0], "scope": scope, "top_k": 0 }).to_string().into_bytes(), 400),
        ("/v1/context/retrieve", json!({ "query_embedding": [1.0, 2.0, 3.0, 4.0], "scope": scope, "top_k": 1001 }).to_string().into_bytes(), 400),
        ("/v1/context/retrieve", json!({ "query_embedding": [1.0, 2.0, 3.0, 4.0], "scope": scope, "freshness_mode": "sometimes" }).to_string().into_bytes(), 400),
        ("/v1/context/retrieve", json!({ "query_embedding": [1.0, 2.0, 3.0, 4.0], "scope": scope, "filters": { "type": "exact", "key": "undeclared", "value": "x" } }).to_string().into_bytes(), 400),
        ("/v1/context/retrieve", json!({ "query_embedding": [1.0, 2.0, 3.0, 4.0], "scope": scope, "filters": { "type": "exact", "key": "lang' OR 1=1", "value": "x" } }).to_string().into_bytes(), 400),
        ("/v1/context/retrieve", json!({ "query_embedding": [1.0, 2.0, 3.0, 4.0], "scope": scope, "filters": { "type": "range", "key": "lang" } }).to_string().into_bytes(), 400),
        ("/v1/context/retrieve", json!({ "query_embedding": [1.0, 2.0, 3.0, 4.0], "scope": scope, "required_generation": 0 }).to_string().into_bytes(), 400),
        ("/v1/context/retrieve", format!("{{\"query_embedding\": [1,2,3,4], \"scope\": {scope}, \"query_text\": \"{big}\"}}").into_bytes(), 413),
        ("/v1/events/change", json!({ "target": { "type": "document", "doc_id": "d" }, "change_type": "content_updated", "source_event_id": "e" }).to_string().into_bytes(), 400),
        ("/v1/events/change", json!({ "target": { "type": "all" }, "change_type": "exploded", "source_event_id": "e" }).to_string().into_bytes(), 400),
        ("/v1/events/change", json!({ "target": { "type": "all" }, "change_type": "deleted", "source_event_id": "" }).to_string().into_bytes(), 400),
        ("/v1/events/change", json!({ "target": { "type": "all" }, "change_type": "deleted", "source_event_id": "e", "timestamp": "yesterday" }).to_string().into_bytes(), 400),
        ("/v1/documents/upsert", json!({ "scope": scope, "document": { "id": "d", "embedding": [1.0, 2.0] } }).to_string().into_bytes(), 400),
        ("/v1/documents/upsert", json!({ "scope": scope, "document": { "id": "d", "metadata": { "bad key": "v" } } }).to_string().into_bytes(), 400),
        ("/v1/documents/delete", json!({ "scope": scope, "id": "x".repeat(1025) }).to_string().into_bytes(), 400),
        ("/v1/context/invalidate", json!({ "target": { "type": "all" }, "unknown": 1 }).to_string().into_bytes(), 400),
    ];
    for (path, body, status) in cases {
        let response = server.post_raw(path, Some(DATA_TOKEN), &[], &body);
        let preview = String::from_utf8_lossy(&body[..body.len().min(160)]).into_owned();
        assert_eq!(
            response.status,
            status,
            "{path} {preview}: {}",
            String::from_utf8_lossy(&response.body)
        );
        let error = response.json();
        assert!(
            error["error"].is_string() && error["code"] == "VALIDATION_FAILED",
            "{path} {preview}: {error}"
        );
    }
    let bad_key = server.post_raw(
        "/v1/context/retrieve",
        Some(DATA_TOKEN),
        &[("Idempotency-Key", "has space")],
        b"{}",
    );
    assert_eq!(bad_key.status, 400);
    assert_eq!(server.get("/v1/no/such/route", Some(DATA_TOKEN)).status, 404);
    // None of it changed the ledger.
    let health = server.get("/v1/health/context", Some(ADMIN_TOKEN)).json();
    assert_eq!(health["freshness_generation"], 0, "{health}");
}

#[test]
fn the_ledger_survives_kill_9_with_its_generation_intact() {
    let dir = temp_dir("kill-9");
    let config_text = config("development", &memory_store("mem", Defect::None, "[\"*\"]"));
    let server = KyroServer::start(&dir, &config_text).unwrap();
    let mut last = 0;
    for idx in 0..20 {
        let ack = server.post(
            "/v1/events/change",
            DATA_TOKEN,
            &json!({ "target": { "type": "tenant", "tenant_id": "acme" }, "change_type": "metadata_updated", "scope": {}, "source_event_id": format!("evt-{idx}") }),
        );
        last = ack.json()["generation"].as_u64().unwrap();
    }
    assert_eq!(last, 20);
    let address = server.address;
    server.kill();
    let restarted = KyroServer::start_existing(&dir, address).unwrap();
    let replay = restarted.post(
        "/v1/events/change",
        DATA_TOKEN,
        &json!({ "target": { "type": "tenant", "tenant_id": "acme" }, "change_type": "metadata_updated", "scope": {}, "source_event_id": "evt-7" }),
    );
    assert_eq!(
        replay.json()["generation"],
        8,
        "a replay after the crash returns the original generation"
    );
    let next = restarted.post(
        "/v1/events/change",
        DATA_TOKEN,
        &json!({ "target": { "type": "all" }, "change_type": "connector_resynced", "scope": {}, "source_event_id": "after-crash" }),
    );
    assert_eq!(next.json()["generation"], 21, "the generation never goes backwards");
    assert!(restarted.terminate(), "SIGTERM shuts down gracefully with exit status 0");
}

#[test]
fn a_store_that_fails_certification_is_not_served_and_the_runtime_health_says_why() {
    let stores = memory_store("good", Defect::None, "[\"support\"]")
        + &memory_store("broken", Defect::IgnoresNamespace, "[\"broken\"]");
    let server =
        KyroServer::start(&temp_dir("refused-store"), &config("development", &stores)).unwrap();
    assert!(server.startup_output.contains("REFUSED"), "{}", server.startup_output);
    let ready = server.get("/readyz", None);
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json(), json!({ "ready": false }), "readiness tells nothing more");
    let health = server.get("/v1/runtime/health", Some(ADMIN_TOKEN)).json();
    let broken = health["stores"].as_array().unwrap().iter().find(|store| store["id"] == "broken");
    let broken = broken.unwrap_or_else(|| panic!("{health}"));
    assert_eq!(broken["state"], "refused");
    assert!(
        broken["reason"].as_str().unwrap().contains("scope.search_excludes_other_namespace"),
        "{health}"
    );
    assert_eq!(server.get("/healthz", None).status, 200);
    let refused = server.post(
        "/v1/context/retrieve",
        DATA_TOKEN,
        &json!({ "query_embedding": [1.0, 0.0, 0.0, 0.0], "scope": { "tenant_id": "acme", "namespace": "broken" } }),
    );
    assert_eq!(refused.status, 503);
    assert_eq!(refused.json()["code"], "STORE_NOT_CERTIFIED");
    assert_eq!(
        retrieve(&server, DATA_TOKEN, "acme", "eventual").status,
        200,
        "the certified store still serves"
    );

    // In production mode a refused store stops startup, naming the reason.
    let failed = KyroServer::start(&temp_dir("refused-production"), &config("production", &stores));
    let output = failed.err().expect("production startup must fail");
    assert!(output.contains("production mode refuses") && output.contains("broken"), "{output}");
}

/// A strict read: when it began (µs since the test started) and the revision it saw per document.
type Read = (u128, BTreeMap<String, u64>);

/// Writers upsert increasing revisions while strict readers retrieve; afterwards a checker
/// verifies that no strict read returned a revision older than one acknowledged before it began.
#[test]
fn concurrent_writers_and_strict_readers_never_see_an_acknowledged_change_undone() {
    let server = Arc::new(start("concurrency"));
    let started = Instant::now();
    // (doc, revision, acknowledged at µs since start)
    let acks: Arc<Mutex<Vec<(String, u64, u128)>>> = Arc::new(Mutex::new(Vec::new()));
    let reads: Arc<Mutex<Vec<Read>>> = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for writer in 0..2 {
        let (server, acks) = (Arc::clone(&server), Arc::clone(&acks));
        workers.push(std::thread::spawn(move || {
            for revision in 1..=25_u64 {
                let doc = format!("doc-{writer}");
                let vector = if writer == 0 { [1.0, 0.1, 0.0, 0.0] } else { [0.9, 0.0, 0.2, 0.0] };
                upsert(
                    &server,
                    "acme",
                    &doc,
                    vector,
                    &format!("{doc} r{revision}"),
                    &revision.to_string(),
                );
                acks.lock().unwrap().push((doc, revision, started.elapsed().as_micros()));
            }
        }));
    }
    for _ in 0..2 {
        let (server, reads) = (Arc::clone(&server), Arc::clone(&reads));
        workers.push(std::thread::spawn(move || {
            for _ in 0..40 {
                let began = started.elapsed().as_micros();
                let packet = retrieve(&server, DATA_TOKEN, "acme", "strict").json();
                let seen = packet["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|item| {
                        (
                            item["id"].as_str().unwrap().to_owned(),
                            item["provenance"]["doc_revision"].as_str().unwrap().parse().unwrap(),
                        )
                    })
                    .collect();
                reads.lock().unwrap().push((began, seen));
            }
        }));
    }
    for worker in workers {
        worker.join().unwrap();
    }
    let acks = acks.lock().unwrap();
    let reads = reads.lock().unwrap();
    assert_eq!(acks.len(), 50);
    assert_eq!(reads.len(), 80);
    let mut violations = Vec::new();
    for (began, seen) in reads.iter() {
        for (doc, revision) in seen {
            let acknowledged = acks
                .iter()
                .filter(|(ack_doc, _, at)| ack_doc == doc && at < began)
                .map(|(_, rev, _)| *rev)
                .max();
            if let Some(acknowledged) = acknowledged
                && *revision < acknowledged
            {
                violations.push(format!("read at {began}µs saw {doc} r{revision}, but r{acknowledged} was acknowledged before"));
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(reads.iter().any(|(_, seen)| !seen.is_empty()), "the readers saw documents");
}

/// The ids a packet served, in order.
fn served_ids(packet: &Value) -> Vec<String> {
    packet["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A document written into the namespace may belong in any cached answer there, not only in
/// those that held it: a strict read after its ACK never reuses an answer that predates it.
/// Deleting a document that no cached answer holds leaves those answers reusable.
#[test]
fn a_new_document_is_never_missing_from_a_strict_answer_after_its_ack() {
    let server = start("new-document");
    upsert(&server, "acme", "far", [0.0, 1.0, 0.0, 0.0], "far away", "1");
    let first = retrieve(&server, DATA_TOKEN, "acme", "strict").json();
    assert_eq!(served_ids(&first), ["far"]);
    let again = retrieve(&server, DATA_TOKEN, "acme", "strict").json();
    assert_eq!(again["meta"]["execution_path"], "context_reuse_hit", "{again}");

    // A new document, nearest to the query: the cached answer does not hold it.
    let ack = upsert(&server, "acme", "near", [1.0, 0.0, 0.0, 0.0], "right here", "1");
    assert!(ack["entries_invalidated"].as_u64().unwrap() >= 1, "{ack}");
    let after = retrieve(&server, DATA_TOKEN, "acme", "strict").json();
    assert_eq!(after["meta"]["execution_path"], "backend_fetch", "{after}");
    assert_eq!(served_ids(&after), ["near", "far"]);

    // Deleting a document no answer holds: the cached answer is still exact, and reused.
    upsert(&server, "acme", "other", [0.0, 0.0, 1.0, 0.0], "elsewhere", "1");
    let cached = retrieve(&server, DATA_TOKEN, "acme", "strict").json();
    assert_eq!(served_ids(&cached), ["near", "far", "other"]);
    let gone = server.post(
        "/v1/documents/delete",
        DATA_TOKEN,
        &json!({ "scope": { "tenant_id": "acme", "namespace": "support" }, "id": "unknown-doc" }),
    );
    assert_eq!(gone.status, 200, "{}", String::from_utf8_lossy(&gone.body));
    let reused = retrieve(&server, DATA_TOKEN, "acme", "strict").json();
    assert_eq!(reused["meta"]["execution_path"], "context_reuse_hit", "{reused}");
    assert_eq!(served_ids(&reused), ["near", "far", "other"]);
}
