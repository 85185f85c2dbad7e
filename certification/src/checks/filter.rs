//! `filter.*` (hand-written): semantics on the fixed data, undeclared keys refused, the injection
//! corpus matched literally, malformed keys refused by the decoder.

use kyro_connector_sdk::abi::unchecked;
use kyro_connector_sdk::{
    Embedding, ErrorKind, FilterExpr, FilterKey, FilterValue, FilterableKeys,
};

use super::{CheckResult, Run, exact, fail, set};
use crate::report::CheckStatus;
use crate::space::{SHARED_ID, unit_vector};

pub(super) fn semantics(run: &mut Run<'_>) -> CheckResult {
    let key = run.key()?;
    let range =
        |min: Option<f64>, max: Option<f64>| FilterExpr::Range { key: key.clone(), min, max };
    let in_values = |values: &[&str]| -> Result<FilterExpr, CheckStatus> {
        let values = values
            .iter()
            .map(|value| FilterValue::new(*value))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| CheckStatus::Error { reason: err.to_string() })?;
        Ok(FilterExpr::In { key: key.clone(), values })
    };
    let cases: Vec<(FilterExpr, Vec<&str>)> = vec![
        (exact(&key, "2021")?, vec!["doc-3", "doc-4"]),
        (in_values(&["2019", "2024"])?, vec!["doc-1", "doc-2", "doc-5", "doc-6"]),
        (range(Some(2020.0), None), vec!["doc-3", "doc-4", "doc-5", "doc-6"]),
        (range(None, Some(2019.0)), vec!["doc-1", "doc-2", SHARED_ID]),
        (range(Some(2020.5), Some(2023.0)), vec!["doc-3", "doc-4"]),
        (
            FilterExpr::And(vec![
                range(Some(2020.0), None),
                FilterExpr::Not(Box::new(exact(&key, "2024")?)),
            ]),
            vec!["doc-3", "doc-4"],
        ),
        (
            FilterExpr::Or(vec![exact(&key, "2019")?, exact(&key, "1999")?]),
            vec!["doc-1", "doc-2", SHARED_ID],
        ),
        (FilterExpr::Not(Box::new(in_values(&["2019", "2021", "2024"])?)), vec![SHARED_ID]),
        (exact(&key, "2020")?, vec![]),
    ];
    for (filter, expected) in cases {
        let (sent, ids) = run.filtered_home_ids(filter)?;
        let expected = set(&expected);
        if ids != expected {
            return Err(fail(sent, format!("ids {ids:?}"), format!("ids {expected:?}")));
        }
    }
    Ok(())
}

pub(super) fn undeclared_key(run: &mut Run<'_>) -> CheckResult {
    let FilterableKeys::Listed(declared) = &run.manifest.filterable_keys else {
        return Err(CheckStatus::Error { reason: "every key is filterable".to_owned() });
    };
    let candidate = (0..)
        .map(|idx| format!("kyro_cert_undeclared_{idx}"))
        .find(|key| FilterKey::new(key.clone()).is_ok_and(|key| !declared.contains(&key)));
    let key = FilterKey::new(candidate.unwrap_or_default())
        .map_err(|err| CheckStatus::Error { reason: err.to_string() })?;
    let request = run.probe_request(5, Some(exact(&key, "2021")?))?;
    let home = run.space.home.clone();
    let result = run.connector().search(&home, &request);
    let sent = run.describe_search(&home, &request);
    run.expect_error(&sent, result, ErrorKind::InvalidRequest)
}

const INJECTION_CORPUS: &str = include_str!("../../scenarios/injection_corpus.txt");

fn corpus(max_value_bytes: usize) -> Vec<String> {
    let mut values: Vec<String> = INJECTION_CORPUS
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    // An oversized value: the longest the contract allows, made of an injection pattern.
    let pattern = "' OR 1=1 -- ";
    values.push(pattern.repeat(max_value_bytes / pattern.len()));
    values
}

pub(super) fn injection_values(run: &mut Run<'_>) -> CheckResult {
    let key = run.key()?;
    for value in corpus(4096) {
        let (sent, ids) = run.filtered_home_ids(exact(&key, &value)?)?;
        if !ids.is_empty() {
            return Err(fail(sent, format!("ids {ids:?}"), "no ids: nothing holds this value"));
        }
        let values = vec![
            FilterValue::new(value.clone())
                .map_err(|err| CheckStatus::Error { reason: err.to_string() })?,
        ];
        let (sent, ids) = run.filtered_home_ids(FilterExpr::In { key: key.clone(), values })?;
        if !ids.is_empty() {
            return Err(fail(sent, format!("ids {ids:?}"), "no ids: nothing holds this value"));
        }
    }
    // The store still answers normally: nothing was dropped or rewritten.
    let (sent, ids) = run.filtered_home_ids(exact(&key, "2021")?)?;
    if ids != set(&["doc-3", "doc-4"]) {
        return Err(fail(sent, format!("after the corpus, ids {ids:?}"), "ids doc-3 and doc-4"));
    }
    Ok(())
}

pub(super) fn malformed_key(run: &mut Run<'_>) -> CheckResult {
    let dimension = run.manifest.vector.map_or(8, |vector| vector.dimension as usize);
    let embedding = Embedding::new(unit_vector(dimension, 7))
        .map_err(|err| CheckStatus::Error { reason: err.to_string() })?;
    let tenant = run.space.home.tenant_id().to_owned();
    let namespace = run.space.home.namespace().to_owned();
    for key in [
        "lang' OR 1=1 --",
        "metadata->>'tenant_id'",
        "a.b",
        "$.tenant_id",
        "",
        "ключ",
        &"k".repeat(129),
    ] {
        let sent = format!("search with filter key {key:?} (bypassing the typed API)");
        let payload = unchecked::search_with_filter_key(&tenant, &namespace, &embedding, key, "x")
            .map_err(|err| CheckStatus::Error { reason: err.to_string() })?;
        run.expect_refused_at_decoder(&sent, &payload)?;
    }
    Ok(())
}
