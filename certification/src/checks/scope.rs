//! `scope.*` (hand-written): poisoned neighbours of another tenant and another namespace never
//! come back from search or fetch, and empty or padded scopes are refused by the decoder.
//!
//! Which scope a returned document comes from is judged by its content (unique per scope in the
//! fixed data), never by the label it carries: a connector may stamp the request's scope on a
//! foreign row. Labels are `scope.labels_match_origin`'s business.

use std::collections::BTreeSet;

use kyro_connector_sdk::abi::unchecked;
use kyro_connector_sdk::{Scope, StoredDocument};

use super::{CheckResult, Run, abbreviate, describe_hits, fail, set, to_ids};
use crate::report::CheckStatus;
use crate::space::{Dataset, SHARED_ID};

/// Where a returned document of the fixed data comes from: `Some(alias)` of its scope, or
/// `None` when it is nothing the harness wrote.
fn origin(run: &Run<'_>, dataset: &Dataset, document: &StoredDocument) -> Option<Scope> {
    let content = document.content.as_deref()?;
    let space = &run.space;
    let seeded = [
        (&space.home, &dataset.home),
        (&space.other_tenant, &dataset.other_tenant),
        (&space.other_namespace, &dataset.other_namespace),
    ];
    seeded.into_iter().find_map(|(scope, documents)| {
        documents
            .iter()
            .any(|seeded| seeded.id() == &document.id && seeded.content() == Some(content))
            .then(|| scope.clone())
    })
}

fn search_excludes(run: &mut Run<'_>, other: &Scope) -> CheckResult {
    let home = run.space.home.clone();
    let request = run.probe_request(run.manifest.caps.max_top_k.min(10), None)?;
    let response = run.search(&home, &request)?;
    let sent = run.describe_search(&home, &request);
    let dataset = run.dataset()?;
    let expected = format!(
        "only documents of {}, although {}'s sit exactly on the probe",
        run.space.alias(&home),
        run.space.alias(other)
    );
    // Only the targeted scope's documents fail this check; anything else foreign is another
    // check's finding (the other fixed scope's, or the generated checks' for the rest).
    for hit in &response.hits {
        if origin(run, dataset, &hit.document).is_some_and(|scope| scope == *other) {
            return Err(fail(
                sent,
                format!(
                    "{} is {}'s: {}",
                    hit.document.id,
                    run.space.alias(other),
                    describe_hits(&run.space, &response)
                ),
                expected,
            ));
        }
    }
    if response.hits.is_empty() {
        return Err(fail(sent, "no hits", "the scope's seeded documents"));
    }
    Ok(())
}

pub(super) fn search_other_tenant(run: &mut Run<'_>) -> CheckResult {
    let other = run.space.other_tenant.clone();
    search_excludes(run, &other)
}

pub(super) fn search_other_namespace(run: &mut Run<'_>) -> CheckResult {
    let other = run.space.other_namespace.clone();
    search_excludes(run, &other)
}

pub(super) fn fetch(run: &mut Run<'_>) -> CheckResult {
    let home = run.space.home.clone();
    let ids = [SHARED_ID, "poison-other-tenant", "poison-other-namespace", "doc-1"];
    let documents = run.fetch(&home, &ids)?;
    let sent = run.describe_fetch(&home, &to_ids(&ids));
    let dataset = run.dataset()?;
    let received: Vec<String> = documents
        .iter()
        .map(|document| match origin(run, dataset, document) {
            Some(scope) => format!("{} of {}", document.id, run.space.alias(&scope)),
            None => format!("{} (never written with this content)", document.id),
        })
        .collect();
    let received = abbreviate(&received.join(", "));
    let expected = format!("exactly {SHARED_ID} and doc-1 of {}", run.space.alias(&home));
    let mut seen = BTreeSet::new();
    for document in &documents {
        let home_copy = origin(run, dataset, document).is_some_and(|scope| scope == home);
        if !home_copy || !seen.insert(document.id.as_str().to_owned()) {
            return Err(fail(sent, received, expected));
        }
    }
    if seen != set(&[SHARED_ID, "doc-1"]) {
        return Err(fail(sent, received, expected));
    }
    Ok(())
}

pub(super) fn empty_refused(run: &mut Run<'_>) -> CheckResult {
    let tenant = run.space.home.tenant_id().to_owned();
    let namespace = run.space.home.namespace().to_owned();
    let cases = [
        (String::new(), namespace.clone()),
        (tenant.clone(), String::new()),
        ("   ".to_owned(), namespace.clone()),
        (format!(" {tenant}"), namespace.clone()),
        (tenant.clone(), format!("{namespace}\n")),
    ];
    for (tenant_id, namespace) in &cases {
        let sent = format!(
            "fetch with tenant {} and namespace {} (bypassing the typed API)",
            describe_field(tenant_id),
            describe_field(namespace)
        );
        let payload = unchecked::fetch(tenant_id, namespace, &["doc-1"])
            .map_err(|err| CheckStatus::Error { reason: err.to_string() })?;
        run.expect_refused_at_decoder(&sent, &payload)?;
    }
    Ok(())
}

/// A scope field for a witness: empty, blank or padded is what matters, not the long name.
fn describe_field(field: &str) -> String {
    if field.trim().is_empty() {
        format!("{field:?}")
    } else if field.starts_with(' ') {
        "(the home tenant with a leading space)".to_owned()
    } else if field.ends_with('\n') {
        "(the home namespace with a trailing newline)".to_owned()
    } else {
        "(the home scope's)".to_owned()
    }
}
