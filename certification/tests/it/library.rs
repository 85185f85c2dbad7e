//! `certify_connector` on the reference store (certified) and on defect fixtures (refused by the
//! check that names the defect), in-process, as an author's test would call it.

use std::time::Duration;

use kyro_certification::{Depth, Options, Report, Verdict, certify_connector};
use kyro_fixture_support::{Fixture, Reference};
use serde_json::{Value, json};

const PASSWORD: &str = "s3cret-library-pass";

fn config() -> Value {
    json!({
        "dimension": 16,
        "distance": "cosine",
        "filterable_keys": ["lang", "year"],
        "max_top_k": 50,
        "max_fetch_ids": 50,
        "dsn": { "value": format!("postgres://kyro:{PASSWORD}@127.0.0.1:5432/kyro") },
    })
}

fn options() -> Options {
    Options {
        depth: Depth::Standard,
        seed: None,
        call_timeout: Duration::from_secs(5),
        budget: None,
    }
}

fn text(report: &Report) -> String {
    let lines: Vec<String> = report.checks.iter().map(|check| check.to_line()).collect();
    format!("{}\n{}", lines.join("\n"), report.summary_line())
}

#[test]
fn the_reference_store_certifies_through_the_library_call() {
    let report = certify_connector::<Reference>(&config(), options()).unwrap();
    assert_eq!(report.verdict, Verdict::Certified, "{}", text(&report));
    assert_eq!(report.plugin.abi_version, "in-process");
    assert!(report.cleanup.complete, "{}", report.cleanup.detail);
    assert!(!report.to_json().unwrap().contains(PASSWORD));
}

#[test]
fn a_defect_fixture_is_refused_through_the_library_call() {
    let report = certify_connector::<Fixture<24>>(&config(), options()).unwrap();
    assert_eq!(report.verdict, Verdict::Refused, "{}", text(&report));
    assert!(report.failed_checks.contains(&"scope.generated_search_confined"), "{}", text(&report));
}

/// Certifies the fixture `N` with `seed` and returns what is wrong with how it was refused.
fn refusal_problems<const N: u8>(seed: u64) -> Vec<String> {
    let defect = kyro_fixture_support::Defect::from_code(N);
    let mut options = options();
    options.seed = Some(seed);
    let report = certify_connector::<Fixture<N>>(&config(), options).unwrap();
    let failed: Vec<(&str, bool)> = report
        .checks
        .iter()
        .filter(|check| check.status.as_str() == "failed")
        .map(|check| (check.id, check.follows_from.is_some()))
        .collect();
    let mut problems = defect.expected().problems(&failed);
    if report.verdict != Verdict::Refused {
        problems.push(format!("verdict {}", report.verdict.as_str()));
    }
    if report.to_json().unwrap().contains(PASSWORD) {
        problems.push("the password reached the report".to_owned());
    }
    problems.into_iter().map(|problem| format!("{defect:?} seed {seed}: {problem}")).collect()
}

#[test]
fn every_defect_fixture_is_refused_by_its_check_whatever_the_seed() {
    let mut problems = Vec::new();
    for seed in [1, 2, 3, 42, 4242] {
        for found in [
            refusal_problems::<1>(seed),
            refusal_problems::<2>(seed),
            refusal_problems::<3>(seed),
            refusal_problems::<4>(seed),
            refusal_problems::<5>(seed),
            refusal_problems::<6>(seed),
            refusal_problems::<7>(seed),
            refusal_problems::<8>(seed),
            refusal_problems::<9>(seed),
            refusal_problems::<12>(seed),
            refusal_problems::<13>(seed),
            refusal_problems::<14>(seed),
            refusal_problems::<15>(seed),
            refusal_problems::<16>(seed),
            refusal_problems::<17>(seed),
            refusal_problems::<18>(seed),
            refusal_problems::<19>(seed),
            refusal_problems::<20>(seed),
            refusal_problems::<22>(seed),
            refusal_problems::<23>(seed),
            refusal_problems::<24>(seed),
        ] {
            problems.extend(found);
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
