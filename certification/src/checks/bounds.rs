//! `bounds.*` and `ids.*` (hand-written): top_k respected, caps answered with limit_exceeded,
//! short results reported; ids written twice, unicode and 1024-byte ids.

use std::collections::BTreeSet;

use kyro_connector_sdk::{DocumentId, ErrorKind, ShortfallReason};

use super::{CheckResult, Run, abbreviate, describe_hits, exact, fail, set};
use crate::space::{document, unit_vector};

pub(super) fn top_k_respected(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let request = run.probe_request(2, None)?;
    let response = run.search(&home, &request)?;
    if response.hits.len() == 2 {
        Ok(())
    } else {
        Err(fail(
            run.describe_search(&home, &request),
            describe_hits(&run.space, &response),
            "2 hits: the scope holds 7 documents",
        ))
    }
}

pub(super) fn top_k_cap(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let request = run.probe_request(run.manifest.caps.max_top_k + 1, None)?;
    let result = run.connector().search(&home, &request);
    let sent = run.describe_search(&home, &request);
    run.expect_error(&sent, result, ErrorKind::LimitExceeded)
}

pub(super) fn fetch_cap(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let n_ids = run.manifest.caps.max_fetch_ids as usize + 1;
    let ids: Vec<DocumentId> =
        (0..n_ids).filter_map(|idx| DocumentId::new(format!("doc-{idx}")).ok()).collect();
    let result = run.connector().fetch(&home, &ids);
    run.expect_error(
        &format!("fetch {} with {n_ids} ids (cap {})", run.space.alias(&home), n_ids - 1),
        result,
        ErrorKind::LimitExceeded,
    )
}

pub(super) fn short_result(run: &mut Run<'_>) -> CheckResult {
    let key = run.key()?;
    let home = run.space.home.clone();
    let request =
        run.probe_request(5.min(run.manifest.caps.max_top_k), Some(exact(&key, "2021")?))?;
    let response = run.search(&home, &request)?;
    let sent = run.describe_search(&home, &request);
    let expected = "2 hits and a shortfall report of 2 returned for the top_k requested";
    match &response.shortfall {
        Some(shortfall)
            if shortfall.requested == request.top_k
                && shortfall.returned == 2
                && response.hits.len() == 2 =>
        {
            if request.top_k > 2
                || matches!(
                    shortfall.reason,
                    ShortfallReason::Exhausted | ShortfallReason::IndexScanLimit { .. }
                )
            {
                Ok(())
            } else {
                Err(fail(sent, format!("{shortfall:?}"), expected))
            }
        }
        Some(shortfall) => Err(fail(
            sent,
            format!("{}; shortfall {shortfall:?}", describe_hits(&run.space, &response)),
            expected,
        )),
        None if request.top_k <= 2 => Ok(()),
        None => Err(fail(
            sent,
            format!("{} and no shortfall report", describe_hits(&run.space, &response)),
            expected,
        )),
    }
}

pub(super) fn ids_idempotent(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let dataset = run.dataset()?;
    let (key, probe) = (dataset.key.clone(), dataset.probe.clone());
    let dimension = probe.len();
    let first = document("twice", unit_vector(dimension, 41), &key, "2000", "first write");
    let second = document("twice", unit_vector(dimension, 42), &key, "2000", "second write");
    run.write(&home, &[first])?;
    run.write(&home, &[second])?;
    let documents = run.fetch(&home, &["twice"])?;
    let contents: Vec<&str> =
        documents.iter().map(|document| document.content.as_deref().unwrap_or("")).collect();
    if contents == ["second write"] {
        Ok(())
    } else {
        Err(fail(
            format!("write id \"twice\" into {} twice, then fetch it", run.space.alias(&home)),
            format!("contents {contents:?}"),
            "contents [\"second write\"]",
        ))
    }
}

pub(super) fn ids_unicode_and_long(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let dataset = run.dataset()?;
    let (key, dimension) = (dataset.key.clone(), dataset.probe.len());
    let unicode = "ドキュメント-ü-🚀-id";
    let long = format!("long-{}", "x".repeat(1019));
    let documents = [
        document(unicode, unit_vector(dimension, 51), &key, "2000", "unicode id"),
        document(&long, unit_vector(dimension, 52), &key, "2000", "long id"),
    ];
    run.write(&home, &documents)?;
    let fetched = run.fetch(&home, &[unicode, &long])?;
    let ids: BTreeSet<String> =
        fetched.iter().map(|document| document.id.as_str().to_owned()).collect();
    if ids == set(&[unicode, &long]) {
        Ok(())
    } else {
        Err(fail(
            format!(
                "write and fetch ids {unicode:?} and a 1024-byte id in {}",
                run.space.alias(&home)
            ),
            format!("ids {:?}", ids.iter().map(|id| abbreviate(id)).collect::<Vec<_>>()),
            "both ids, byte for byte",
        ))
    }
}
