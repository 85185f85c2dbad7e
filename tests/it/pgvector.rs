//! The pgvector connector behind the real `kyro`: certified by `kyro certify` for both ownership
//! profiles against the live PostgreSQL (reports kept under `target/test-artifacts/`), and served
//! by `kyro serve` with write-through mutations and with change events over external writes.

use std::process::Command;

use kyro_e2e::postgres::{Database, database_url, psql};
use kyro_e2e::server::{DATA_TOKEN, KyroServer, tokens_section};
use kyro_e2e::{kyro_binary, plugin_path, profile_dir, temp_dir};
use serde_json::{Value, json};

/// Creates a fresh table from the example schema, with 4-dimensional vectors.
pub(crate) fn create_table(name: &str) -> String {
    let table = format!("kyro_e2e_{name}_{}", std::process::id());
    let schema = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/pgvector-live/schema.sql"
    ))
    .unwrap()
    .replace("kyro_documents", &table)
    .replace("vector(8)", "vector(4)");
    psql(&format!("DROP TABLE IF EXISTS {table};"));
    psql(&schema);
    table
}

pub(crate) struct Table(pub(crate) String);

impl Drop for Table {
    fn drop(&mut self) {
        psql(&format!("DROP TABLE IF EXISTS {};", self.0));
    }
}

pub(crate) fn store_config(table: &str, ownership: &str) -> String {
    format!(
        "dsn = {{ env = \"KYRO_TEST_DATABASE_URL\" }}\ntable = \"{table}\"\ndimension = 4\ndistance = \"cosine\"\n\
         filterable_keys = [\"lang\"]\nownership_mode = \"{ownership}\"\nmutation_key_mode = \"tenant_namespace_id\"\n"
    )
}

fn serve_config(table: &str, ownership: &str) -> String {
    format!(
        "listen = \"{{listen}}\"\nmode = \"production\"\ndefault_freshness = \"strict\"\nstate = \"sqlite://state.db\"\n{}\n\
         [[stores]]\nid = \"pg\"\nplugin = \"{}\"\nownership_mode = \"{ownership}\"\nnamespaces = [\"*\"]\n[stores.config]\n{}",
        tokens_section(),
        plugin_path("kyro-connector-pgvector").display(),
        store_config(table, ownership)
    )
}

#[test]
fn kyro_certify_certifies_pgvector_for_both_profiles_and_keeps_the_reports() {
    let artifacts = profile_dir().parent().unwrap().join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    for ownership in ["write_through", "event_feed"] {
        let table = Table(create_table(&format!("cert_{ownership}")));
        let dir = temp_dir(&format!("pg-certify-{ownership}"));
        let config_path = dir.join("store.toml");
        std::fs::write(&config_path, store_config(&table.0, ownership)).unwrap();
        let report_path = artifacts.join(format!("certification-pgvector-{ownership}.json"));
        let junit_path = artifacts.join(format!("certification-pgvector-{ownership}.xml"));
        let output = Command::new(kyro_binary())
            .args(["certify", "--plugin"])
            .arg(plugin_path("kyro-connector-pgvector"))
            .arg("--store-config")
            .arg(&config_path)
            .arg("--report-json")
            .arg(&report_path)
            .arg("--junit")
            .arg(&junit_path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{ownership}:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
        assert_eq!(report["verdict"], "certified");
        assert_eq!(report["profile"], format!("pgvector/{ownership}"));
        assert!(report["store_version"].as_str().unwrap().contains("pgvector"), "{report}");
        let secret = database_url();
        let password =
            secret.split(':').nth(2).and_then(|rest| rest.split('@').next()).unwrap_or("");
        let text = std::fs::read_to_string(&report_path).unwrap();
        assert!(password.len() < 4 || !text.contains(&secret), "the DSN reached the report");
        // The private space was purged: nothing of kyro-cert-* is left in the table.
        let left = Command::new("psql")
            .arg(database_url())
            .args([
                "-tA",
                "-c",
                &format!("SELECT count(*) FROM {} WHERE tenant_id LIKE 'kyro-cert-%'", table.0),
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&left.stdout).trim(),
            "0",
            "{ownership}: certification data left behind"
        );
    }
}

fn retrieve(server: &KyroServer, mode: &str) -> Value {
    let response = server.post(
        "/v1/context/retrieve",
        DATA_TOKEN,
        &json!({ "query_embedding": [1.0, 0.0, 0.0, 0.0], "scope": { "tenant_id": "acme", "namespace": "support" }, "top_k": 5, "freshness_mode": mode }),
    );
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    response.json()
}

fn contents(packet: &Value) -> Vec<String> {
    packet["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["content"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn kyro_serves_pgvector_with_verified_write_through_acks() {
    let table = Table(create_table("serve_wt"));
    let server =
        KyroServer::start(&temp_dir("pg-serve-wt"), &serve_config(&table.0, "write_through"))
            .unwrap();
    let upsert = server.post(
        "/v1/documents/upsert",
        DATA_TOKEN,
        &json!({ "scope": { "tenant_id": "acme", "namespace": "support" },
                 "document": { "id": "refunds", "embedding": [1.0, 0.0, 0.0, 0.0], "content": "refunds in 14 days", "metadata": { "lang": "en" }, "revision": "1" } }),
    );
    assert_eq!(upsert.status, 200, "{}", String::from_utf8_lossy(&upsert.body));
    let upsert = upsert.json();
    assert_eq!(upsert["outcome"], "inserted");
    assert_eq!(upsert["mutation_ack"]["verified"], true);
    assert_eq!(upsert["mutation_ack"]["scope"]["tenant_id"], "acme");
    assert_eq!(contents(&retrieve(&server, "strict")), ["refunds in 14 days"]);
    let delete = server.post(
        "/v1/documents/delete",
        DATA_TOKEN,
        &json!({ "scope": { "tenant_id": "acme", "namespace": "support" }, "id": "refunds" }),
    );
    assert_eq!(delete.json()["outcome"], "deleted");
    assert!(contents(&retrieve(&server, "strict")).is_empty());
}

#[test]
fn kyro_prunes_rows_older_than_an_acknowledged_change_event_on_pgvector() {
    let table = Table(create_table("serve_ef"));
    psql(&format!(
        "INSERT INTO {} (tenant_id, namespace, id, embedding, metadata, content, updated_at) VALUES \
         ('acme', 'support', 'refunds', '[1,0,0,0]', '{{\"lang\":\"en\"}}', 'refunds in 14 days', now() - interval '1 hour'), \
         ('globex', 'support', 'refunds', '[1,0,0,0]', '{{\"lang\":\"en\"}}', 'globex secret', now())",
        table.0
    ));
    let server =
        KyroServer::start(&temp_dir("pg-serve-ef"), &serve_config(&table.0, "event_feed")).unwrap();
    assert_eq!(
        contents(&retrieve(&server, "strict")),
        ["refunds in 14 days"],
        "scoped to acme only"
    );
    // The source reports a change made now; the table still holds the hour-old row.
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let now = kyro_core::time::rfc3339_millis(i64::try_from(now_ms).unwrap());
    let ack = server.post(
        "/v1/events/change",
        DATA_TOKEN,
        &json!({ "target": { "type": "document", "doc_id": "refunds" }, "change_type": "content_updated",
                 "scope": { "tenant_id": "acme", "namespace": "support" }, "source_event_id": "billing-1", "timestamp": now }),
    );
    assert_eq!(ack.status, 200);
    let strict = retrieve(&server, "strict");
    assert!(contents(&strict).is_empty(), "the stale row must not be served: {strict}");
    assert_eq!(strict["omissions"][0]["reason"], "stale_pruned");
    // The writer lands the change: the row's updated_at passes the event's timestamp.
    psql(&format!(
        "UPDATE {} SET content = 'refunds in 5 days', updated_at = now() + interval '1 second' WHERE tenant_id = 'acme'",
        table.0
    ));
    assert_eq!(contents(&retrieve(&server, "strict")), ["refunds in 5 days"]);
}

/// Two `kyro serve` replicas sharing their state in PostgreSQL: generations stay one sequence
/// and a change event replayed on the other replica returns its original generation.
#[test]
fn replicas_sharing_postgresql_state_share_one_generation_and_one_dedupe_ledger() {
    let database = Database::create("shared_state");
    let config = format!(
        "listen = \"{{listen}}\"\nmode = \"development\"\ndefault_freshness = \"strict\"\nstate = \"{}\"\n{}\n\
         [[stores]]\nid = \"mem\"\nplugin = \"{}\"\nownership_mode = \"event_feed\"\nnamespaces = [\"*\"]\n\
         [stores.config]\ndimension = 4\n",
        database.url(),
        tokens_section(),
        plugin_path(&kyro_e2e::fixture_package(kyro_fixture_support::Defect::None)).display()
    );
    let first = KyroServer::start(&temp_dir("replica-a"), &config).unwrap();
    let second = KyroServer::start(&temp_dir("replica-b"), &config).unwrap();
    let event = |id: &str| json!({ "target": { "type": "tenant", "tenant_id": "acme" }, "change_type": "access_policy_updated", "scope": {}, "source_event_id": id });
    let mut generations = Vec::new();
    for idx in 0..6 {
        let server = if idx % 2 == 0 { &first } else { &second };
        let ack = server.post("/v1/events/change", DATA_TOKEN, &event(&format!("evt-{idx}")));
        assert_eq!(ack.status, 200, "{}", String::from_utf8_lossy(&ack.body));
        generations.push(ack.json()["generation"].as_u64().unwrap());
    }
    assert_eq!(generations, [1, 2, 3, 4, 5, 6], "one sequence across both replicas");
    let replay = second.post("/v1/events/change", DATA_TOKEN, &event("evt-0")).json();
    assert_eq!(replay["generation"], 1, "the other replica knows the event's original generation");
    let health = first.get("/v1/health/context", Some(kyro_e2e::server::ADMIN_TOKEN)).json();
    assert_eq!(health["freshness_generation"], 6);
}
