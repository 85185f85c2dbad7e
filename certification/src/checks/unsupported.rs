//! `unsupported.*`: every undeclared operation answers `unsupported`, never an empty success.

use kyro_connector_sdk::{Embedding, ErrorKind, SearchRequest};

use super::{Answer, CheckResult, Run, to_ids};
use crate::report::CheckStatus;
use crate::space::{document, unit_vector};

fn expect_unsupported<T: Answer>(
    run: &mut Run<'_>,
    operation: &str,
    result: kyro_connector_sdk::Result<T>,
) -> CheckResult {
    let alias = run.space.alias(&run.space.home);
    run.expect_error(
        &format!("{operation} in {alias} (not declared)"),
        result,
        ErrorKind::Unsupported,
    )
}

pub(super) fn search(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let dimension = run.manifest.vector.map_or(8, |vector| vector.dimension as usize);
    let request = SearchRequest {
        embedding: Embedding::new(unit_vector(dimension, 3))
            .map_err(|err| CheckStatus::Error { reason: err.to_string() })?,
        top_k: 1,
        filter: None,
        include_content: false,
    };
    let result = run.connector().search(&home, &request);
    expect_unsupported(run, "search", result)
}

pub(super) fn fetch(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let result = run.connector().fetch(&home, &to_ids(&["doc-1"]));
    expect_unsupported(run, "fetch", result)
}

pub(super) fn upsert(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let dimension = run.manifest.vector.map_or(8, |vector| vector.dimension as usize);
    let written = document(
        "unsupported-upsert",
        unit_vector(dimension, 5),
        "kyro_cert_year",
        "2000",
        "must not be written",
    );
    let result = run.connector().upsert(&home, &written);
    expect_unsupported(run, "upsert", result)
}

pub(super) fn delete(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let result = run.connector().delete(&home, &to_ids(&["doc-1"])[0]);
    expect_unsupported(run, "delete", result)
}

pub(super) fn watermark(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let result = run.connector().watermark(&home);
    expect_unsupported(run, "watermark", result)
}

pub(super) fn snapshot_version(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let result = run.connector().snapshot_version(&home);
    expect_unsupported(run, "snapshot_version", result)
}
