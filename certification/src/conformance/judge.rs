//! Comparing one answer with what the oracle says it must be. Each finding names the property it
//! breaks; the runner decides which finding of an answer is the root and which follow from it.

use std::collections::{BTreeMap, BTreeSet};

use kyro_connector_sdk::{
    DocumentId, MutationAck, MutationOutcome, SearchRequest, SearchResponse, ShortfallReason,
    StoredDocument,
};

use super::Property;
use super::describe::{self, WITNESS_FIELD_CAP, cap};
use super::model::{Model, Origin};

/// How far apart two similarities may be and still count as equal: stores compute in `f32`.
const SIMILARITY_TOLERANCE: f64 = 1e-4;

/// One broken property in one answer.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub(crate) property: Property,
    pub(crate) received: String,
    pub(crate) expected: String,
}

fn finding(property: Property, received: String, expected: String) -> Finding {
    Finding {
        property,
        received: cap(&received, WITNESS_FIELD_CAP),
        expected: cap(&expected, WITNESS_FIELD_CAP),
    }
}

/// What the ids in a read mean to the run: which were written by its mutations.
pub(crate) struct ReadContext<'a> {
    /// Ids a mutation of the run wrote or deleted in the request's scope.
    pub(crate) mutated_here: &'a BTreeSet<String>,
    /// Ids a mutation of the run targeted in any scope; set only for the final audit, whose
    /// findings on them are mutation-confinement findings.
    pub(crate) audit_targets: Option<&'a BTreeSet<String>>,
}

impl ReadContext<'_> {
    /// The property a finding about `id` belongs to in this read.
    fn property(&self, id: &str, property: Property) -> Property {
        match self.audit_targets {
            Some(targets) if targets.contains(id) => Property::MutationsConfined,
            _ => property,
        }
    }
}

fn origin_checks(
    model: &Model,
    scope_idx: usize,
    document: &StoredDocument,
    position: &str,
    confined: Property,
    context: &ReadContext<'_>,
    findings: &mut Vec<Finding>,
) -> Origin {
    let origin = model.identify(scope_idx, document);
    let id = document.id.as_str();
    let this = describe::returned(model, scope_idx, document);
    match origin {
        Origin::Home(_) => {}
        Origin::Foreign(doc_idx) => findings.push(finding(
            context.property(id, confined),
            format!("{position} {this}"),
            format!(
                "only documents of {}; this is {}'s",
                model.alias(scope_idx),
                model.alias(model.doc(doc_idx).scope)
            ),
        )),
        Origin::Unknown => findings.push(finding(
            context.property(id, confined),
            format!("{position} {this}"),
            format!("only documents written into {}", model.alias(scope_idx)),
        )),
        Origin::Stale(doc_idx) => {
            let expected = match model.current(scope_idx, id) {
                Some(current) => {
                    format!("the current version {}", describe::expected_doc(model, current))
                }
                None => format!("nothing: {:?} was deleted from {}", id, model.alias(scope_idx)),
            };
            let _ = doc_idx;
            findings.push(finding(
                context.property(id, Property::Fresh),
                format!("{position} {this}"),
                expected,
            ));
        }
    }
    if let Origin::Home(doc_idx) | Origin::Foreign(doc_idx) | Origin::Stale(doc_idx) = origin {
        let origin_scope = model.doc(doc_idx).scope;
        if model.scope_index(&document.scope) != Some(origin_scope) {
            findings.push(finding(
                Property::LabelsHonest,
                format!("{position} {this}"),
                format!("the label {}, where the document comes from", model.alias(origin_scope)),
            ));
        }
    }
    origin
}

fn duplicates<'a>(ids: impl Iterator<Item = &'a DocumentId>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut repeated = Vec::new();
    for id in ids {
        if !seen.insert(id.as_str()) {
            repeated.push(format!("{:?}", id.as_str()));
        }
    }
    repeated
}

/// Judges a search answer in `scope_idx`.
pub(crate) fn search(
    model: &Model,
    scope_idx: usize,
    request: &SearchRequest,
    response: &SearchResponse,
    context: &ReadContext<'_>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let filter = request.filter.as_ref().map(|filter| filter.root());
    let expected = model.expected_search(scope_idx, request.embedding.as_slice(), filter);
    let n_matches = expected.len();
    let top_k = request.top_k as usize;
    let rendered: Vec<String> = response
        .hits
        .iter()
        .map(|hit| {
            format!("{} {:.4}", describe::returned(model, scope_idx, &hit.document), hit.score)
        })
        .collect();
    let received = describe::list(&rendered);
    let mut similarities: Vec<(usize, f64)> = Vec::new();
    for (hit_idx, hit) in response.hits.iter().enumerate() {
        let position = format!("hit #{}", hit_idx + 1);
        let origin = origin_checks(
            model,
            scope_idx,
            &hit.document,
            &position,
            Property::SearchConfined,
            context,
            &mut findings,
        );
        if let Origin::Home(doc_idx) | Origin::Foreign(doc_idx) | Origin::Stale(doc_idx) = origin {
            similarities.push((
                hit_idx,
                model.similarity(request.embedding.as_slice(), &model.doc(doc_idx).vector),
            ));
        }
        if let (Origin::Home(doc_idx), Some(filter)) = (origin, filter)
            && !super::model::matches(filter, &model.doc(doc_idx).metadata)
        {
            let doc = model.doc(doc_idx);
            findings.push(finding(
                Property::FilterExact,
                format!("{position} {:?} with metadata {:?}", doc.id, doc.metadata),
                format!("only documents matching {}", describe::filter(filter)),
            ));
        }
    }
    let repeated = duplicates(response.hits.iter().map(|hit| &hit.document.id));
    if !repeated.is_empty() {
        findings.push(finding(
            Property::NoDuplicates,
            format!("{} (repeated: {})", received, repeated.join(", ")),
            "every id at most once".to_owned(),
        ));
    }
    order_findings(response, &similarities, &received, &mut findings);
    size_findings(request, response, n_matches, &received, &mut findings);
    let _ = top_k;
    findings
}

fn order_findings(
    response: &SearchResponse,
    similarities: &[(usize, f64)],
    received: &str,
    findings: &mut Vec<Finding>,
) {
    for pair in response.hits.windows(2) {
        let (higher, lower) = (pair[0].score, pair[1].score);
        let tolerance = 1e-6 * f32::max(1.0, higher.abs());
        if higher.is_nan() || lower.is_nan() || higher + tolerance < lower {
            findings.push(finding(
                Property::Sorted,
                format!("scores not descending: {received}"),
                "hits ordered by score, highest first".to_owned(),
            ));
            return;
        }
    }
    for pair in similarities.windows(2) {
        let ((first_idx, first), (second_idx, second)) = (pair[0], pair[1]);
        if first + SIMILARITY_TOLERANCE < second {
            findings.push(finding(
                Property::Sorted,
                format!(
                    "hit #{} (similarity {first:.4} to the query) ranks above hit #{} ({second:.4}): {received}",
                    first_idx + 1,
                    second_idx + 1
                ),
                "hits ordered from the nearest to the query".to_owned(),
            ));
            return;
        }
    }
}

fn size_findings(
    request: &SearchRequest,
    response: &SearchResponse,
    n_matches: usize,
    received: &str,
    findings: &mut Vec<Finding>,
) {
    let top_k = request.top_k as usize;
    let n_hits = response.hits.len();
    let should = n_matches.min(top_k);
    let expected = format!(
        "{should} hits ({n_matches} documents of the scope match, top_k {top_k}){}",
        if n_matches < top_k { ", and a shortfall report (exhausted)" } else { "" }
    );
    let mut problem = |what: String| {
        findings.push(finding(
            Property::ResultSize,
            format!("{what}: {received}"),
            expected.clone(),
        ));
    };
    if n_hits > top_k {
        problem(format!("{n_hits} hits for top_k {top_k}"));
        return;
    }
    match &response.shortfall {
        None if n_hits < top_k => problem(format!("{n_hits} hits and no shortfall report")),
        None => {}
        Some(shortfall) => {
            if n_hits == top_k {
                problem(format!("a full list with a shortfall report {shortfall:?}"));
            } else if shortfall.requested != request.top_k || shortfall.returned as usize != n_hits
            {
                problem(format!(
                    "a shortfall report of {} of {} for {n_hits} hits",
                    shortfall.returned, shortfall.requested
                ));
            } else if shortfall.reason == ShortfallReason::Exhausted && n_hits != should {
                problem(format!("{n_hits} hits reported as exhausted"));
            } else if n_hits > should {
                problem(format!("{n_hits} hits"));
            }
        }
    }
}

/// Judges a fetch answer in `scope_idx` for `ids`.
pub(crate) fn fetch(
    model: &Model,
    scope_idx: usize,
    ids: &[DocumentId],
    documents: &[StoredDocument],
    context: &ReadContext<'_>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let rendered: Vec<String> =
        documents.iter().map(|document| describe::returned(model, scope_idx, document)).collect();
    let received = describe::list(&rendered);
    let mut returned_home = BTreeSet::new();
    for (doc_idx, document) in documents.iter().enumerate() {
        let position = format!("document #{}", doc_idx + 1);
        let origin = origin_checks(
            model,
            scope_idx,
            document,
            &position,
            Property::FetchConfined,
            context,
            &mut findings,
        );
        if matches!(origin, Origin::Home(_)) {
            returned_home.insert(document.id.as_str().to_owned());
        }
        if !ids.contains(&document.id) {
            findings.push(finding(
                context.property(document.id.as_str(), Property::FetchConfined),
                format!("{position} {:?}, which was not asked for", document.id.as_str()),
                "only the ids asked for".to_owned(),
            ));
        }
    }
    let repeated = duplicates(documents.iter().map(|document| &document.id));
    if !repeated.is_empty() {
        findings.push(finding(
            Property::NoDuplicates,
            format!("{received} (repeated: {})", repeated.join(", ")),
            "every id at most once".to_owned(),
        ));
    }
    let mut missing: BTreeMap<Property, Vec<String>> = BTreeMap::new();
    for id in ids {
        if model.current(scope_idx, id.as_str()).is_some() && !returned_home.contains(id.as_str()) {
            let property = if context.mutated_here.contains(id.as_str()) {
                Property::Fresh
            } else {
                Property::FetchComplete
            };
            missing
                .entry(context.property(id.as_str(), property))
                .or_default()
                .push(format!("{:?}", id.as_str()));
        }
    }
    for (property, ids) in missing {
        findings.push(finding(
            property,
            format!("{received}; missing {}", ids.join(", ")),
            format!("the current version of {} from {}", ids.join(", "), model.alias(scope_idx)),
        ));
    }
    findings
}

/// What a write asked for, for judging its ACK.
pub(crate) struct WriteAsked<'a> {
    pub(crate) scope_idx: usize,
    pub(crate) id: &'a str,
    /// The outcome the oracle expects.
    pub(crate) outcome: MutationOutcome,
    pub(crate) deleting: bool,
}

/// Judges an upsert or delete ACK; `watermarks` holds the scope's native watermark before and
/// after the write when the connector declares one.
pub(crate) fn ack(
    model: &Model,
    asked: &WriteAsked<'_>,
    ack: &MutationAck,
    watermarks: Option<(u64, u64)>,
    other_watermarks: &[(usize, u64)],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let scope = &model.scopes[asked.scope_idx];
    let label = |scope_of_ack| {
        model.scope_index(scope_of_ack).map_or_else(
            || "a scope outside the space".to_owned(),
            |idx| model.alias(idx).to_owned(),
        )
    };
    let received = format!(
        "ack for {:?} in {} ({} / {}), outcome {}, mutation id {:?}, watermark {:?}",
        ack.id.as_str(),
        label(&ack.scope),
        if ack.scope.tenant_id() == scope.tenant_id() { "same tenant" } else { "another tenant" },
        if ack.scope.namespace() == scope.namespace() {
            "same namespace"
        } else {
            "another namespace"
        },
        ack.outcome.as_str(),
        ack.backend_mutation_id,
        ack.watermark.map(|watermark| watermark.value())
    );
    let expected_ack = format!(
        "an ack for {:?} in {}, outcome {}, with a backend mutation id",
        asked.id,
        model.alias(asked.scope_idx),
        asked.outcome.as_str()
    );
    if ack.scope != *scope
        || ack.id.as_str() != asked.id
        || ack.outcome != asked.outcome
        || ack.backend_mutation_id.trim().is_empty()
    {
        findings.push(finding(Property::AckMatches, received.clone(), expected_ack));
    }
    if let Some((before, after)) = watermarks {
        let acked = ack.watermark.map(|watermark| watermark.value());
        let advanced =
            asked.deleting || asked.outcome == MutationOutcome::NotFound || after > before;
        if acked != Some(after) || !advanced {
            let elsewhere: Vec<String> = other_watermarks
                .iter()
                .filter(|(_, value)| Some(*value) == acked)
                .map(|(idx, _)| model.alias(*idx).to_owned())
                .collect();
            let note = if elsewhere.is_empty() {
                String::new()
            } else {
                format!("; {:?} is the watermark of {}", acked, elsewhere.join(", "))
            };
            findings.push(finding(
                Property::AckWatermark,
                format!(
                    "{received}; the watermark of {} was {before} before and {after} after{note}",
                    model.alias(asked.scope_idx)
                ),
                format!(
                    "the ack's watermark is {}'s own after the write ({after}){}",
                    model.alias(asked.scope_idx),
                    if asked.deleting { "" } else { ", above the one before" }
                ),
            ));
        }
    }
    findings
}
