//! The certification harness proves it can say no: the reference store certifies, and every
//! fixture with one defect is refused by the check that names that defect, both opened
//! in-process and loaded as a cdylib, with a witness and with no secret in any output. `kyro
//! certify` is exercised as a process. The report's formats are snapshotted.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use kyro_certification::{
    CheckStatus, Depth, Opened, Options, PluginIdentity, Report, Verdict, certify_with,
};
use kyro_connector_sdk::{Connector, ConnectorConfig, HostContext};
use kyro_e2e::{fixture_package, kyro_binary, plugin_path, temp_dir};
use kyro_fixture_support::Defect;
use kyro_host::stores::certify::certify_plugin;
use serde_json::Value;

const PASSWORD: &str = "s3cret-fixture-pass";
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

fn options(seed: Option<u64>) -> Options {
    Options { depth: Depth::Standard, seed, call_timeout: Duration::from_secs(10), budget: None }
}

/// Every fixture certification refuses, except the slow one (a minute per run; its own test).
const REFUSED: [Defect; 20] = [
    Defect::IgnoresNamespace,
    Defect::LeaksTenantOnFetch,
    Defect::ConcatenatesFilterText,
    Defect::GlobalWatermark,
    Defect::AcksBeforeVisible,
    Defect::TruncatesPastCap,
    Defect::EchoesDsn,
    Defect::EmptySuccessForUnsupported,
    Defect::PanicsOnNonAscii,
    Defect::LeaksWithOrGroup,
    Defect::LeaksAboveTopK20,
    Defect::LeaksForUnprefixedTenants,
    Defect::DuplicatesWhenFull,
    Defect::AscendingWhenFull,
    Defect::ExhaustedAfterTen,
    Defect::AckNamespaceOfFirstWrite,
    Defect::AckWatermarkOfAnotherScope,
    Defect::StaleOnFilteredSearch,
    Defect::PanicsWithPasswordAboveTopK20,
    Defect::PanicsWithPasswordAlone,
];

fn certify_in_process(defect: Defect, options: Options) -> Report {
    let open = |config: &ConnectorConfig, host: HostContext| {
        let connector: Arc<dyn Connector> =
            Arc::from(kyro_fixture_support::open_in_process(defect, config, host)?);
        let target = Arc::clone(&connector);
        Ok(Opened {
            connector,
            raw_call: Arc::new(move |payload: &[u8]| {
                kyro_connector_sdk::abi::dispatch_raw(target.as_ref(), payload)
            }),
        })
    };
    let plugin = PluginIdentity {
        name: format!("fixture-{}", defect.name()),
        version: "0.1.0".to_owned(),
        sdk_version: kyro_connector_sdk::SDK_VERSION.to_owned(),
        abi_version: "in-process".to_owned(),
        sha256: None,
        path: None,
    };
    certify_with(plugin, &config(), &open, options, &mut |_| {}).unwrap()
}

fn certify_loaded(defect: Defect, options: Options) -> Report {
    certify_plugin(&plugin_path(&fixture_package(defect)), &config(), options, &mut |_| {}).unwrap()
}

/// Every line a person would read: the live lines and the summary.
fn text(report: &Report) -> String {
    let lines: Vec<String> = report.checks.iter().map(|check| check.to_line()).collect();
    format!("{}\n{}", lines.join("\n"), report.summary_line())
}

fn assert_refused_by_the_right_check(defect: Defect, report: &Report, how: &str) {
    let context = format!("{how} {defect:?} (seed {}):\n{}", report.seed, text(report));
    assert_eq!(report.verdict, Verdict::Refused, "{context}");
    let failed: Vec<(&str, bool)> = report
        .checks
        .iter()
        .filter(|check| check.status.as_str() == "failed")
        .map(|check| (check.id, check.follows_from.is_some()))
        .collect();
    let problems = defect.expected().problems(&failed);
    assert!(problems.is_empty(), "{problems:?}: {context}");
    for check in &report.checks {
        let CheckStatus::Failed { witness } = &check.status else { continue };
        assert!(
            !witness.sent.is_empty()
                && !witness.received.is_empty()
                && !witness.expected.is_empty(),
            "{} has an incomplete witness: {context}",
            check.id
        );
        for field in [&witness.sent, &witness.received, &witness.expected] {
            assert!(field.len() <= 1100, "{} has an oversized witness field: {context}", check.id);
        }
    }
    assert_no_secret(&format!("{how} {defect:?}"), report);
}

fn assert_no_secret(what: &str, report: &Report) {
    for (format, output) in
        [("json", report.to_json().unwrap()), ("junit", report.to_junit()), ("lines", text(report))]
    {
        assert!(!output.contains(PASSWORD), "{what} leaked the DSN password into its {format}");
        assert!(
            !output.contains("kc!p@ss") && !output.contains("kc%21p%40ss"),
            "{what} leaked a canary into its {format}"
        );
        assert!(!output.contains("kcuser"), "{what} leaked the canary user into its {format}");
    }
}

fn assert_certified(report: &Report, how: &str) {
    assert_eq!(report.verdict, Verdict::Certified, "{how}: {}", text(report));
    assert_eq!(report.summary.failed + report.summary.errors, 0);
    assert!(report.summary.passed >= 45, "{how}: too few checks ran: {}", report.summary_line());
    assert!(report.cleanup.complete, "{how}: {}", report.cleanup.detail);
    assert!(report.cleanup.left_behind.is_empty());
    assert_no_secret(how, report);
}

#[test]
fn the_reference_store_is_certified_in_process_and_loaded() {
    assert_certified(&certify_in_process(Defect::None, options(None)), "in-process");
    assert_certified(&certify_loaded(Defect::None, options(None)), "loaded");
}

#[test]
fn every_defect_fixture_is_refused_in_process_by_its_check() {
    for defect in REFUSED {
        assert_refused_by_the_right_check(
            defect,
            &certify_in_process(defect, options(None)),
            "in-process",
        );
    }
}

#[test]
fn every_defect_fixture_is_refused_as_a_loaded_cdylib_by_its_check() {
    for defect in REFUSED {
        assert_refused_by_the_right_check(defect, &certify_loaded(defect, options(None)), "loaded");
    }
}

#[test]
fn a_connector_that_stamps_the_request_scope_while_its_query_leaks_is_caught() {
    let report = certify_loaded(Defect::StampsRequestScope, options(None));
    assert_refused_by_the_right_check(Defect::StampsRequestScope, &report, "loaded");
    let labels =
        report.checks.iter().find(|check| check.id == "scope.labels_match_origin").unwrap();
    // The stamped label is what a label-trusting check would have believed; the harness judged
    // the hit by which document it is, and the label check says so too.
    assert_eq!(labels.status.as_str(), "failed", "{}", text(&report));
    assert_eq!(labels.follows_from, Some("scope.generated_search_confined"));
}

#[test]
fn a_panicking_connector_is_quarantined_and_the_rest_of_the_run_follows_from_the_panic() {
    let report = certify_loaded(Defect::PanicsWithPasswordAlone, options(None));
    let panicked =
        report.checks.iter().find(|check| check.id == "abi.generated_requests_answered").unwrap();
    assert!(format!("{:?}", panicked.status).contains("panicked"), "{:?}", panicked.status);
    assert!(!report.error_checks.is_empty(), "checks after the quarantine could not run");
    for check in report.checks.iter().filter(|check| check.status.as_str() == "error") {
        assert_eq!(
            check.follows_from,
            Some("abi.generated_requests_answered"),
            "{} does not say it follows from the panic",
            check.id
        );
    }
    assert!(!report.cleanup.complete);
    assert!(report.cleanup.detail.contains("quarantined"), "{}", report.cleanup.detail);
    assert!(report.cleanup.left_behind.iter().all(|left| left.reason.contains("quarantined")));
}

#[test]
fn a_seed_reproduces_the_same_generated_requests_and_witnesses() {
    let first = certify_in_process(Defect::LeaksWithOrGroup, options(None));
    let again = certify_in_process(Defect::LeaksWithOrGroup, options(Some(first.seed)));
    assert_eq!(again.seed, first.seed);
    let witnesses = |report: &Report| -> Vec<String> {
        report
            .checks
            .iter()
            .map(|check| format!("{} {:?} {:?}", check.id, check.status, check.follows_from))
            .collect()
    };
    assert_eq!(witnesses(&first), witnesses(&again));
    // The scope names are new for every run, whatever the seed: no run meets another's data.
    assert_ne!(first.space.scopes, again.space.scopes);
}

/// The JUnit text with what changes from run to run (seed, hash, path, times) replaced, so it
/// can be snapshotted.
fn normalize_junit(report: &Report) -> String {
    let mut text = report.to_junit();
    text = text.replace(
        &format!("name=\"seed\" value=\"{}\"", report.seed),
        "name=\"seed\" value=\"<seed>\"",
    );
    if let Some(sha) = &report.plugin.sha256 {
        text = text.replace(sha.as_str(), "<sha256>");
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

/// The JSON report with what changes from run to run (seed, scope names, hash, path, times)
/// replaced, so it can be snapshotted.
fn normalized_json(report: &Report) -> Value {
    let mut json: Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    json["seed"] = Value::from("<seed>");
    json["started_at"] = Value::from("<started_at>");
    for scope in json["space"]["scopes"].as_array_mut().unwrap() {
        scope["tenant_id"] = Value::from("<tenant>");
        scope["namespace"] = Value::from("<namespace>");
    }
    if json["plugin"]["sha256"].is_string() {
        json["plugin"]["sha256"] = Value::from("<sha256>");
        json["plugin"]["path"] = Value::from("<path>");
    }
    kyro_e2e::sorted_json(json)
}

#[test]
fn report_formats_are_stable() {
    // Fixed seeds: what the generated program does (and so how much cleanup removes) is the
    // seed's; everything else that varies is normalized.
    let certified = certify_loaded(Defect::None, options(Some(14)));
    insta::assert_json_snapshot!("report_certified_json", normalized_json(&certified), {
        ".duration_ms" => "[ms]",
        ".checks[].duration_ms" => "[ms]",
        ".latency[].calls" => "[n]",
        ".latency[].p50_us" => "[us]",
        ".latency[].p99_us" => "[us]",
        ".latency[].max_us" => "[us]",
        ".cleanup.duration_ms" => "[ms]",
    });
    let refused = certify_loaded(Defect::TruncatesPastCap, options(Some(14)));
    let json = normalized_json(&refused);
    let failed = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["outcome"] == "failed")
        .unwrap();
    insta::assert_json_snapshot!("report_failed_check", kyro_e2e::sorted_json(failed.clone()), {
        ".duration_ms" => "[ms]",
    });
    insta::assert_snapshot!("report_refused_junit", normalize_junit(&refused));
    // A generated failure, its shrunk witness and the failures that follow from it, at a fixed
    // seed so the generated requests are the same every time.
    let leaking = certify_loaded(Defect::StampsRequestScope, options(Some(14)));
    let json = normalized_json(&leaking);
    let generated: Vec<Value> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|check| {
            check["outcome"] == "failed" && check["id"].as_str().unwrap().contains("generated")
                || check["id"] == "scope.labels_match_origin"
        })
        .cloned()
        .collect();
    insta::assert_json_snapshot!("report_generated_failures", generated, {
        "[].duration_ms" => "[ms]",
    });
}

fn write_store_config(dir: &Path, defect: Defect, extra: &str) -> std::path::PathBuf {
    let config_path = dir.join(format!("{}.toml", defect.name()));
    std::fs::write(
        &config_path,
        format!(
            "dimension = 16\ndistance = \"cosine\"\nfilterable_keys = [\"lang\"]\nmax_top_k = 50\nmax_fetch_ids = 50\n\
             dsn = {{ value = \"{DSN}\" }}\n{extra}"
        ),
    )
    .unwrap();
    config_path
}

fn run_certify(
    defect: Defect,
    dir: &Path,
    extra_config: &str,
    args: &[&str],
) -> (std::process::Output, Value, String) {
    let config_path = write_store_config(dir, defect, extra_config);
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
        .args(args)
        .output()
        .unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    (output, report, std::fs::read_to_string(&junit_path).unwrap())
}

/// No part of the DSN in anything `kyro certify` wrote or printed.
fn assert_outputs_clean(dir: &Path, output: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for (what, text) in [("stdout", stdout.as_ref()), ("stderr", stderr.as_ref())] {
        assert!(!text.contains(PASSWORD), "the password reached {what}:\n{text}");
        assert!(
            !text.contains("kc!p@ss") && !text.contains("kc%21p%40ss"),
            "a canary reached {what}"
        );
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|extension| extension != "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(!text.contains(PASSWORD), "the password reached {}", path.display());
        }
    }
}

#[test]
fn kyro_certify_exits_zero_only_when_certified() {
    let dir = temp_dir("certify-cli");

    let (output, report, junit) = run_certify(Defect::None, &dir, "", &[]);
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
    assert_eq!(report["depth"], "standard");
    assert_eq!(report["call_timeout_ms"], 5000);
    assert!(stdout.contains("PASS scope.generated_search_confined"), "{stdout}");
    assert!(stdout.lines().last().unwrap().contains("certified"), "{stdout}");
    assert!(junit.contains("<testsuites") && junit.contains("failures=\"0\""), "{junit}");

    let (output, report, junit) = run_certify(Defect::TruncatesPastCap, &dir, "", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(report["verdict"], "refused");
    assert_eq!(report["failed_checks"], serde_json::json!(["bounds.top_k_cap"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("failed checks: bounds.top_k_cap"), "{stderr}");
    assert!(junit.contains("<failure") && junit.contains("expected: "), "{junit}");
    assert_outputs_clean(&dir, &output);
}

#[test]
fn kyro_certify_reproduces_a_seed_and_runs_deeper_on_request() {
    let dir = temp_dir("certify-seed");
    let (output, report, _) =
        run_certify(Defect::LeaksWithOrGroup, &dir, "", &["--seed", "7", "--depth", "deep"]);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stdout));
    assert_eq!(report["seed"], 7);
    assert_eq!(report["depth"], "deep");
    assert!(report["space"]["primary_scope_documents"].as_u64().unwrap() >= 50, "{report}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.lines().last().unwrap().contains("seed 7, depth deep"), "{stdout}");
}

#[test]
fn kyro_certify_prints_no_part_of_a_secret_when_a_connector_panics_with_it() {
    for defect in
        [Defect::PanicsWithPasswordAlone, Defect::PanicsWithPasswordAboveTopK20, Defect::EchoesDsn]
    {
        let dir = temp_dir("certify-secrets");
        let (output, report, _) = run_certify(defect, &dir, "", &[]);
        assert_eq!(output.status.code(), Some(1), "{defect:?}");
        let failed = report["failed_checks"].as_array().unwrap();
        assert!(
            failed.contains(&Value::from("redaction.no_secret_in_errors")),
            "{defect:?}: {failed:?}"
        );
        assert_outputs_clean(&dir, &output);
    }
}

#[test]
fn kyro_certify_refuses_a_store_whose_calls_take_most_of_the_call_timeout() {
    let dir = temp_dir("certify-latency");
    let (output, report, _) = run_certify(
        Defect::SlowCalls,
        &dir,
        "[fixture]\ncall_timeout_ms = 100\n",
        &["--call-timeout-ms", "100"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stdout));
    // Every call the harness timed took 80% of the timeout; on a loaded machine one may pass
    // the timeout and quarantine the connector, so which operations were timed varies, but
    // every one that was is refused by its latency check, and nothing else fails.
    let failed: Vec<&str> =
        report["failed_checks"].as_array().unwrap().iter().map(|id| id.as_str().unwrap()).collect();
    assert!(!failed.is_empty() && failed.iter().all(|id| id.starts_with("latency.")), "{failed:?}");
    for latency in report["latency"].as_array().unwrap() {
        let operation = latency["operation"].as_str().unwrap();
        assert!(latency["p50_us"].as_u64().unwrap() >= 75_000, "{latency}");
        assert_eq!(latency["p99_budget_us"], 50_000);
        if operation != "snapshot_version" {
            assert!(failed.contains(&format!("latency.{operation}").as_str()), "{failed:?}");
        }
    }
}
