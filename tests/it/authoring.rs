//! The plugin author's first hour: the SDK's minimal connector (`connector-sdk/examples/minimal.rs`,
//! which the crate docs show) certifies through the certification library, in-process, exactly
//! as its docs claim.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kyro_certification::{CheckStatus, PluginIdentity, Profile, Report, Subject, Verdict};
use kyro_connector_sdk::guard::{GuardConfig, GuardedConnector};
use kyro_connector_sdk::{Connector, ConnectorConfig, ConnectorPlugin, ErrorKind};
use kyro_host::stores::certify::capturing_host;

#[expect(dead_code, reason = "the example's `main` exists only to build the file as an example")]
#[path = "../../connector-sdk/examples/minimal.rs"]
mod minimal;

/// Certifies connector type `C`, opened with `config`, the way `kyro certify` does but linked
/// in-process: behind a guard, with its log lines captured and raw payloads sent through the
/// plugin side's own decoder.
fn certify_in_process<C: ConnectorPlugin>(config: &serde_json::Value) -> Report {
    let log_lines = Arc::new(Mutex::new(Vec::new()));
    let opened =
        C::open(&ConnectorConfig::from_json(config.to_string()), capturing_host(&log_lines))
            .unwrap();
    let inner: Arc<dyn Connector> = Arc::new(opened);
    let guarded = GuardedConnector::new(
        "in-process",
        Arc::clone(&inner),
        GuardConfig { call_timeout: Duration::from_secs(10), workers: 2 },
    )
    .unwrap();
    let raw_call =
        move |payload: &[u8]| kyro_connector_sdk::abi::dispatch_raw(inner.as_ref(), payload);
    let info = C::plugin_info();
    let subject = Subject {
        connector: &guarded,
        raw_call: &raw_call,
        plugin: PluginIdentity {
            name: info.name,
            version: info.version,
            sdk_version: info.sdk_version,
            abi_version: "in-process".to_owned(),
            sha256: None,
            path: None,
        },
        secrets: Vec::new(),
        canary: None,
        log_lines: &log_lines,
    };
    kyro_certification::certify(&subject, Profile::Full, &mut |_| {})
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
