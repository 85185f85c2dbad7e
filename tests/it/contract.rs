//! The published Runtime API v1, exactly (issue #13): every answer of `kyro serve` validated
//! against the pinned OpenAPI document (`kyro_e2e::contract`).
//!
//! Three groups, each its own section below:
//! - the validator itself: right answers pass, deliberately wrong ones fail, each for its reason;
//! - routes: every route of the contract, for success and for each error class it can answer
//!   (400, 401, 403, 404, 409, 413, 503), each provoked for real, each answer checked against the
//!   schema the contract names for its status;
//! - the request corpus: bodies the contract's schemas refuse must get a 4xx with the error
//!   envelope, never a 2xx or a 5xx.
//!
//! Each test lists every mismatch it found rather than stopping at the first, so one run shows
//! all of a route's gaps.

use std::collections::BTreeMap;

use kyro_e2e::contract::{Contract, Findings, request_corpus, snippet};
use kyro_e2e::http::HttpResponse;
use kyro_e2e::postgres::Database;
use kyro_e2e::replay::run_report;
use kyro_e2e::server::{
    ACME_ADMIN_TOKEN, ACME_DATA_TOKEN, ACME_OBS_TOKEN, ADMIN_TOKEN, DATA_TOKEN, KyroServer,
    OBS_TOKEN, tokens_section,
};
use kyro_e2e::{fixture_package, plugin_path, temp_dir};
use kyro_fixture_support::Defect;
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

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

/// A `kyro serve` over the reference store (write-through, namespace `support` only) with its
/// state in a PostgreSQL database of its own, so a test can break an evidence table under it.
struct Host {
    server: KyroServer,
    database: Database,
}

impl Host {
    /// Starts a host; `extra` is added to the top level of its `kyro.toml`.
    fn start(name: &str, extra: &str) -> Self {
        let database = Database::create(&format!("contract_{name}"));
        let config = format!(
            "listen = \"{{listen}}\"\nmode = \"development\"\ndefault_freshness = \"balanced\"\nstate = \"{}\"\n{extra}\n{}\n\
             [[stores]]\nid = \"mem\"\nplugin = \"{}\"\nownership_mode = \"write_through\"\nnamespaces = [\"support\"]\n\
             [stores.config]\ndimension = 4\ndistance = \"cosine\"\nfilterable_keys = [\"lang\", \"year\", \"product\"]\n",
            database.url(),
            tokens_section(),
            plugin_path(&fixture_package(Defect::None)).display()
        );
        let server = KyroServer::start(&temp_dir(&format!("contract-{name}")), &config).unwrap();
        Self { server, database }
    }

    fn post(&self, path: &str, token: &str, body: &Value) -> HttpResponse {
        self.server.post_raw(path, Some(token), &[], body.to_string().as_bytes())
    }

    /// Upserts `id` for `tenant` in `support` and retrieves it; returns the retrieve's trace id.
    fn seed(&self, tenant: &str, id: &str) -> String {
        let upsert = self.post("/v1/documents/upsert", DATA_TOKEN, &upsert_body(tenant, id));
        assert_eq!(upsert.status, 200, "seeding upsert: {}", snippet(&upsert.body));
        let packet = self.post("/v1/context/retrieve", DATA_TOKEN, &retrieve_body(tenant));
        assert_eq!(packet.status, 200, "seeding retrieve: {}", snippet(&packet.body));
        packet.json()["trace_id"].as_str().expect("a packet names its trace").to_owned()
    }

    /// A strict retrieve for `tenant` that cannot be proven fresh (generation 999 required).
    fn blocked_retrieve(&self, tenant: &str) -> String {
        let mut body = retrieve_body(tenant);
        body["freshness_mode"] = json!("strict");
        body["required_generation"] = json!(999);
        body["filters"] = json!({ "type": "exact", "key": "lang", "value": "en" });
        self.retrieve_trace(&body)
    }

    /// Retrieves `body`; returns the packet's trace id.
    fn retrieve_trace(&self, body: &Value) -> String {
        let packet = self.post("/v1/context/retrieve", DATA_TOKEN, body);
        assert_eq!(packet.status, 200, "retrieve: {}", snippet(&packet.body));
        packet.json()["trace_id"].as_str().expect("a packet names its trace").to_owned()
    }

    /// Takes the trace table away and sends a retrieve, whose failed write marks trace and
    /// capture evidence unhealthy.
    fn break_trace_evidence(&self) {
        self.database.break_table("kyro_trace");
        let failed = self.post("/v1/context/retrieve", DATA_TOKEN, &retrieve_body("acme"));
        assert_eq!(failed.status, 503, "a retrieve whose trace fails: {}", snippet(&failed.body));
    }

    /// The live capture export, as an admin reads it.
    fn capture(&self) -> Value {
        let capture = self.server.get("/v1/replay/capture?recent=50", Some(ADMIN_TOKEN));
        assert_eq!(capture.status, 200, "capture export: {}", snippet(&capture.body));
        capture.json()
    }

    /// A shadow session that refuses connector mutations.
    fn shadow_session(&self) -> Option<String> {
        let request = json!({ "schema_version": 1, "replay_primer": { "current_generation": 0 } });
        let created = self.post("/v1/replay/shadow-sessions", ADMIN_TOKEN, &request);
        let body: Value = serde_json::from_slice(&created.body).ok()?;
        (created.status == 200).then(|| body["session_id"].as_str().map(str::to_owned)).flatten()
    }
}

/// One route of the contract on one host: sends requests, checks each answer's status and its
/// body against the schema the contract names for that status, and collects what differs.
struct RouteCheck<'a> {
    host: &'a Host,
    method: &'static str,
    template: &'static str,
    findings: Findings,
}

impl<'a> RouteCheck<'a> {
    fn new(host: &'a Host, method: &'static str, template: &'static str) -> Self {
        Self { host, method, template, findings: Findings::new(&format!("{method} {template}")) }
    }

    fn check(&mut self, case: &str, response: &HttpResponse, status: u16) -> Option<Value> {
        self.findings.expect(case, self.method, self.template, response, status)
    }

    /// POSTs `body` to the route with `token` (`None`: no Authorization header).
    fn post(
        &mut self,
        case: &str,
        token: Option<&str>,
        body: &Value,
        status: u16,
    ) -> Option<Value> {
        self.post_with(case, token, &[], body, status)
    }

    fn post_with(
        &mut self,
        case: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &Value,
        status: u16,
    ) -> Option<Value> {
        let response =
            self.host.server.post_raw(self.template, token, headers, body.to_string().as_bytes());
        self.check(case, &response, status)
    }

    /// POSTs a body one byte over the contract's 4 MiB limit.
    fn post_oversized(&mut self, token: &str) {
        let mut body = b"{\"pad\":\"".to_vec();
        body.resize(4 * 1024 * 1024 + 1, b'x');
        body.extend_from_slice(b"\"}");
        let response = self.host.server.post_raw(self.template, Some(token), &[], &body);
        self.check("body over 4 MiB", &response, 413);
    }

    /// GETs `path`, a concrete path of this route's template.
    fn get(&mut self, case: &str, path: &str, token: Option<&str>, status: u16) -> Option<Value> {
        self.get_with(case, path, token, &[], status)
    }

    fn get_with(
        &mut self,
        case: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        status: u16,
    ) -> Option<Value> {
        let response = self.host.server.get_with(path, token, headers);
        self.check(case, &response, status)
    }

    fn note(&mut self, finding: impl Into<String>) {
        self.findings.note(finding);
    }

    /// Notes when `body` (an answer that had the expected status) has no `expected` at `pointer`.
    fn expect_value(&mut self, case: &str, body: Option<&Value>, pointer: &str, expected: Value) {
        let Some(body) = body else { return };
        let actual = body.pointer(pointer).unwrap_or(&Value::Null);
        if *actual != expected {
            self.note(format!("{case}: {pointer} {expected} expected, got {actual}"));
        }
    }

    /// Takes `table` away, POSTs `body` to the route and expects a 503 with `code`.
    fn post_once_broken(&mut self, table: &str, case: &str, body: &Value, code: &str) {
        self.host.database.break_table(table);
        let failed = self.host.post(self.template, DATA_TOKEN, body);
        self.unavailable(case, &failed, code);
    }

    /// Takes `table` away, GETs `path` as an observer and expects a 503 with `code`.
    fn get_once_broken(&mut self, table: &str, case: &str, path: &str, code: &str) {
        self.host.database.break_table(table);
        let failed = self.host.server.get(path, Some(OBS_TOKEN));
        self.unavailable(case, &failed, code);
    }

    /// Takes the document ledger away and sends `body`: the store applies the write before the
    /// ledger fails, so the answer is a 503 that says the side effect was committed.
    fn ledger_fails_after_the_store_wrote(&mut self, body: &Value) {
        self.host.database.break_table("kyro_document_state");
        let case = "ledger cannot be written after the store's write";
        let failed = self.host.post(self.template, DATA_TOKEN, body);
        let failed = self.unavailable(case, &failed, "PLANNER_STATE_PERSISTENCE_FAILED");
        self.expect_value(case, failed.as_ref(), "/acknowledged", json!(true));
    }

    /// The shared refusals of a data-plane POST route: 401 without or with an unknown token, 403
    /// with another plane's token, 404 for an unknown shadow session, 400 for a malformed session
    /// id, 413 over the body limit.
    fn data_plane_refusals(&mut self, valid: &Value) {
        self.post("no token", None, valid, 401);
        self.post("unknown token", Some("no-such-token"), valid, 401);
        self.post("observability token", Some(OBS_TOKEN), valid, 403);
        self.post_with("unknown shadow session", Some(DATA_TOKEN), &[UNKNOWN_SHADOW], valid, 404);
        self.post_with("malformed shadow id", Some(DATA_TOKEN), &[MALFORMED_SHADOW], valid, 400);
        self.post_oversized(DATA_TOKEN);
    }

    /// The shared refusals of an admin POST route.
    fn admin_refusals(&mut self, valid: &Value) {
        self.post("no token", None, valid, 401);
        self.post("unknown token", Some("no-such-token"), valid, 401);
        self.post("observability token (admin plane)", Some(OBS_TOKEN), valid, 403);
        self.post("data token", Some(DATA_TOKEN), valid, 403);
        self.post("non-object body", Some(ADMIN_TOKEN), &json!([]), 400);
        self.post_oversized(ADMIN_TOKEN);
    }

    /// The shared refusals of an observability GET of `path`.
    fn observability_refusals(&mut self, path: &str) {
        self.get("no token", path, None, 401);
        self.get("unknown token", path, Some("no-such-token"), 401);
        self.get("data token", path, Some(DATA_TOKEN), 403);
    }

    /// A 503 whose code must be `code`.
    fn unavailable(&mut self, case: &str, response: &HttpResponse, code: &str) -> Option<Value> {
        let body = self.check(case, response, 503)?;
        if body["code"] != code {
            self.note(format!("{case}: code {code} expected: {body}"));
        }
        Some(body)
    }

    fn finish(self) {
        self.findings.assert_none();
    }
}

const UNKNOWN_SHADOW: (&str, &str) = ("kyro-shadow-session-id", "sh_no_such_session");
const MALFORMED_SHADOW: (&str, &str) = ("kyro-shadow-session-id", "not a session!");

fn retrieve_body(tenant: &str) -> Value {
    json!({
        "query_embedding": [1.0, 0.0, 0.0, 0.0],
        "scope": { "tenant_id": tenant, "namespace": "support" },
        "top_k": 3,
        "freshness_mode": "balanced"
    })
}

/// A retrieve with every optional field of the contract set.
fn full_retrieve_body() -> Value {
    json!({
        "query_embedding": [1.0, 0.0, 0.0, 0.0],
        "query_text": "how long do refunds take",
        "scope": {
            "tenant_id": "acme", "namespace": "support", "app_id": "helpdesk", "locale": "en-US",
            "auth_scope": ["support-agents"], "entitlement_boundary": "plan-pro",
            "embedding_model_id": "emb-1", "reranker_version": "rr-1", "prompt_template_version": "pt-1"
        },
        "filters": { "type": "and", "filters": [
            { "type": "exact", "key": "lang", "value": "en" },
            { "type": "in", "key": "product", "values": ["billing", "refunds"] },
            { "type": "range", "key": "year", "min": 2020, "max": 2030 },
            { "type": "not", "filter": { "type": "or", "filters": [
                { "type": "exact", "key": "lang", "value": "de" }
            ] } }
        ] },
        "top_k": 5,
        "freshness_mode": "strict",
        "required_generation": 1,
        "include_content": false
    })
}

fn change_event_body(source_event_id: &str) -> Value {
    json!({
        "target": { "type": "document", "doc_id": "doc-1" },
        "change_type": "content_updated",
        "scope": { "tenant_id": "acme", "namespace": "support", "connector_id": "mem" },
        "revision": "2",
        "timestamp": "2026-01-01T00:00:00Z",
        "source_event_id": source_event_id
    })
}

fn namespace_event_body(source_event_id: &str) -> Value {
    json!({
        "target": { "type": "namespace", "namespace": "support" },
        "change_type": "namespace_rebuilt",
        "scope": { "tenant_id": "acme", "namespace": "support" },
        "source_event_id": source_event_id
    })
}

fn upsert_body(tenant: &str, id: &str) -> Value {
    json!({
        "scope": { "tenant_id": tenant, "namespace": "support" },
        "document": {
            "id": id,
            "embedding": [1.0, 0.0, 0.0, 0.0],
            "content": "refunds take 14 days",
            "metadata": { "lang": "en", "year": "2026", "product": "billing" },
            "revision": "1"
        }
    })
}

fn delete_body(tenant: &str, id: &str) -> Value {
    json!({ "scope": { "tenant_id": tenant, "namespace": "support" }, "id": id })
}

/// A `ReplayRunReport` (what the SDK's replay diff takes) of a capture's observed records, or why
/// the capture's records do not make one.
fn run_report_from(capture: &Value) -> Result<Value, String> {
    let run = run_report(capture);
    Contract::pinned()
        .validate_schema("ReplayRunReport", &run)
        .map_err(|violations| violations.to_string())?;
    Ok(run)
}

fn empty_run() -> Value {
    json!({
        "generated_at": "2026-01-01T00:00:00Z", "total_steps": 0, "retrieve_steps": 0,
        "complete_count": 0, "degraded_count": 0, "stale_blocked_count": 0,
        "total_latency_ms": 0.0, "records": []
    })
}

#[test]
fn route_retrieve_context() {
    let host = Host::start("retrieve", "");
    host.seed("acme", "doc-1");
    let mut route = RouteCheck::new(&host, "POST", "/v1/context/retrieve");
    let packet = route.post("balanced retrieve", Some(DATA_TOKEN), &retrieve_body("acme"), 200);
    if let Some(packet) = packet
        && packet["items"].as_array().is_none_or(Vec::is_empty)
    {
        route.note(format!("balanced retrieve: the seeded document was not served: {packet}"));
    }
    route.post("every optional field", Some(DATA_TOKEN), &full_retrieve_body(), 200);
    let mut strict = retrieve_body("acme");
    strict["freshness_mode"] = json!("strict");
    route.post("strict retrieve", Some(DATA_TOKEN), &strict, 200);
    route.post("strict retrieve again (reuse)", Some(DATA_TOKEN), &strict, 200);
    strict["required_generation"] = json!(999);
    route.post("strict retrieve blocked", Some(DATA_TOKEN), &strict, 200);
    let mut zero = retrieve_body("acme");
    zero["top_k"] = json!(0);
    route.post("top_k 0", Some(DATA_TOKEN), &zero, 400);
    let mut short = retrieve_body("acme");
    short["query_embedding"] = json!([1.0, 0.0]);
    route.post("embedding of the wrong dimension", Some(DATA_TOKEN), &short, 400);
    // Serde reads a sequence as a struct's fields in order; the contract wants an object.
    let positional =
        json!([[1.0, 0.0, 0.0, 0.0], null, { "tenant_id": "acme", "namespace": "support" }]);
    route.post("the fields as a JSON array", Some(DATA_TOKEN), &positional, 400);
    let foreign = retrieve_body("globex");
    route.post("restricted token, another tenant", Some(ACME_DATA_TOKEN), &foreign, 403);
    let mut elsewhere = retrieve_body("acme");
    elsewhere["scope"]["namespace"] = json!("elsewhere");
    route.post("namespace no store serves", Some(DATA_TOKEN), &elsewhere, 404);
    route.data_plane_refusals(&retrieve_body("acme"));
    let case = "trace cannot be persisted";
    route.post_once_broken("kyro_trace", case, &retrieve_body("acme"), "TRACE_PERSISTENCE_FAILED");
    route.finish();
}

#[test]
fn route_invalidate_context() {
    let host = Host::start("invalidate", "");
    let mut route = RouteCheck::new(&host, "POST", "/v1/context/invalidate");
    let namespace = json!({
        "target": { "type": "namespace", "namespace": "support" },
        "tenant_id": "acme",
        "reason": "contract test"
    });
    let key = [("Idempotency-Key", "inv-1")];
    route.post_with("namespace invalidation", Some(DATA_TOKEN), &key, &namespace, 200);
    route.post_with("replayed Idempotency-Key", Some(DATA_TOKEN), &key, &namespace, 200);
    // The request has no namespace field, so a document target can only name its tenant.
    for target in [
        json!({ "type": "document", "doc_id": "doc-1" }),
        json!({ "type": "connector", "connector_id": "mem" }),
        json!({ "type": "bundle", "bundle_id": "b-1" }),
        json!({ "type": "policy", "policy_key": "p-1" }),
        json!({ "type": "tenant", "tenant_id": "acme" }),
        json!({ "type": "all" }),
    ] {
        let case = format!("{} target", target["type"]);
        route.post(&case, Some(DATA_TOKEN), &json!({ "target": target, "tenant_id": "acme" }), 200);
    }
    // Idempotency keys are the tenant's own: the same key with another body of the same tenant
    // conflicts, while another tenant's (or a tenantless) request with it is a new request.
    let other = json!({ "target": { "type": "all" }, "tenant_id": "acme" });
    route.post_with("Idempotency-Key with another body", Some(DATA_TOKEN), &key, &other, 409);
    let tenantless = json!({ "target": { "type": "all" } });
    route.post_with("the same key without a tenant", Some(DATA_TOKEN), &key, &tenantless, 200);
    let galaxy = json!({ "target": { "type": "galaxy" } });
    route.post("unknown target type", Some(DATA_TOKEN), &galaxy, 400);
    let empty_key = [("Idempotency-Key", "")];
    route.post_with("empty Idempotency-Key", Some(DATA_TOKEN), &empty_key, &namespace, 400);
    let foreign = json!({ "target": { "type": "all" }, "tenant_id": "globex" });
    route.post("restricted token, another tenant", Some(ACME_DATA_TOKEN), &foreign, 403);
    route.data_plane_refusals(&namespace);
    let code = "PLANNER_STATE_PERSISTENCE_FAILED";
    route.post_once_broken("kyro_generation", "ledger cannot be written", &other, code);
    route.finish();
}

#[test]
fn route_ingest_change_event() {
    let host = Host::start("change", "");
    let mut route = RouteCheck::new(&host, "POST", "/v1/events/change");
    let event = change_event_body("evt-1");
    route.post("document change", Some(DATA_TOKEN), &event, 200);
    let replayed = route.post("replayed source_event_id", Some(DATA_TOKEN), &event, 200);
    route.expect_value("replayed source_event_id", replayed.as_ref(), "/generation", json!(1));
    let mut extended = change_event_body("evt-2");
    extended["source_system"] = json!("billing");
    route.post("unknown top-level field (allowed here)", Some(DATA_TOKEN), &extended, 200);
    for (idx, target) in [
        json!({ "type": "namespace", "namespace": "support" }),
        json!({ "type": "connector", "connector_id": "mem" }),
        json!({ "type": "bundle", "bundle_id": "b-1" }),
        json!({ "type": "policy", "policy_key": "p-1" }),
        json!({ "type": "tenant", "tenant_id": "acme" }),
        json!({ "type": "all" }),
    ]
    .into_iter()
    .enumerate()
    {
        let mut event = change_event_body(&format!("evt-target-{idx}"));
        event["change_type"] = json!("namespace_rebuilt");
        let case = format!("{} target", target["type"]);
        event["target"] = target;
        route.post(&case, Some(DATA_TOKEN), &event, 200);
    }
    let mut conflicting = change_event_body("evt-1");
    conflicting["change_type"] = json!("deleted");
    route.post("source_event_id with another body", Some(DATA_TOKEN), &conflicting, 409);
    let mut renamed = change_event_body("evt-bad");
    renamed["change_type"] = json!("renamed");
    route.post("unknown change_type", Some(DATA_TOKEN), &renamed, 400);
    // Without its scope, a namespace event would reach the namespace of every tenant.
    let mut unscoped = namespace_event_body("evt-unscoped");
    unscoped.as_object_mut().map(|event| event.remove("scope"));
    route.post("required scope missing", Some(DATA_TOKEN), &unscoped, 400);
    let mut foreign = change_event_body("evt-foreign");
    foreign["scope"]["tenant_id"] = json!("globex");
    route.post("restricted token, another tenant", Some(ACME_DATA_TOKEN), &foreign, 403);
    route.data_plane_refusals(&change_event_body("evt-refused"));
    let (code, broken) = ("PLANNER_STATE_PERSISTENCE_FAILED", change_event_body("evt-broken"));
    route.post_once_broken("kyro_generation", "ledger cannot be written", &broken, code);
    route.finish();
}

/// Upsert and delete answer the same classes: `valid` is a body of the route's, `foreign` the
/// same for another tenant, `last` a write sent once the ledger is broken.
fn mutation_route_checks(route: &mut RouteCheck<'_>, valid: &Value, foreign: &Value, last: &Value) {
    let host = route.host;
    route.post("restricted token, another tenant", Some(ACME_DATA_TOKEN), foreign, 403);
    match host.shadow_session() {
        Some(session) => {
            let header = [("kyro-shadow-session-id", session.as_str())];
            route.post_with(
                "shadow session refusing mutations",
                Some(DATA_TOKEN),
                &header,
                valid,
                409,
            );
        }
        None => route.note("no shadow session could be created to provoke 409"),
    }
    route.data_plane_refusals(valid);
    route.ledger_fails_after_the_store_wrote(last);
}

#[test]
fn route_upsert_document() {
    let host = Host::start("upsert", "");
    let mut route = RouteCheck::new(&host, "POST", "/v1/documents/upsert");
    let inserted = route.post("insert", Some(DATA_TOKEN), &upsert_body("acme", "doc-1"), 200);
    route.expect_value("insert", inserted.as_ref(), "/outcome", json!("inserted"));
    route.expect_value("insert", inserted.as_ref(), "/mutation_ack/verified", json!(true));
    let key = [("Idempotency-Key", "up-1")];
    route.post_with("update", Some(DATA_TOKEN), &key, &upsert_body("acme", "doc-1"), 200);
    let minimal = json!({
        "scope": { "tenant_id": "acme", "namespace": "support" },
        "document": { "id": "doc-2", "embedding": [0.5, 0.5, 0.0, 0.0] }
    });
    route.post("minimal document", Some(DATA_TOKEN), &minimal, 200);
    let mut short = upsert_body("acme", "doc-3");
    short["document"]["embedding"] = json!([1.0]);
    route.post("embedding of the wrong dimension", Some(DATA_TOKEN), &short, 400);
    let mut numeric = upsert_body("acme", "doc-4");
    numeric["document"]["metadata"]["lang"] = json!(7);
    route.post("metadata value not a string", Some(DATA_TOKEN), &numeric, 400);
    let (valid, foreign) = (upsert_body("acme", "doc-1"), upsert_body("globex", "doc-1"));
    mutation_route_checks(&mut route, &valid, &foreign, &upsert_body("acme", "doc-5"));
    route.finish();
}

#[test]
fn route_delete_document() {
    let host = Host::start("delete", "");
    host.seed("acme", "doc-1");
    host.seed("acme", "doc-2");
    let mut route = RouteCheck::new(&host, "POST", "/v1/documents/delete");
    let deleted = route.post("delete", Some(DATA_TOKEN), &delete_body("acme", "doc-1"), 200);
    route.expect_value("delete", deleted.as_ref(), "/outcome", json!("deleted"));
    let missing =
        route.post("missing document", Some(DATA_TOKEN), &delete_body("acme", "gone"), 200);
    route.expect_value("missing document", missing.as_ref(), "/outcome", json!("not_found"));
    route.post("empty id", Some(DATA_TOKEN), &delete_body("acme", ""), 400);
    let (valid, foreign) = (delete_body("acme", "doc-1"), delete_body("globex", "doc-1"));
    mutation_route_checks(&mut route, &valid, &foreign, &delete_body("acme", "doc-2"));
    route.finish();
}

#[test]
fn route_record_context_feedback() {
    let host = Host::start("feedback-post", "");
    let trace_id = host.seed("acme", "doc-1");
    let globex_trace = host.seed("globex", "doc-1");
    let mut route = RouteCheck::new(&host, "POST", "/v1/context/feedback");
    let feedback = json!({
        "trace_id": trace_id, "signal": "stale", "item_ids": ["doc-1"], "comment": "policy changed"
    });
    route.post("feedback", Some(DATA_TOKEN), &feedback, 200);
    let extended = json!({ "trace_id": trace_id, "signal": "useful", "client": "agent-7" });
    route.post("extra field (allowed here)", Some(DATA_TOKEN), &extended, 200);
    let unknown = json!({ "trace_id": "tr_gone", "signal": "useful" });
    route.post("unknown trace", Some(DATA_TOKEN), &unknown, 200);
    let meh = json!({ "trace_id": trace_id, "signal": "meh" });
    route.post("unknown signal", Some(DATA_TOKEN), &meh, 400);
    let foreign = json!({ "trace_id": globex_trace, "signal": "useful" });
    route.post("restricted token, another tenant's trace", Some(ACME_DATA_TOKEN), &foreign, 403);
    route.data_plane_refusals(&feedback);
    let case = "feedback cannot be persisted";
    route.post_once_broken("kyro_feedback", case, &feedback, "FEEDBACK_PERSISTENCE_FAILED");
    route.finish();
}

#[test]
fn route_get_context_feedback() {
    let host = Host::start("feedback-get", "");
    let trace_id = host.seed("acme", "doc-1");
    let globex_trace = host.seed("globex", "doc-1");
    let feedback = json!({ "trace_id": trace_id, "signal": "useful", "item_ids": ["doc-1"], "comment": "good" });
    let stored = host.post("/v1/context/feedback", DATA_TOKEN, &feedback);
    assert_eq!(stored.status, 200, "{}", snippet(&stored.body));
    let mut route = RouteCheck::new(&host, "GET", "/v1/context/feedback/{trace_id}");
    let path = format!("/v1/context/feedback/{trace_id}");
    let listed = route.get("feedback of a trace", &path, Some(OBS_TOKEN), 200);
    if let Some(listed) = listed
        && listed.as_array().map(Vec::len) != Some(1)
    {
        route.note(format!("feedback of a trace: one entry expected: {listed}"));
    }
    route.get("admin token (may call observability)", &path, Some(ADMIN_TOKEN), 200);
    route.get("unknown trace", "/v1/context/feedback/tr_gone", Some(OBS_TOKEN), 200);
    route.get("id with surrounding space", "/v1/context/feedback/%20tr_1", Some(OBS_TOKEN), 400);
    let foreign = format!("/v1/context/feedback/{globex_trace}");
    route.get("restricted token, another tenant's trace", &foreign, Some(ACME_OBS_TOKEN), 403);
    route.get_with("unknown shadow session", &path, Some(OBS_TOKEN), &[UNKNOWN_SHADOW], 404);
    route.observability_refusals(&path);
    let code = "FEEDBACK_EVIDENCE_UNHEALTHY";
    route.get_once_broken("kyro_feedback", "feedback cannot be read", &path, code);
    route.finish();
}

/// The trace and diagnosis routes answer the same classes.
fn trace_route_checks(name: &str, template: &'static str, suffix: &str) {
    let host = Host::start(name, "");
    let trace_id = host.seed("acme", "doc-1");
    let globex_trace = host.seed("globex", "doc-1");
    let blocked_trace = host.blocked_retrieve("acme");
    let mut strict = retrieve_body("acme");
    strict["freshness_mode"] = json!("strict");
    host.retrieve_trace(&strict);
    let reused_trace = host.retrieve_trace(&strict);
    let changed = host.post("/v1/events/change", DATA_TOKEN, &change_event_body("evt-trace"));
    assert_eq!(changed.status, 200, "{}", snippet(&changed.body));
    let changed_trace = host.retrieve_trace(&strict);
    let mut route = RouteCheck::new(&host, "GET", template);
    let path = format!("/v1/traces/{trace_id}{suffix}");
    let body = route.get("a stored trace", &path, Some(OBS_TOKEN), 200);
    route.expect_value("a stored trace", body.as_ref(), "/trace_id", json!(trace_id));
    let blocked = format!("/v1/traces/{blocked_trace}{suffix}");
    route.get("a blocked strict retrieve with a filter", &blocked, Some(OBS_TOKEN), 200);
    let reused = format!("/v1/traces/{reused_trace}{suffix}");
    route.get("a strict retrieve served from reuse", &reused, Some(OBS_TOKEN), 200);
    let changed = format!("/v1/traces/{changed_trace}{suffix}");
    route.get("a strict retrieve after a change event", &changed, Some(OBS_TOKEN), 200);
    route.get("admin token (may call observability)", &path, Some(ADMIN_TOKEN), 200);
    route.get("unknown trace", &format!("/v1/traces/tr_gone{suffix}"), Some(OBS_TOKEN), 404);
    let spaced = format!("/v1/traces/%20tr_1{suffix}");
    route.get("id with surrounding space", &spaced, Some(OBS_TOKEN), 400);
    let foreign = format!("/v1/traces/{globex_trace}{suffix}");
    route.get("restricted token, another tenant's trace", &foreign, Some(ACME_OBS_TOKEN), 403);
    route.get_with("unknown shadow session", &path, Some(OBS_TOKEN), &[UNKNOWN_SHADOW], 404);
    route.observability_refusals(&path);
    let code = "TRACE_EVIDENCE_UNHEALTHY";
    route.get_once_broken("kyro_trace", "traces cannot be read", &path, code);
    route.finish();
}

#[test]
fn route_get_trace() {
    trace_route_checks("trace", "/v1/traces/{trace_id}", "");
}

#[test]
fn route_diagnose_trace() {
    trace_route_checks("diagnosis", "/v1/traces/{trace_id}/diagnosis", "/diagnosis");
}

#[test]
fn route_get_context_health() {
    let path = "/v1/health/context";
    let host = Host::start("health", "");
    host.seed("acme", "doc-1");
    let mut route = RouteCheck::new(&host, "GET", path);
    if let Some(health) = route.get("healthy runtime", path, Some(ADMIN_TOKEN), 200) {
        // What the SDK's own live tests read to decide whether write-through is certified.
        let capabilities = &health["connector_capabilities"];
        for flag in ["supports_write_through", "scoped_upsert", "scoped_delete"] {
            if capabilities[flag] != true {
                route.note(format!("connector_capabilities.{flag}: true expected: {health}"));
            }
        }
        if health["connector_certification"]["ownership"] != "write_through" {
            route.note(format!(
                "connector_certification.ownership: write_through expected: {health}"
            ));
        }
    }
    // The contract lists only 200 and 503 here; refusals still carry the error envelope.
    let findings = &mut route.findings;
    findings.expect_schema("no token", &host.server.get(path, None), 401, "ErrorResponse");
    let observability = host.server.get(path, Some(OBS_TOKEN));
    findings.expect_schema(
        "observability token (admin plane)",
        &observability,
        403,
        "ErrorResponse",
    );
    let data = host.server.get(path, Some(DATA_TOKEN));
    findings.expect_schema("data token", &data, 403, "ErrorResponse");
    host.database.break_table("kyro_generation");
    route.get("ledger unreadable", path, Some(ADMIN_TOKEN), 503);
    route.finish();
}

#[test]
fn route_get_context_proof_report() {
    let template = "/v1/proofs/context";
    let host = Host::start("proof-report", "");
    let trace_id = host.seed("acme", "doc-1");
    host.seed("globex", "doc-1");
    host.blocked_retrieve("globex");
    let stale = json!({ "trace_id": trace_id, "signal": "stale" });
    let stored = host.post("/v1/context/feedback", DATA_TOKEN, &stale);
    assert_eq!(stored.status, 200, "{}", snippet(&stored.body));
    let mut route = RouteCheck::new(&host, "GET", template);
    let recent = "/v1/proofs/context?recent=10";
    route.get("recent=10", recent, Some(OBS_TOKEN), 200);
    route.get("no recent", template, Some(OBS_TOKEN), 200);
    route.get("restricted token", recent, Some(ACME_OBS_TOKEN), 200);
    route.get("admin token (may call observability)", template, Some(ADMIN_TOKEN), 200);
    route.get("recent=0", "/v1/proofs/context?recent=0", Some(OBS_TOKEN), 400);
    route.get("recent=x", "/v1/proofs/context?recent=x", Some(OBS_TOKEN), 400);
    route.observability_refusals(recent);
    host.break_trace_evidence();
    let failed = host.server.get(recent, Some(OBS_TOKEN));
    route.unavailable("trace evidence unhealthy", &failed, "TRACE_EVIDENCE_UNHEALTHY");
    route.finish();
}

#[test]
fn route_build_proof_bundle() {
    let host = Host::start("proof-bundle", "");
    let trace_id = host.seed("acme", "doc-1");
    host.seed("globex", "doc-1");
    host.blocked_retrieve("globex");
    let irrelevant = json!({ "trace_id": trace_id, "signal": "irrelevant" });
    let stored = host.post("/v1/context/feedback", DATA_TOKEN, &irrelevant);
    assert_eq!(stored.status, 200, "{}", snippet(&stored.body));
    let capture = host.capture();
    let mut route = RouteCheck::new(&host, "POST", "/v1/proofs/bundle");
    let live = route.post("recent=10", Some(ADMIN_TOKEN), &json!({ "recent": 10 }), 200);
    let source = json!("live_capture_export");
    route.expect_value("recent=10", live.as_ref(), "/baseline_capture_source", source);
    route.post("empty request", Some(ADMIN_TOKEN), &json!({}), 200);
    route.post("restricted admin token", Some(ACME_ADMIN_TOKEN), &json!({ "recent": 10 }), 200);
    let run = run_report_from(&capture).unwrap_or_else(|reason| {
        route.note(format!("the capture's observed records are no ReplayRunReport: {reason}"));
        empty_run()
    });
    let supplied = json!({ "baseline_capture": capture, "candidate_run": run });
    let bundle = route.post("caller-supplied capture and run", Some(ADMIN_TOKEN), &supplied, 200);
    for pointer in ["/baseline_capture_source", "/candidate_run_source"] {
        let case = "caller-supplied capture and run";
        route.expect_value(case, bundle.as_ref(), pointer, json!("caller_supplied"));
    }
    route.post("recent=0", Some(ADMIN_TOKEN), &json!({ "recent": 0 }), 400);
    route.post("unknown field", Some(ADMIN_TOKEN), &json!({ "tenant_id": "acme" }), 400);
    route.admin_refusals(&json!({ "recent": 10 }));
    host.break_trace_evidence();
    let failed = host.post("/v1/proofs/bundle", ADMIN_TOKEN, &json!({ "recent": 10 }));
    route.unavailable("trace evidence unhealthy", &failed, "TRACE_EVIDENCE_UNHEALTHY");
    route.finish();
}

#[test]
fn route_build_root_cause_report() {
    let host = Host::start("root-cause", "");
    let trace_id = host.seed("acme", "doc-1");
    host.blocked_retrieve("globex");
    let mut route = RouteCheck::new(&host, "POST", "/v1/root-cause/report");
    route.post("empty request", Some(ADMIN_TOKEN), &json!({}), 200);
    let every = json!({ "recent": 10, "max_incidents": 5, "include_non_stale": true });
    route.post("every field", Some(ADMIN_TOKEN), &every, 200);
    let one = json!({ "trace_id": trace_id, "include_non_stale": true });
    route.post("one trace", Some(ADMIN_TOKEN), &one, 200);
    route.post("restricted admin token", Some(ACME_ADMIN_TOKEN), &json!({ "recent": 10 }), 200);
    route.post("max_incidents 0", Some(ADMIN_TOKEN), &json!({ "max_incidents": 0 }), 400);
    route.post("unknown trace", Some(ADMIN_TOKEN), &json!({ "trace_id": "tr_gone" }), 404);
    route.admin_refusals(&json!({ "recent": 10 }));
    host.break_trace_evidence();
    let failed = host.post("/v1/root-cause/report", ADMIN_TOKEN, &json!({}));
    route.unavailable("trace evidence unhealthy", &failed, "TRACE_EVIDENCE_UNHEALTHY");
    route.finish();
}

#[test]
fn route_diff_replay_runs() {
    let host = Host::start("diff", "");
    host.seed("acme", "doc-1");
    let capture = host.capture();
    let mut route = RouteCheck::new(&host, "POST", "/v1/replay/diff");
    let run = run_report_from(&capture).unwrap_or_else(|reason| {
        route.note(format!("the capture's observed records are no ReplayRunReport: {reason}"));
        empty_run()
    });
    let empty = json!({ "baseline": empty_run(), "candidate": empty_run() });
    let diff = route.post("two empty runs (the SDK's live test)", Some(ADMIN_TOKEN), &empty, 200);
    route.expect_value("two empty runs", diff.as_ref(), "/compared_steps", json!(0));
    let same = json!({ "baseline": run, "candidate": run });
    let diff = route.post("a run against itself", Some(ADMIN_TOKEN), &same, 200);
    if let Some(diff) = diff
        && (diff["compared_steps"] != run["total_steps"] || diff["changed_steps"] != 0)
    {
        route.note(format!(
            "a run against itself: all steps compared, none changed expected: {diff}"
        ));
    }
    route.admin_refusals(&empty);
    route.finish();
}

#[test]
fn route_run_counterfactual_replay() {
    let host = Host::start("counterfactual", "");
    host.seed("acme", "doc-1");
    let changed = host.post("/v1/events/change", DATA_TOKEN, &change_event_body("evt-cf"));
    assert_eq!(changed.status, 200, "{}", snippet(&changed.body));
    let mut strict = retrieve_body("acme");
    strict["freshness_mode"] = json!("strict");
    let retrieved = host.post("/v1/context/retrieve", DATA_TOKEN, &strict);
    assert_eq!(retrieved.status, 200, "{}", snippet(&retrieved.body));
    let capture = host.capture();
    let mut route = RouteCheck::new(&host, "POST", "/v1/replay/counterfactual");
    let first = capture["steps"][0]["observed_record"]["step_index"].as_u64().unwrap_or(0);
    let dropped = json!({ "capture": capture, "scenario": {
        "name": "drop the first step",
        "interventions": [{ "type": "drop_step", "step_index": first }]
    } });
    let result =
        route.post("drop the first step (the SDK's body)", Some(ADMIN_TOKEN), &dropped, 200);
    route.expect_value("drop the first step", result.as_ref(), "/intervention_count", json!(1));
    let moved = json!({ "capture": capture, "scenario": {
        "name": "move the first step after the second",
        "interventions": [{ "type": "move_step_after", "step_index": first, "after_step_index": first + 1 }]
    } });
    route.post("move a step after another", Some(ADMIN_TOKEN), &moved, 200);
    let exploded = json!({ "capture": capture, "scenario": {
        "name": "unknown", "interventions": [{ "type": "explode", "step_index": first }]
    } });
    route.post("unknown intervention", Some(ADMIN_TOKEN), &exploded, 400);
    route.admin_refusals(&dropped);
    route.finish();
}

#[test]
fn route_create_shadow_session() {
    let host = Host::start("shadow", "max_shadow_sessions = 2");
    host.seed("acme", "doc-1");
    let capture = host.capture();
    let mut route = RouteCheck::new(&host, "POST", "/v1/replay/shadow-sessions");
    let primer = capture.get("replay_primer").cloned().unwrap_or_else(|| {
        route.note("the capture export carries no replay_primer");
        json!({ "current_generation": 0 })
    });
    let request =
        json!({ "schema_version": 1, "replay_primer": primer, "allow_connector_mutations": false });
    let created = route.post("primer from the capture", Some(ADMIN_TOKEN), &request, 200);
    if let Some(session) = created.as_ref().and_then(|created| created["session_id"].as_str()) {
        let header = [("kyro-shadow-session-id", session)];
        let retrieve = host.server.post_raw(
            "/v1/context/retrieve",
            Some(DATA_TOKEN),
            &header,
            retrieve_body("acme").to_string().as_bytes(),
        );
        let findings = &mut route.findings;
        findings.expect(
            "retrieve in the shadow session",
            "POST",
            "/v1/context/retrieve",
            &retrieve,
            200,
        );
    }
    let empty = json!({ "schema_version": 1, "replay_primer": {} });
    route.post("empty primer (every field has a default)", Some(ADMIN_TOKEN), &empty, 200);
    // Fill the two slots with a primer the host takes today, whatever the cases above created.
    let zero = json!({ "schema_version": 1, "replay_primer": { "current_generation": 0 } });
    let mut answer = host.post("/v1/replay/shadow-sessions", ADMIN_TOKEN, &zero);
    for _ in 0..2 {
        if answer.status != 200 {
            break;
        }
        answer = host.post("/v1/replay/shadow-sessions", ADMIN_TOKEN, &zero);
    }
    route.unavailable("every session slot taken", &answer, "GATEWAY_OVERLOADED");
    let two = json!({ "schema_version": 2, "replay_primer": {} });
    route.post("schema_version 2", Some(ADMIN_TOKEN), &two, 400);
    let mutations =
        json!({ "schema_version": 1, "replay_primer": {}, "allow_connector_mutations": true });
    route.post("connector mutations asked for", Some(ADMIN_TOKEN), &mutations, 400);
    route.admin_refusals(&empty);
    route.finish();
}

#[test]
fn route_export_replay_capture() {
    let template = "/v1/replay/capture";
    let host = Host::start("capture", "");
    host.seed("acme", "doc-1");
    let changed = host.post("/v1/events/change", DATA_TOKEN, &change_event_body("evt-capture"));
    assert_eq!(changed.status, 200, "{}", snippet(&changed.body));
    host.seed("acme", "doc-2");
    let mut route = RouteCheck::new(&host, "GET", template);
    for recent in [50, 2] {
        let case = format!("recent={recent}");
        let path = format!("{template}?recent={recent}");
        let Some(capture) = route.get(&case, &path, Some(ADMIN_TOKEN), 200) else { continue };
        let first = &capture["steps"][0]["pre_step_replay_primer"];
        let top = &capture["replay_primer"];
        // The SDK refuses an export whose top-level primer is not its first step's.
        if !top.is_null() && !first.is_null() && top != first {
            route.note(format!(
                "{case}: replay_primer {top} differs from steps[0].pre_step_replay_primer {first}"
            ));
        }
    }
    route.get("no recent", template, Some(ADMIN_TOKEN), 200);
    route.get("recent=0", "/v1/replay/capture?recent=0", Some(ADMIN_TOKEN), 400);
    route.get("no token", template, None, 401);
    route.get("observability token (admin plane)", template, Some(OBS_TOKEN), 403);
    route.get("data token", template, Some(DATA_TOKEN), 403);
    host.break_trace_evidence();
    let failed = host.server.get(template, Some(ADMIN_TOKEN));
    route.unavailable("capture evidence unhealthy", &failed, "REPLAY_CAPTURE_EVIDENCE_UNHEALTHY");
    route.finish();
    let off = Host::start("capture-off", "capture_max_steps = 0");
    let mut route = RouteCheck::new(&off, "GET", template);
    route.get("capture turned off", template, Some(ADMIN_TOKEN), 409);
    route.finish();
}

/// Every route of the contract has a route test above: a route added to the document fails here.
#[test]
fn every_contract_route_has_a_route_test() {
    let tested = [
        "retrieveContext",
        "invalidateContext",
        "ingestChangeEvent",
        "upsertDocument",
        "deleteDocument",
        "recordContextFeedback",
        "getContextFeedback",
        "getTrace",
        "diagnoseTrace",
        "getContextHealth",
        "getContextProofReport",
        "buildProofBundle",
        "buildRootCauseReport",
        "diffReplayRuns",
        "runCounterfactualReplay",
        "createShadowSession",
        "exportReplayCapture",
    ];
    let untested: Vec<String> = Contract::pinned()
        .operations()
        .into_iter()
        .map(|operation| operation.operation_id)
        .filter(|id| !tested.contains(&id.as_str()))
        .collect();
    assert!(untested.is_empty(), "contract routes without a route test: {untested:?}");
}

// ---------------------------------------------------------------------------------------------
// The request corpus
// ---------------------------------------------------------------------------------------------

/// The most corpus requests one run sends: the corpus is derived from the schemas, and this
/// keeps a schema that grows from turning the test into a load test.
const MAX_CORPUS_CASES: usize = 4000;

/// The source event id the corpus replaces with a fresh one in each change event, so a body the
/// host wrongly accepts cannot make a later one look like a replay (409).
const CORPUS_EVENT_ID: &str = "corpus-event";

/// A valid body of each request schema (two where a union or an optional artifact matters),
/// with the token of the route's plane.
fn corpus_bases(
    trace_id: &str,
    capture: &Value,
    run: &Value,
) -> Vec<(&'static str, &'static str, Value)> {
    let first_step = capture["steps"][0]["observed_record"]["step_index"].as_u64().unwrap_or(0);
    vec![
        ("/v1/context/retrieve", DATA_TOKEN, full_retrieve_body()),
        (
            "/v1/context/invalidate",
            DATA_TOKEN,
            json!({ "target": { "type": "namespace", "namespace": "support" }, "tenant_id": "acme", "reason": "corpus" }),
        ),
        (
            "/v1/context/invalidate",
            DATA_TOKEN,
            json!({ "target": { "type": "connector", "connector_id": "mem" } }),
        ),
        ("/v1/events/change", DATA_TOKEN, change_event_body(CORPUS_EVENT_ID)),
        ("/v1/events/change", DATA_TOKEN, namespace_event_body(CORPUS_EVENT_ID)),
        ("/v1/documents/upsert", DATA_TOKEN, upsert_body("acme", "corpus-doc")),
        ("/v1/documents/delete", DATA_TOKEN, delete_body("acme", "corpus-doc")),
        (
            "/v1/context/feedback",
            DATA_TOKEN,
            json!({ "trace_id": trace_id, "signal": "useful", "item_ids": ["doc-1"], "comment": "corpus" }),
        ),
        ("/v1/proofs/bundle", ADMIN_TOKEN, json!({ "recent": 10 })),
        (
            "/v1/proofs/bundle",
            ADMIN_TOKEN,
            json!({ "baseline_capture": capture, "candidate_run": run }),
        ),
        (
            "/v1/root-cause/report",
            ADMIN_TOKEN,
            json!({ "recent": 10, "trace_id": trace_id, "max_incidents": 5, "include_non_stale": true }),
        ),
        ("/v1/replay/diff", ADMIN_TOKEN, json!({ "baseline": run, "candidate": run })),
        (
            "/v1/replay/counterfactual",
            ADMIN_TOKEN,
            json!({ "capture": capture, "scenario": { "name": "corpus",
                    "interventions": [{ "type": "drop_step", "step_index": first_step }] } }),
        ),
        (
            "/v1/replay/shadow-sessions",
            ADMIN_TOKEN,
            json!({ "schema_version": 1, "allow_connector_mutations": false, "replay_primer": {
                "current_generation": 0, "scope_generations": [], "processed_change_events": [] } }),
        ),
    ]
}

/// The corpus generator keeps exactly the derived bodies the schema refuses.
#[test]
fn the_corpus_holds_exactly_what_the_schema_refuses() {
    let contract = Contract::pinned();
    let valid = json!({ "schema_version": 1, "replay_primer": { "current_generation": 2 } });
    let cases = request_corpus(contract, "POST", "/v1/replay/shadow-sessions", &valid);
    let descriptions: Vec<&str> = cases.iter().map(|case| case.description.as_str()).collect();
    for expected in [
        "non-object body: an array",
        "non-object body: empty",
        "non-object body: invalid JSON",
        "remove /schema_version",
        "/schema_version = null",
        "/schema_version = a string",
        "/replay_primer = an empty array",
        "/replay_primer/current_generation = a fractional number",
        "unknown field kyro_corpus_unknown_field in the root object",
        "unknown field kyro_corpus_unknown_field in /replay_primer",
    ] {
        assert!(descriptions.contains(&expected), "{expected:?} missing from {descriptions:#?}");
    }
    // Bodies the schema accepts are not in the corpus: the primer's fields all have defaults.
    for accepted in [
        "remove /replay_primer/current_generation",
        "/replay_primer/current_generation = the integer 0",
    ] {
        assert!(!descriptions.contains(&accepted), "{accepted:?} is valid, yet in the corpus");
    }
    for case in &cases {
        if let Some(value) = &case.value {
            let refused = contract.validate_request("POST", "/v1/replay/shadow-sessions", value);
            assert!(refused.is_err(), "{} is valid, yet in the corpus", case.description);
        }
    }
}

/// What the host answered to the corpus, by route and kind of wrong answer.
#[derive(Default)]
struct CorpusReport {
    n_sent: usize,
    /// Route -> lines, for valid bodies that were refused.
    refused_valid: BTreeMap<&'static str, Vec<String>>,
    /// Route -> lines, for forbidden bodies that got a 2xx.
    accepted: BTreeMap<&'static str, Vec<String>>,
    /// Route -> lines, for forbidden bodies that got a 5xx or another non-4xx status.
    not_client_error: BTreeMap<&'static str, Vec<String>>,
    /// Route -> lines, for 4xx answers whose body is not the error envelope.
    bad_envelope: BTreeMap<&'static str, Vec<String>>,
}

impl CorpusReport {
    fn render(&self) -> String {
        let mut text = String::new();
        for (title, groups) in [
            ("valid bodies refused", &self.refused_valid),
            ("forbidden bodies accepted (2xx)", &self.accepted),
            ("forbidden bodies answered with a 5xx or a non-4xx status", &self.not_client_error),
            ("4xx answers without the error envelope", &self.bad_envelope),
        ] {
            let n_lines: usize = groups.values().map(Vec::len).sum();
            if n_lines == 0 {
                continue;
            }
            text.push_str(&format!("\n{title}: {n_lines}\n"));
            for (route, lines) in groups {
                text.push_str(&format!("  POST {route}: {}\n", lines.len()));
                for line in lines {
                    text.push_str(&format!("    - {line}\n"));
                }
            }
        }
        text
    }
}

/// Bodies the contract's request schemas refuse, derived from valid ones (every field removed,
/// every field given each wrong JSON type and null, an unknown field in every object, non-object
/// bodies), each sent once: every answer must be a 4xx with the error envelope.
#[test]
fn forbidden_request_bodies_get_a_4xx_with_the_error_envelope() {
    let contract = Contract::pinned();
    let host = Host::start("corpus", "max_shadow_sessions = 500");
    let trace_id = host.seed("acme", "doc-1");
    let corpus_doc =
        host.post("/v1/documents/upsert", DATA_TOKEN, &upsert_body("acme", "corpus-doc"));
    assert_eq!(corpus_doc.status, 200, "{}", snippet(&corpus_doc.body));
    let capture = host.capture();
    let run = run_report_from(&capture).unwrap_or_else(|_| empty_run());
    let bases = corpus_bases(&trace_id, &capture, &run);
    let mut report = CorpusReport::default();
    let mut n_events = 0_usize;
    let started = std::time::Instant::now();
    for (base_idx, (path, token, valid)) in bases.iter().enumerate() {
        let cases = request_corpus(contract, "POST", path, valid);
        assert!(
            report.n_sent + cases.len() <= MAX_CORPUS_CASES,
            "the corpus grew past {MAX_CORPUS_CASES} requests; bound it in kyro_e2e::contract::request_corpus"
        );
        for case in cases {
            let mut body = case.body;
            if let Some(mut value) =
                case.value.filter(|value| value["source_event_id"] == CORPUS_EVENT_ID)
            {
                n_events += 1;
                value["source_event_id"] = json!(format!("corpus-event-{n_events}"));
                body = value.to_string().into_bytes();
            }
            report.n_sent += 1;
            let response = host.server.post_raw(path, Some(token), &[], &body);
            let line =
                format!("{}: {} {}", case.description, response.status, snippet(&response.body));
            match response.status {
                400..=499 => {
                    let envelope = serde_json::from_slice::<Value>(&response.body)
                        .map_err(|err| err.to_string())
                        .and_then(|body| {
                            contract
                                .validate_response("POST", path, response.status, &body)
                                .map_err(|violations| violations.to_string())
                        });
                    if let Err(reason) = envelope {
                        report
                            .bad_envelope
                            .entry(path)
                            .or_default()
                            .push(format!("{line}: {reason}"));
                    }
                }
                200..=299 => report.accepted.entry(path).or_default().push(line),
                _ => report.not_client_error.entry(path).or_default().push(line),
            }
        }
        // The valid body last, so the forbidden ones met the same state.
        let mut valid = valid.clone();
        if valid["source_event_id"] == CORPUS_EVENT_ID {
            valid["source_event_id"] = json!(format!("corpus-event-valid-{base_idx}"));
        }
        let response = host.server.post_raw(path, Some(token), &[], valid.to_string().as_bytes());
        report.n_sent += 1;
        if !(200..=299).contains(&response.status) {
            let line = format!("{}: {}", response.status, snippet(&response.body));
            report.refused_valid.entry(path).or_default().push(line);
        }
    }
    let rendered = report.render();
    assert!(
        rendered.is_empty(),
        "{} corpus requests in {:.1} s, of which these do not match the contract:{rendered}",
        report.n_sent,
        started.elapsed().as_secs_f64()
    );
}
