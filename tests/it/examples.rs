//! The example configurations run as their READMEs say, against the test PostgreSQL:
//! `examples/pgvector-live/store.toml` certifies with `kyro certify`, and
//! `examples/pgvector-live/kyro.toml` serves a scoped retrieve over the example's schema and
//! sample rows.

use std::path::Path;
use std::process::Command;

use kyro_e2e::postgres::Database;
use kyro_e2e::server::{KyroServer, free_address};
use kyro_e2e::{kyro_binary, plugin_path, temp_dir};
use serde_json::json;

const EXAMPLE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/pgvector-live");

/// A fresh database loaded as the example's compose file loads its own.
fn example_database() -> Database {
    let database = Database::create("example");
    for script in ["schema.sql", "seed.sql"] {
        let output = Command::new("psql")
            .arg(database.url())
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-f"])
            .arg(Path::new(EXAMPLE_DIR).join(script))
            .output()
            .unwrap();
        assert!(output.status.success(), "{script}: {}", String::from_utf8_lossy(&output.stderr));
    }
    database
}

#[test]
fn the_pgvector_live_example_certifies_and_serves_a_scoped_retrieve() {
    let database = example_database();
    let dsn = database.url();
    let example = Path::new(EXAMPLE_DIR);
    let config_text = std::fs::read_to_string(example.join("kyro.toml")).unwrap();
    let config: toml::Table = toml::from_str(&config_text).unwrap();
    let store: toml::Table =
        toml::from_str(&std::fs::read_to_string(example.join("store.toml")).unwrap()).unwrap();
    assert_eq!(
        config["stores"][0]["config"].as_table(),
        Some(&store),
        "kyro.toml's [stores.config] and store.toml describe the same store"
    );
    // The plugin path in kyro.toml is relative to it and names the built plugin.
    let relative_plugin = config["stores"][0]["plugin"].as_str().unwrap();
    assert_eq!(
        example.join(relative_plugin).canonicalize().unwrap(),
        plugin_path("kyro-connector-pgvector").canonicalize().unwrap()
    );

    let certify = Command::new(kyro_binary())
        .current_dir(example)
        .args(["certify", "--plugin", relative_plugin, "--store-config", "store.toml"])
        .env("KYRO_PG_DSN", &dsn)
        .output()
        .unwrap();
    assert_eq!(
        certify.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&certify.stdout),
        String::from_utf8_lossy(&certify.stderr)
    );

    // Served as written, but on a free port and with its state in a scratch directory, so the
    // test neither writes into the source tree nor competes for port 7070.
    let dir = temp_dir("example-pgvector-live");
    let address = free_address();
    let served = config_text
        .replace("listen = \"127.0.0.1:7070\"", &format!("listen = \"{address}\""))
        .replace(
            &format!("plugin = \"{relative_plugin}\""),
            &format!("plugin = \"{}\"", plugin_path("kyro-connector-pgvector").display()),
        );
    std::fs::write(dir.join("kyro.toml"), served).unwrap();
    let data_token = "data-token-0123456789";
    let server = KyroServer::start_existing_with_env(
        &dir,
        address,
        &[
            ("KYRO_PG_DSN", &dsn),
            ("KYRO_DATA_TOKEN", data_token),
            ("KYRO_ADMIN_TOKEN", "admin-token-0123456789"),
        ],
    )
    .unwrap();
    // The README's billing question for acme.
    let response = server.post(
        "/v1/context/retrieve",
        data_token,
        &json!({ "query_embedding": [0.9, 0.1, 0.05, 0.02, 0.05, 0.02, 0.1, 0.03],
                 "scope": { "tenant_id": "acme", "namespace": "support" }, "top_k": 3 }),
    );
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    let packet = response.json();
    let ids: Vec<&str> = packet["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ticket-1001", "ticket-1002", "ticket-1003"], "{packet}");
    assert_eq!(packet["status"], "complete", "{packet}");
}
