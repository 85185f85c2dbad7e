//! Output fit for a terminal and for a log: with standard error redirected (as under a service
//! manager or in CI) `kyro serve` writes no colour codes, and `kyro certify --json` prints one
//! JSON report on standard output for scripts, its progress on standard error.

use std::process::Command;

use kyro_e2e::server::{KyroServer, tokens_section};
use kyro_e2e::{fixture_package, kyro_binary, plugin_path, temp_dir};
use kyro_fixture_support::Defect;
use serde_json::Value;

#[test]
fn kyro_serve_writes_no_colour_codes_into_a_redirected_log() {
    // One store is refused at startup, so an error-level log line is written.
    let config = format!(
        "listen = \"{{listen}}\"\nmode = \"development\"\ndefault_freshness = \"strict\"\nstate = \"sqlite://state.db\"\n{}\n\
         [[stores]]\nid = \"ok\"\nplugin = \"{}\"\nownership_mode = \"event_feed\"\nnamespaces = [\"docs\"]\n[stores.config]\ndimension = 4\n\n\
         [[stores]]\nid = \"leaky\"\nplugin = \"{}\"\nownership_mode = \"event_feed\"\nnamespaces = [\"other\"]\n[stores.config]\ndimension = 4\n",
        tokens_section(),
        plugin_path(&fixture_package(Defect::None)).display(),
        plugin_path(&fixture_package(Defect::IgnoresNamespace)).display(),
    );
    let server = KyroServer::start(&temp_dir("output-no-colour"), &config).unwrap();
    let log = &server.startup_output;
    assert!(log.contains("ERROR") && log.contains("store refused"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a redirected log:\n{log:?}");
}

#[test]
fn kyro_certify_json_prints_the_report_alone_on_standard_output() {
    let dir = temp_dir("output-certify-json");
    let config = dir.join("store.toml");
    std::fs::write(
        &config,
        "dimension = 16\nfilterable_keys = [\"lang\"]\nmax_top_k = 50\nmax_fetch_ids = 50\n",
    )
    .unwrap();
    for (defect, code, verdict) in
        [(Defect::None, 0, "certified"), (Defect::IgnoresNamespace, 1, "refused")]
    {
        let output = Command::new(kyro_binary())
            .args(["certify", "--json", "--plugin"])
            .arg(plugin_path(&fixture_package(defect)))
            .arg("--store-config")
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{stderr}");
        let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
            panic!(
                "stdout is not one JSON document ({err}):\n{}",
                String::from_utf8_lossy(&output.stdout)
            )
        });
        assert_eq!(report["verdict"], verdict);
        assert!(report["summary"]["passed"].as_u64().unwrap() > 0, "{report}");
        assert!(stderr.starts_with("certifying...\n"), "progress goes to standard error: {stderr}");
        assert!(!stderr.contains('\u{1b}'), "no escape codes off a terminal: {stderr:?}");
    }
}
