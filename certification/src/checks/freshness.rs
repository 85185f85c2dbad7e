//! `freshness.<mode>.*` and `freshness.watermark.*` (hand-written), each only for what the
//! connector declares: write-through ACKs and visibility, event-feed visibility of the store's
//! own writes, per-scope native watermarks, immutable snapshot versions.

use kyro_connector_sdk::{Embedding, MutationOutcome, Scope, SearchRequest};

use super::{CheckResult, Run, fail};
use crate::report::CheckStatus;
use crate::space::{SHARED_ID, document, perturbed, unit_vector};

pub(super) fn write_through_ack(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let alias = run.space.alias(&home);
    let dataset = run.dataset()?;
    let written = document(
        "wt-ack",
        unit_vector(dataset.probe.len(), 61),
        &dataset.key,
        "2000",
        "written through",
    );
    let sent = format!("upsert wt-ack into {alias}");
    for expected_outcome in [MutationOutcome::Inserted, MutationOutcome::Updated] {
        run.record_documents(&home, std::slice::from_ref(&written));
        let result = run.connector().upsert(&home, &written);
        let ack = run.expect_ok(&sent, result)?;
        if ack.scope != home
            || ack.id != *written.id()
            || ack.backend_mutation_id.trim().is_empty()
            || ack.outcome != expected_outcome
        {
            return Err(fail(
                sent,
                format!(
                    "ack for {} in {} outcome {} mutation id {:?}",
                    ack.id,
                    run.space.alias(&ack.scope),
                    ack.outcome.as_str(),
                    ack.backend_mutation_id
                ),
                format!(
                    "ack for wt-ack in {alias} outcome {} with a mutation id",
                    expected_outcome.as_str()
                ),
            ));
        }
    }
    Ok(())
}

pub(super) fn write_through_read_your_write(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let alias = run.space.alias(&home);
    let dataset = run.dataset()?;
    let vector = perturbed(&dataset.probe, &unit_vector(dataset.probe.len(), 71), 0.01);
    let key = dataset.key.clone();
    for round in 1..=3 {
        let content = format!("read-your-write round {round}");
        let written = document("wt-ryw", vector.clone(), &key, "2000", &content);
        let sent = format!("upsert wt-ryw ({content:?}) into {alias}, then fetch and search it");
        run.record_documents(&home, std::slice::from_ref(&written));
        let result = run.connector().upsert(&home, &written);
        run.expect_ok(&sent, result)?;
        let fetched = run.fetch(&home, &["wt-ryw"])?;
        if fetched.first().and_then(|document| document.content.as_deref())
            != Some(content.as_str())
        {
            return Err(fail(
                sent,
                format!(
                    "fetch saw {:?}",
                    fetched.iter().map(|document| document.content.clone()).collect::<Vec<_>>()
                ),
                format!("fetch sees {content:?}"),
            ));
        }
        let request = SearchRequest {
            embedding: Embedding::new(vector.clone())
                .map_err(|err| CheckStatus::Error { reason: err.to_string() })?,
            top_k: 1,
            filter: None,
            include_content: true,
        };
        let response = run.search(&home, &request)?;
        let top = response
            .hits
            .first()
            .map(|hit| (hit.document.id.as_str().to_owned(), hit.document.content.clone()));
        if top != Some(("wt-ryw".to_owned(), Some(content.clone()))) {
            return Err(fail(
                sent,
                format!("search saw {top:?}"),
                format!("search's top hit is wt-ryw with {content:?}"),
            ));
        }
    }
    Ok(())
}

pub(super) fn write_through_delete(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let alias = run.space.alias(&home);
    let dataset = run.dataset()?;
    let written = document(
        "wt-delete",
        unit_vector(dataset.probe.len(), 81),
        &dataset.key,
        "2000",
        "to be deleted",
    );
    let sent = format!("upsert then delete wt-delete in {alias}");
    run.record_documents(&home, std::slice::from_ref(&written));
    let result = run.connector().upsert(&home, &written);
    run.expect_ok(&sent, result)?;
    let id = written.id().clone();
    let result = run.connector().delete(&home, &id);
    let ack = run.expect_ok(&sent, result)?;
    if ack.scope != home || ack.id != id || ack.outcome != MutationOutcome::Deleted {
        return Err(fail(
            sent,
            format!(
                "ack for {} in {} outcome {}",
                ack.id,
                run.space.alias(&ack.scope),
                ack.outcome.as_str()
            ),
            format!("ack for wt-delete in {alias} outcome deleted"),
        ));
    }
    let fetched = run.fetch(&home, &["wt-delete"])?;
    if !fetched.is_empty() {
        return Err(fail(sent, "the next fetch still returned the document", "nothing"));
    }
    let result = run.connector().delete(&home, &id);
    let again = run.expect_ok(&sent, result)?;
    if again.outcome != MutationOutcome::NotFound {
        return Err(fail(
            format!("{sent}, twice"),
            format!("second ack outcome {}", again.outcome.as_str()),
            "second ack outcome not_found",
        ));
    }
    Ok(())
}

pub(super) fn write_through_confined(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let dataset = run.dataset()?;
    let replacement = document(
        SHARED_ID,
        unit_vector(dataset.probe.len(), 91),
        &dataset.key,
        "1999",
        "shared: home copy, rewritten",
    );
    let sent = format!("upsert then delete {SHARED_ID} in {}", run.space.alias(&home));
    let result = run.connector().upsert(&home, &replacement);
    run.expect_ok(&sent, result)?;
    let id = replacement.id().clone();
    let result = run.connector().delete(&home, &id);
    run.expect_ok(&sent, result)?;
    for (other, label) in [
        (run.space.other_tenant.clone(), "other tenant"),
        (run.space.other_namespace.clone(), "other namespace"),
    ] {
        let fetched = run.fetch(&other, &[SHARED_ID])?;
        let contents: Vec<Option<String>> =
            fetched.iter().map(|document| document.content.clone()).collect();
        let expected = format!("shared: {label} copy");
        if contents != [Some(expected.clone())] {
            return Err(fail(
                sent.clone(),
                format!("{} now holds {contents:?}", run.space.alias(&other)),
                format!("{} still holds {expected:?}", run.space.alias(&other)),
            ));
        }
    }
    Ok(())
}

/// A change by the store's own writers (`certification_seed`) in a scope it may touch.
pub(super) fn event_feed_external_change(run: &mut Run<'_>) -> CheckResult {
    let scope = run.space.seedable.clone();
    let alias = run.space.alias(&scope);
    let dataset = run.dataset()?;
    let (key, dimension) = (dataset.key.clone(), dataset.probe.len());
    for round in 1..=3 {
        let content = format!("external change {round}");
        run.write(
            &scope,
            &[document("ef-change", unit_vector(dimension, 95), &key, "2000", &content)],
        )?;
        let fetched = run.fetch(&scope, &["ef-change"])?;
        if fetched.first().and_then(|document| document.content.as_deref())
            != Some(content.as_str())
        {
            return Err(fail(
                format!("store write of ef-change ({content:?}) in {alias}, then fetch"),
                format!(
                    "{:?}",
                    fetched.iter().map(|document| document.content.clone()).collect::<Vec<_>>()
                ),
                format!("{content:?}"),
            ));
        }
    }
    Ok(())
}

fn watermark_of(run: &mut Run<'_>, scope: &Scope) -> Result<u64, CheckStatus> {
    let result = run.connector().watermark(scope);
    let sent = format!("watermark {}", run.space.alias(scope));
    run.expect_ok(&sent, result).map(|watermark| watermark.value())
}

fn change(run: &mut Run<'_>, scope: &Scope, label: &str) -> CheckResult {
    let dataset = run.dataset()?;
    let written = document(
        &format!("wm-{label}"),
        unit_vector(dataset.probe.len(), 97),
        &dataset.key,
        "2000",
        label,
    );
    run.write(scope, &[written])
}

pub(super) fn watermark_advances(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let alias = run.space.alias(&home);
    let before = watermark_of(run, &home)?;
    change(run, &home, "advance")?;
    let after = watermark_of(run, &home)?;
    if after > before {
        Ok(())
    } else {
        Err(fail(
            format!("watermark {alias}, write into {alias}, watermark again"),
            format!("{before} then {after}"),
            format!("a value above {before}"),
        ))
    }
}

fn watermark_stays(run: &mut Run<'_>, other: Scope) -> CheckResult {
    let home = run.space.home.clone();
    let (alias, other_alias) = (run.space.alias(&home), run.space.alias(&other));
    let before = watermark_of(run, &home)?;
    change(run, &other, "elsewhere")?;
    let after = watermark_of(run, &home)?;
    if after == before {
        Ok(())
    } else {
        Err(fail(
            format!("watermark {alias}, write into {other_alias}, watermark {alias} again"),
            format!("{before} then {after}"),
            format!("{before} both times"),
        ))
    }
}

pub(super) fn watermark_other_tenant(run: &mut Run<'_>) -> CheckResult {
    let other = run.space.other_tenant.clone();
    watermark_stays(run, other)
}

pub(super) fn watermark_other_namespace(run: &mut Run<'_>) -> CheckResult {
    let other = run.space.other_namespace.clone();
    watermark_stays(run, other)
}

pub(super) fn snapshot_immutable(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let alias = run.space.alias(&home);
    let ids = ["doc-1", "doc-2", "doc-3", SHARED_ID];
    let result = run.connector().snapshot_version(&home);
    let version = run.expect_ok(&format!("snapshot_version {alias}"), result)?;
    let first = run.fetch(&home, &ids)?;
    let second = run.fetch(&home, &ids)?;
    let result = run.connector().snapshot_version(&home);
    let version_after = run.expect_ok(&format!("snapshot_version {alias}"), result)?;
    if version == version_after && first != second {
        return Err(fail(
            format!("fetch {alias} twice under snapshot version {}", version.as_str()),
            "different content under the same version",
            "the same content",
        ));
    }
    Ok(())
}
