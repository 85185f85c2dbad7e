//! `kyro plugin new` end to end: a generated crate builds as a plugin outside the workspace; as
//! generated, `kyro certify` refuses it and names the store functions not written yet; completed
//! with a small store (`scaffold/store.rs`, written over the generated `src/store.rs`) it
//! certifies for each store kind that store backs, and serves with its generated `kyro.toml`.
//!
//! The generated crates build into this workspace's target directory, with its profile settings,
//! so the dependencies they share with the workspace are built once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kyro_e2e::server::{ADMIN_TOKEN, DATA_TOKEN, KyroServer};
use kyro_e2e::{kyro_binary, profile_dir, temp_dir};
use serde_json::Value;

/// The DSN the generated `store.toml` reads from the environment; a canary the redaction checks
/// look for.
const DSN: &str = "postgres://kyro:scaffold-canary-pw@127.0.0.1:5432/kyro";

const COMPLETED_STORE: &str = include_str!("scaffold/store.rs");

fn kyro(args: &[&str], dsn_env: Option<&str>) -> Output {
    let mut command = Command::new(kyro_binary());
    command.args(args);
    if let Some(name) = dsn_env {
        command.env(name, DSN);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `kyro plugin new NAME --store-kind KIND --dir PARENT`; returns the crate's directory.
fn generate(parent: &Path, name: &str, kind: &str) -> PathBuf {
    let parent_arg = parent.to_str().unwrap();
    let output = kyro(&["plugin", "new", name, "--store-kind", kind, "--dir", parent_arg], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).starts_with("created "), "{}", text(&output.stdout));
    parent.join(name)
}

/// Builds the crate at `dir` into the workspace's target directory; returns the plugin file.
fn build(dir: &Path, name: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = profile_dir().parent().unwrap().to_path_buf();
    let output = Command::new(cargo)
        .current_dir(dir)
        .args(["build", "--offline", "--config", "profile.dev.debug=\"line-tables-only\""])
        .args(["--config", "profile.dev.package.\"*\".debug=false"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo build of {} failed:\n{}",
        dir.display(),
        text(&output.stderr)
    );
    let warnings = text(&output.stderr);
    assert!(!warnings.contains("warning"), "the generated crate builds with warnings:\n{warnings}");
    let file = format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    );
    profile_dir().join(file)
}

/// `kyro certify` of `plugin` with the crate's generated `store.toml`; returns the exit code,
/// stdout, and the JSON report.
fn certify(dir: &Path, plugin: &Path, dsn_env: &str) -> (Option<i32>, String, Value) {
    let report = dir.join("certification.json");
    let junit = dir.join("certification.xml");
    let output = kyro(
        &[
            "certify",
            "--plugin",
            plugin.to_str().unwrap(),
            "--store-config",
            dir.join("store.toml").to_str().unwrap(),
            "--report-json",
            report.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
        Some(dsn_env),
    );
    let stdout = text(&output.stdout);
    for written in [
        std::fs::read_to_string(&report).unwrap(),
        std::fs::read_to_string(&junit).unwrap(),
        stdout.clone(),
    ] {
        assert!(!written.contains("scaffold-canary-pw"), "a secret reached an output:\n{written}");
    }
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (output.status.code(), stdout, report)
}

fn complete(dir: &Path) {
    std::fs::write(dir.join("src/store.rs"), COMPLETED_STORE).unwrap();
}

#[test]
fn a_generated_crate_builds_is_refused_until_written_then_certifies_and_serves() {
    let parent = temp_dir("scaffold");
    let name = "scaffolded-feed";
    let dir = generate(&parent, name, "event-feed");
    let plugin = build(&dir, name);

    let (code, stdout, report) = certify(&dir, &plugin, "SCAFFOLDED_FEED_DSN");
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(report["verdict"], "refused");
    assert!(stdout.contains("health is not written yet (src/store.rs)"), "{stdout}");
    assert!(stdout.contains("implement certification_seed or declare upsert"), "{stdout}");

    complete(&dir);
    let plugin = build(&dir, name);
    let (code, stdout, report) = certify(&dir, &plugin, "SCAFFOLDED_FEED_DSN");
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(report["verdict"], "certified");
    assert_eq!(report["profile"], "scaffolded-feed/event_feed");
    let junit = std::fs::read_to_string(dir.join("certification.xml")).unwrap();
    assert!(junit.contains("<testsuite") && !junit.contains("<failure"), "{junit}");

    // The generated kyro.toml serves it, with this test's tokens, DSN, address and plugin path.
    let config = std::fs::read_to_string(dir.join("kyro.toml"))
        .unwrap()
        .replace("listen = \"127.0.0.1:7070\"", "listen = \"{listen}\"")
        .replace(
            &format!(
                "plugin = \"target/release/{}\"",
                plugin.file_name().unwrap().to_str().unwrap()
            ),
            &format!("plugin = {}", Value::String(plugin.display().to_string())),
        )
        .replace("{ env = \"KYRO_DATA_TOKEN\" }", &format!("{{ value = \"{DATA_TOKEN}\" }}"))
        .replace("{ env = \"KYRO_ADMIN_TOKEN\" }", &format!("{{ value = \"{ADMIN_TOKEN}\" }}"))
        .replace("{ env = \"SCAFFOLDED_FEED_DSN\" }", &format!("{{ value = \"{DSN}\" }}"));
    assert!(!config.contains("{ env ="), "every environment reference was replaced:\n{config}");
    let server = KyroServer::start(&dir, &config).unwrap();
    let ready = server.get("/readyz", None);
    assert_eq!(ready.status, 200, "{}", text(&ready.body));
    let health = server.get("/v1/runtime/health", Some(ADMIN_TOKEN)).json();
    assert_eq!(health["stores"][0]["profile"], "scaffolded-feed/event_feed", "{health}");
    let query: Vec<f32> = (0..384).map(|idx| if idx == 0 { 1.0 } else { 0.0 }).collect();
    let body = serde_json::json!({
        "scope": { "tenant_id": "acme", "namespace": "support" },
        "query_embedding": query,
        "top_k": 3,
    });
    let packet = server.post("/v1/context/retrieve", DATA_TOKEN, &body);
    assert_eq!(packet.status, 200, "{}", text(&packet.body));
    let packet = packet.json();
    assert!(packet["trace_id"].as_str().is_some_and(|id| !id.is_empty()), "{packet}");
    assert_eq!(packet["items"], serde_json::json!([]), "the store is empty: {packet}");
    server.kill();
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn a_generated_write_through_crate_certifies_once_completed() {
    let parent = temp_dir("scaffold-write-through");
    let name = "scaffolded-owned";
    let dir = generate(&parent, name, "write-through");
    complete(&dir);
    let plugin = build(&dir, name);
    let (code, stdout, report) = certify(&dir, &plugin, "SCAFFOLDED_OWNED_DSN");
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(report["profile"], "scaffolded-owned/write_through");
    let passed = |id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|check| check["id"] == id && check["outcome"] == "passed")
    };
    assert!(passed("freshness.write_through.read_your_write"), "{stdout}");
    assert!(passed("freshness.write_through.mutations_confined"), "{stdout}");
    std::fs::remove_dir_all(&parent).unwrap();
}
