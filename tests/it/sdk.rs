//! The official KyroDB Python SDK (`kyrodb` 1.0.3, in the venv `scripts/setup-contract.sh`
//! builds) driven end to end against `kyro serve` over pgvector in write_through ownership:
//! `tests/sdk/flows.py` runs every flow an agent team uses, through the SDK's own client and
//! models, and fails on the first decode error or refusal (issue #13).
//!
//! This does not check the wire format itself; `contract.rs` validates every answer against the
//! published schemas. Here the question is whether existing clients work unchanged.

use std::process::Command;

use kyro_e2e::contract::{sdk_python, workspace_root};
use kyro_e2e::server::{ADMIN_TOKEN, DATA_TOKEN, KyroServer, tokens_section};
use kyro_e2e::{plugin_path, temp_dir};

use crate::pgvector::{Table, create_table, store_config};

/// Every SDK environment variable, cleared so only what the test sets reaches the client.
const SDK_ENVIRONMENT: [&str; 5] = [
    "KYRODB_BASE_URL",
    "KYRODB_DATA_PLANE_TOKEN",
    "KYRODB_OBSERVABILITY_TOKEN",
    "KYRODB_SHADOW_SESSION_ID",
    "KYRODB_ALLOW_INSECURE_HTTP",
];

#[test]
fn the_official_python_sdk_runs_every_flow_without_a_decode_error() {
    let python = sdk_python();
    let table = Table(create_table("sdk_flows"));
    let config = format!(
        "listen = \"{{listen}}\"\nmode = \"production\"\ndefault_freshness = \"strict\"\nstate = \"sqlite://state.db\"\n{}\n\
         [[stores]]\nid = \"pg\"\nplugin = \"{}\"\nownership_mode = \"write_through\"\nnamespaces = [\"*\"]\n[stores.config]\n{}",
        tokens_section(),
        plugin_path("kyro-connector-pgvector").display(),
        store_config(&table.0, "write_through")
    );
    let server = KyroServer::start(&temp_dir("sdk-flows"), &config).unwrap();
    let mut command = Command::new(&python);
    command.arg(workspace_root().join("tests/sdk/flows.py")).args([
        "--tenant",
        "acme",
        "--namespace",
        "support",
        "--dimension",
        "4",
    ]);
    for name in SDK_ENVIRONMENT {
        command.env_remove(name);
    }
    // The SDK sends its one observability credential to observability and admin routes alike;
    // an admin token may call both here.
    let output = command
        .env("KYRODB_BASE_URL", format!("http://{}", server.address))
        .env("KYRODB_DATA_PLANE_TOKEN", DATA_TOKEN)
        .env("KYRODB_OBSERVABILITY_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", python.display()));
    assert!(
        output.status.success(),
        "tests/sdk/flows.py failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
