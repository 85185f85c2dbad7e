//! `abi.*`: the manifest is consistent and stable, health names the store version, and the
//! private space can be seeded.

use kyro_connector_sdk::{FilterableKeys, Operation, OwnershipMode, WatermarkKind};

use super::{CheckResult, Run, describe_status, fail};
use crate::conformance::Generated;
use crate::report::CheckStatus;
use crate::space::Dataset;

/// Documents per seeding call, so no single call runs into the call timeout.
const SEED_BATCH: usize = 100;

pub(super) fn manifest_consistent(run: &mut Run<'_>) -> CheckResult {
    let manifest = &run.manifest;
    let sent = "describe";
    let mut problems = Vec::new();
    if manifest.backs(OwnershipMode::WriteThrough)
        && !(manifest.supports(Operation::Upsert) && manifest.supports(Operation::Delete))
    {
        problems.push("write_through is declared without both upsert and delete");
    }
    if manifest.watermark_kind == WatermarkKind::PerScopeNative
        && !manifest.supports(Operation::Watermark)
    {
        problems.push("a per-scope native watermark is declared without the watermark operation");
    }
    if manifest.backs(OwnershipMode::SnapshotBundle)
        && !manifest.supports(Operation::SnapshotVersion)
    {
        problems.push("snapshot_bundle is declared without the snapshot_version operation");
    }
    if manifest.ownership_modes.is_empty() {
        problems.push("no ownership mode is declared");
    }
    if manifest.vector.is_none() {
        problems.push("an opened connector must declare its vector dimension and distance");
    }
    let caps = manifest.caps;
    if caps.max_top_k == 0 || caps.max_top_k > 1000 {
        problems.push("max_top_k must be within 1..=1000");
    }
    if caps.max_filter_nodes == 0 || caps.max_filter_nodes > 256 {
        problems.push("max_filter_nodes must be within 1..=256");
    }
    if caps.max_fetch_ids == 0 || caps.max_request_bytes == 0 || caps.max_response_bytes == 0 {
        problems.push("caps must be positive");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(fail(sent, problems.join("; "), "a manifest without these contradictions"))
    }
}

pub(super) fn describe_stable(run: &mut Run<'_>) -> CheckResult {
    let again = run.connector().describe();
    if again == run.manifest {
        Ok(())
    } else {
        Err(fail("describe, twice", "two different manifests", "the same manifest both times"))
    }
}

pub(super) fn health(run: &mut Run<'_>) -> CheckResult {
    let result = run.connector().health();
    let health = run.expect_ok("health", result)?;
    if health.store_version.trim().is_empty() {
        return Err(fail(
            "health",
            "an empty store version",
            "a store version such as `PostgreSQL 15.8, pgvector 0.8.0`",
        ));
    }
    run.store_version = Some(health.store_version);
    Ok(())
}

/// Seeds the fixed checks' scopes and the generated data's scopes.
pub(super) fn seed_private_space(run: &mut Run<'_>) -> CheckResult {
    let result = seed(run);
    run.seeded = result.as_ref().map(|_| ()).map_err(describe_status);
    result
}

fn seed(run: &mut Run<'_>) -> CheckResult {
    let Some(vector) = run.manifest.vector else {
        return Err(CheckStatus::Error {
            reason: "the connector declares no vector dimension and distance".to_owned(),
        });
    };
    let key = match &run.manifest.filterable_keys {
        FilterableKeys::Listed(keys) => keys
            .iter()
            .next()
            .map_or_else(|| "kyro_cert_year".to_owned(), |key| key.as_str().to_owned()),
        FilterableKeys::AnyValidKey => "kyro_cert_year".to_owned(),
    };
    let dataset = Dataset::new(vector.dimension as usize, &key);
    let fixed = [
        (run.space.home.clone(), dataset.home.clone()),
        (run.space.other_tenant.clone(), dataset.other_tenant.clone()),
        (run.space.other_namespace.clone(), dataset.other_namespace.clone()),
    ];
    run.dataset = Some(dataset);
    for (scope, documents) in fixed {
        run.write(&scope, &documents)?;
    }
    let generated = Generated::new(
        &run.rng,
        &run.manifest,
        run.space.generated.clone(),
        run.space.generated_aliases(),
        run.sizes(),
    )
    .ok_or_else(|| CheckStatus::Error {
        reason: "the generated data could not be built for this manifest".to_owned(),
    })?;
    for (scope, documents) in generated.seed_documents() {
        for batch in documents.chunks(SEED_BATCH) {
            run.write(&scope, batch)?;
        }
    }
    let fixed = run.dataset.as_ref().map_or(0, |dataset| {
        dataset.home.len() + dataset.other_tenant.len() + dataset.other_namespace.len()
    });
    let (generated_total, primary) = generated.volume();
    run.volume = (fixed + generated_total, primary);
    run.generated = Some(generated);
    Ok(())
}
