//! The certification harness proves it can say no: the reference store certifies, and every
//! fixture with one defect is refused by the check that names that defect, both linked in-process
//! and loaded as a cdylib. `kyro certify` is exercised as a process.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kyro_certification::{CanaryProbe, PluginIdentity, Profile, Report, Subject, Verdict};
use kyro_connector_sdk::guard::{GuardConfig, GuardedConnector};
use kyro_connector_sdk::{Connector, ConnectorConfig};
use kyro_e2e::{fixture_package, kyro_binary, plugin_path};
use kyro_fixture_support::Defect;
use kyro_host::stores::certify::{capturing_host, certify_plugin};
use serde_json::Value;

const DSN: &str = "postgres://kyro:s3cret-fixture-pass@127.0.0.1:5432/kyro";

fn config() -> Value {
    serde_json::json!({
        "dimension": 16,
        "distance": "cosine",
        "filterable_keys": ["lang", "year"],
        "max_top_k": 50,
        "max_fetch_ids": 50,
        "dsn": { "value": DSN },
    })
}

/// Which check must refuse each fixture, and which others may also fail because the same defect
/// shows through them.
fn expectation(defect: Defect) -> (&'static str, &'static [&'static str]) {
    match defect {
        Defect::IgnoresNamespace => (
            "scope.search_excludes_other_namespace",
            &["filter.semantics", "filter.injection_values", "bounds.short_result_reported"],
        ),
        Defect::LeaksTenantOnFetch => ("scope.fetch_excludes_other_scopes", &[]),
        Defect::ConcatenatesFilterText => ("filter.injection_values", &[]),
        Defect::GlobalWatermark => (
            "freshness.watermark.ignores_other_tenant",
            &["freshness.watermark.ignores_other_namespace"],
        ),
        Defect::AcksBeforeVisible => (
            "freshness.write_through.read_your_write",
            &[
                "freshness.write_through.ack_names_scope_and_id",
                "freshness.write_through.delete_ack",
            ],
        ),
        Defect::TruncatesPastCap => ("bounds.top_k_cap", &[]),
        Defect::EchoesDsn => {
            ("redaction.canary_secret_contained", &["redaction.no_secret_in_errors"])
        }
        Defect::EmptySuccessForUnsupported => ("unsupported.snapshot_version", &[]),
        Defect::PanicsOnNonAscii => ("filter.injection_values", &[]),
        Defect::None | Defect::HangsOnSearch | Defect::OwnsTokioRuntime => ("", &[]),
    }
}

const DEFECTS: [Defect; 9] = [
    Defect::IgnoresNamespace,
    Defect::LeaksTenantOnFetch,
    Defect::ConcatenatesFilterText,
    Defect::GlobalWatermark,
    Defect::AcksBeforeVisible,
    Defect::TruncatesPastCap,
    Defect::EchoesDsn,
    Defect::EmptySuccessForUnsupported,
    Defect::PanicsOnNonAscii,
];

fn guard(connector: Arc<dyn Connector>) -> GuardedConnector {
    GuardedConnector::new(
        "in-process",
        connector,
        GuardConfig { call_timeout: Duration::from_secs(10), workers: 2 },
    )
    .unwrap()
}

fn certify_in_process(defect: Defect) -> Report {
    let log_lines = Arc::new(Mutex::new(Vec::new()));
    let config_json = ConnectorConfig::from_json(config().to_string());
    let inner: Arc<dyn Connector> = Arc::from(
        kyro_fixture_support::open_in_process(defect, &config_json, capturing_host(&log_lines))
            .unwrap(),
    );
    let guarded = guard(Arc::clone(&inner));
    let raw = Arc::clone(&inner);
    let raw_call =
        move |payload: &[u8]| kyro_connector_sdk::abi::dispatch_raw(raw.as_ref(), payload);
    let canary = "kyro-canary-in-process";
    let canary_config = kyro_host::stores::certify::canary_config(&config(), canary).unwrap();
    let open_canary = || -> kyro_connector_sdk::Result<Box<dyn Connector>> {
        let config = ConnectorConfig::from_json(canary_config.to_string());
        let connector =
            kyro_fixture_support::open_in_process(defect, &config, capturing_host(&log_lines))?;
        Ok(Box::new(guard(Arc::from(connector))))
    };
    let subject = Subject {
        connector: &guarded,
        raw_call: &raw_call,
        plugin: PluginIdentity {
            name: format!("fixture-{}", defect.name()),
            version: "0.1.0".to_owned(),
            sdk_version: kyro_connector_sdk::SDK_VERSION.to_owned(),
            abi_version: "in-process".to_owned(),
            sha256: None,
            path: None,
        },
        secrets: vec![DSN.to_owned()],
        canary: Some(CanaryProbe { canaries: vec![canary.to_owned()], open: &open_canary }),
        log_lines: &log_lines,
    };
    kyro_certification::certify(&subject, Profile::Full, &mut |_| {})
}

fn certify_loaded(defect: Defect) -> Report {
    certify_plugin(&plugin_path(&fixture_package(defect)), &config(), Profile::Full, &mut |_| {})
        .unwrap()
}

fn assert_refused_by_the_right_check(defect: Defect, report: &Report, how: &str) {
    let (expected, also) = expectation(defect);
    assert_eq!(report.verdict, Verdict::Refused, "{how} {defect:?}: {}", report.summary_line());
    let failed: BTreeSet<&str> = report.failed_checks.iter().copied().collect();
    assert!(
        failed.contains(expected),
        "{how} {defect:?} must be refused by {expected}: {}",
        report.summary_line()
    );
    let unexpected: Vec<&&str> =
        failed.iter().filter(|id| **id != expected && !also.contains(id)).collect();
    assert!(
        unexpected.is_empty(),
        "{how} {defect:?} also failed {unexpected:?}: {}",
        report.summary_line()
    );
    // A quarantined connector cannot be asked to clean up; the report says what was left.
    if defect != Defect::PanicsOnNonAscii {
        assert!(report.cleanup.complete, "{how} {defect:?}: {}", report.cleanup.detail);
    }
}

fn assert_certified(report: &Report, how: &str) {
    assert_eq!(report.verdict, Verdict::Certified, "{how}: {}", report.summary_line());
    assert_eq!(report.summary.failed + report.summary.errors, 0);
    assert!(report.summary.passed >= 25, "{how}: too few checks ran: {}", report.summary_line());
    assert!(report.cleanup.complete);
}

#[test]
fn the_reference_store_is_certified_in_process_and_loaded() {
    assert_certified(&certify_in_process(Defect::None), "in-process");
    assert_certified(&certify_loaded(Defect::None), "loaded");
}

#[test]
fn every_defect_fixture_is_refused_in_process_by_its_check() {
    for defect in DEFECTS {
        assert_refused_by_the_right_check(defect, &certify_in_process(defect), "in-process");
    }
}

#[test]
fn every_defect_fixture_is_refused_as_a_loaded_cdylib_by_its_check() {
    for defect in DEFECTS {
        assert_refused_by_the_right_check(defect, &certify_loaded(defect), "loaded");
    }
}

#[test]
fn a_panicking_connector_is_quarantined_and_the_rest_of_the_run_is_reported_as_not_run() {
    let report = certify_loaded(Defect::PanicsOnNonAscii);
    let panicked =
        report.checks.iter().find(|check| check.id == "filter.injection_values").unwrap();
    assert!(format!("{:?}", panicked.status).contains("panicked"), "{:?}", panicked.status);
    assert!(!report.error_checks.is_empty(), "checks after the quarantine could not run");
    assert!(
        !report.cleanup.complete && report.cleanup.detail.contains("quarantined"),
        "{}",
        report.cleanup.detail
    );
}

#[test]
fn no_secret_reaches_any_report() {
    for defect in [Defect::EchoesDsn, Defect::None] {
        for report in [certify_in_process(defect), certify_loaded(defect)] {
            let json = report.to_json().unwrap();
            let junit = report.to_junit();
            for text in [&json, &junit] {
                assert!(
                    !text.contains("s3cret-fixture-pass"),
                    "{defect:?} leaked the DSN password"
                );
                assert!(!text.contains("kyro-canary-"), "{defect:?} leaked the canary");
            }
        }
    }
}

/// Replaces what changes from run to run (the run id, hash, path, start time, timings), so the
/// formats can be snapshotted.
fn normalize(text: &str, report: &Report) -> String {
    let run_id = report
        .space
        .split("kyro-cert-")
        .nth(1)
        .and_then(|rest| rest.split('-').next())
        .unwrap_or("none");
    let mut text = text.replace(run_id, "<run>");
    if let Some(sha) = &report.plugin.sha256 {
        text = text.replace(sha.as_str(), "<sha256>");
    }
    if let Some(path) = &report.plugin.path {
        text = text.replace(path.as_str(), "<path>");
    }
    text = text.replace(&report.started_at, "<started_at>");
    let mut normalized = String::new();
    for line in text.lines() {
        let mut line = line.to_owned();
        let mut search_from = 0;
        while let Some(offset) = line[search_from..].find("time=\"") {
            let value_start = search_from + offset + "time=\"".len();
            let value_end =
                line[value_start..].find('"').map_or(line.len(), |offset| value_start + offset);
            line.replace_range(value_start..value_end, "<t>");
            search_from = value_start;
        }
        normalized.push_str(&line);
        normalized.push('\n');
    }
    normalized
}

fn normalized_json(report: &Report) -> Value {
    kyro_e2e::sorted_json(
        serde_json::from_str(&normalize(&report.to_json().unwrap(), report)).unwrap(),
    )
}

#[test]
fn report_formats_are_stable() {
    let certified = certify_loaded(Defect::None);
    insta::assert_json_snapshot!("report_certified_json", normalized_json(&certified), {
        ".duration_ms" => "[ms]",
        ".checks[].duration_ms" => "[ms]",
    });
    let refused = certify_loaded(Defect::TruncatesPastCap);
    let json = normalized_json(&refused);
    let failed = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["outcome"] == "failed")
        .unwrap();
    insta::assert_json_snapshot!("report_failed_check", kyro_e2e::sorted_json(failed.clone()), {
        ".duration_ms" => "[ms]",
        ".witness.received" => "[a SearchResponse with 50 hits]",
    });
    insta::assert_snapshot!("report_refused_junit", normalize(&refused.to_junit(), &refused));
}

fn run_certify(defect: Defect, dir: &Path) -> (std::process::Output, Value, String) {
    let config_path = dir.join(format!("{}.toml", defect.name()));
    std::fs::write(
        &config_path,
        format!(
            "dimension = 16\ndistance = \"cosine\"\nfilterable_keys = [\"lang\"]\nmax_top_k = 50\nmax_fetch_ids = 50\n\
             dsn = {{ value = \"{DSN}\" }}\n"
        ),
    )
    .unwrap();
    let json_path = dir.join(format!("{}.json", defect.name()));
    let junit_path = dir.join(format!("{}.xml", defect.name()));
    let output = Command::new(kyro_binary())
        .args(["certify", "--plugin"])
        .arg(plugin_path(&fixture_package(defect)))
        .arg("--store-config")
        .arg(&config_path)
        .arg("--report-json")
        .arg(&json_path)
        .arg("--junit")
        .arg(&junit_path)
        .output()
        .unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    (output, report, std::fs::read_to_string(&junit_path).unwrap())
}

#[test]
fn kyro_certify_exits_zero_only_when_certified() {
    let dir = std::env::temp_dir().join(format!("kyro-certify-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let (output, report, junit) = run_certify(Defect::None, &dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["verdict"], "certified");
    assert_eq!(report["profile"], "fixture-reference/write_through+event_feed");
    assert_eq!(report["plugin"]["abi_version"], "1.0");
    assert!(stdout.contains("PASS scope.search_excludes_other_tenant"), "{stdout}");
    assert!(stdout.lines().last().unwrap().contains("certified"), "{stdout}");
    assert!(junit.contains("<testsuites") && junit.contains("failures=\"0\""), "{junit}");

    let (output, report, junit) = run_certify(Defect::TruncatesPastCap, &dir);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(report["verdict"], "refused");
    assert_eq!(report["failed_checks"], serde_json::json!(["bounds.top_k_cap"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("failed checks: bounds.top_k_cap"), "{stderr}");
    assert!(junit.contains("<failure"), "{junit}");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|extension| extension != "toml") {
            assert!(
                !std::fs::read_to_string(&path).unwrap().contains("s3cret-fixture-pass"),
                "{}",
                path.display()
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
