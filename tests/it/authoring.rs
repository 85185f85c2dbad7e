//! The plugin author's first hour: the SDK's minimal connector (`connector-sdk/examples/minimal.rs`,
//! which the crate docs show) certifies through the certification library, in-process, exactly
//! as its docs claim.

use std::time::Duration;

use kyro_certification::{CheckStatus, Depth, Options, Report, Verdict};
use kyro_connector_sdk::{Connector, ConnectorConfig, ConnectorPlugin, ErrorKind};

#[expect(dead_code, reason = "the example's `main` exists only to build the file as an example")]
#[path = "../../connector-sdk/examples/minimal.rs"]
mod minimal;

/// Certifies connector type `C`, opened with `config`, through the certification library's own
/// entry point: the same checks as `kyro certify`, linked in-process.
fn certify_in_process<C: ConnectorPlugin>(config: &serde_json::Value) -> Report {
    let options = Options {
        depth: Depth::Standard,
        seed: None,
        call_timeout: Duration::from_secs(10),
        budget: None,
    };
    kyro_certification::certify_connector::<C>(config, options).unwrap()
}

fn outcome<'r>(report: &'r Report, id: &str) -> &'r CheckStatus {
    &report
        .checks
        .iter()
        .find(|check| check.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
        .status
}

#[test]
fn the_sdk_docs_minimal_connector_certifies() {
    let config = serde_json::json!({ "dimension": 8, "filterable_keys": ["lang"] });
    let report = certify_in_process::<minimal::MinimalStore>(&config);
    let lines: Vec<String> = report.checks.iter().map(|check| check.to_line()).collect();
    assert_eq!(report.verdict, Verdict::Certified, "{lines:#?}");
    assert!(report.cleanup.complete, "{}", report.cleanup.detail);
    assert_eq!(report.profile, "minimal/event_feed");
    for passed in [
        "scope.search_excludes_other_tenant",
        "scope.fetch_excludes_other_scopes",
        "filter.semantics",
        "bounds.short_result_reported",
        "freshness.event_feed.external_change_visible",
        "unsupported.upsert",
        "unsupported.watermark",
    ] {
        assert_eq!(outcome(&report, passed), &CheckStatus::Passed, "{passed}: {lines:#?}");
    }
    for undeclared in
        ["freshness.write_through.read_your_write", "freshness.watermark.advances_in_scope"]
    {
        assert_eq!(outcome(&report, undeclared).as_str(), "not_applicable", "{undeclared}");
    }
}

#[test]
fn the_minimal_connector_refuses_a_misspelled_key_and_a_purge_outside_the_certification_space() {
    let err = minimal::MinimalStore::open(
        &ConnectorConfig::from_json(r#"{"dimension": 8, "filterable_key": ["lang"]}"#),
        kyro_connector_sdk::HostContext::discard(),
    )
    .err()
    .unwrap();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.message().contains("unknown field `filterable_key`"), "{err}");

    let store = minimal::MinimalStore::open(
        &ConnectorConfig::from_json(r#"{"dimension": 8}"#),
        kyro_connector_sdk::HostContext::discard(),
    )
    .unwrap();
    let production = kyro_connector_sdk::Scope::new("acme", "support").unwrap();
    let err = store.certification_purge(&production).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[test]
fn a_plugin_named_by_its_bare_file_name_loads_from_the_current_directory() {
    let path =
        kyro_e2e::plugin_path(&kyro_e2e::fixture_package(kyro_fixture_support::Defect::None));
    let file_name = path.file_name().unwrap().to_str().unwrap();
    let output = std::process::Command::new(kyro_e2e::kyro_binary())
        .current_dir(path.parent().unwrap())
        .args(["plugin", "inspect", file_name, "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let inspection: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(inspection["name"], "fixture-reference");
}
