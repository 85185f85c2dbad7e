//! Generated conformance: a program of searches, fetches and writes generated from the run's
//! seed over the private space, every answer compared with the oracle ([`model`]), then a final
//! audit of every scope, then each failing property's witness shrunk to a minimal request.
//!
//! The program is one check's work (`abi.generated_requests_answered`); the property checks that
//! follow it in the catalog read its [`Outcome`]. Within one answer, the findings of the property
//! that comes first in the catalog are the root; the others follow from it and are marked so.
//!
//! What it deliberately does not do: judge recall (an approximate index may return other
//! near neighbours than the exact ones), or score scales (each distance has its own).

mod describe;
mod generate;
mod judge;
pub(crate) mod model;
mod shrink;

use std::collections::{BTreeMap, BTreeSet};

use kyro_connector_sdk::{
    CapabilityManifest, Connector, ConnectorError, Document, DocumentId, Embedding, ErrorKind,
    Metadata, MutationOutcome, Operation, OwnershipMode, Scope, WatermarkKind,
};

pub(crate) use self::describe::{WITNESS_FIELD_CAP, cap, filter as describe_filter};
use self::generate::Domains;
pub(crate) use self::generate::Sizes;
use self::judge::{Finding, ReadContext, WriteAsked};
use self::model::{Doc, Model, Origin};
use self::shrink::Read;
use crate::rng::Rng;

/// A property the generated program checks, in catalog order: an answer's first broken
/// property is its root finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Property {
    Answered,
    SearchConfined,
    FetchConfined,
    LabelsHonest,
    MutationsConfined,
    Fresh,
    AckMatches,
    AckWatermark,
    FilterExact,
    NoDuplicates,
    FetchComplete,
    Sorted,
    ResultSize,
}

impl Property {
    /// The stable check id that reports this property.
    pub(crate) const fn check_id(self) -> &'static str {
        match self {
            Self::Answered => "abi.generated_requests_answered",
            Self::SearchConfined => "scope.generated_search_confined",
            Self::FetchConfined => "scope.generated_fetch_confined",
            Self::LabelsHonest => "scope.labels_match_origin",
            Self::MutationsConfined => "scope.generated_mutations_confined",
            Self::Fresh => "freshness.generated_reads_see_writes",
            Self::AckMatches => "freshness.write_through.acks_match_writes",
            Self::AckWatermark => "freshness.write_through.ack_watermark_in_scope",
            Self::FilterExact => "filter.generated_semantics",
            Self::NoDuplicates => "ids.generated_no_duplicates",
            Self::FetchComplete => "ids.generated_fetch_complete",
            Self::Sorted => "bounds.generated_sorted_by_score",
            Self::ResultSize => "bounds.generated_result_size",
        }
    }
}

/// One broken property, as the witness will show it.
#[derive(Debug, Clone)]
pub(crate) struct Violation {
    pub(crate) sent: String,
    pub(crate) received: String,
    pub(crate) expected: String,
    /// The request before shrinking, when shrinking made it smaller.
    pub(crate) shrunk_from: Option<String>,
    read: Option<(Read, bool)>,
}

/// What the program found for one property.
#[derive(Debug, Clone, Default)]
pub(crate) struct PropertyResult {
    /// The first answer in which this property was the root finding.
    pub(crate) root: Option<Violation>,
    pub(crate) n_root: usize,
    /// Otherwise, the first answer in which it broke after another property did.
    pub(crate) follows: Option<(Violation, Property)>,
}

/// Everything the generated program found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    pub(crate) n_steps: usize,
    pub(crate) n_planned: usize,
    pub(crate) n_writes: usize,
    /// Why the program stopped before its end, if it did.
    pub(crate) stopped: Option<String>,
    pub(crate) properties: BTreeMap<Property, PropertyResult>,
}

impl Outcome {
    fn record(&mut self, sent: &str, read: Option<(Read, bool)>, findings: Vec<Finding>) {
        let Some(root) = findings.iter().map(|finding| finding.property).min() else { return };
        let mut seen = BTreeSet::new();
        for finding in findings {
            if !seen.insert(finding.property) {
                continue;
            }
            let violation = Violation {
                sent: cap(sent, WITNESS_FIELD_CAP),
                received: finding.received,
                expected: finding.expected,
                shrunk_from: None,
                read: read.clone(),
            };
            let result = self.properties.entry(finding.property).or_default();
            if finding.property == root {
                result.n_root += 1;
                result.root.get_or_insert(violation);
            } else if result.follows.is_none() {
                result.follows = Some((violation, root));
            }
        }
    }
}

/// The generated part of the private space: the oracle, and what the program has touched.
pub(crate) struct Generated {
    pub(crate) model: Model,
    domains: Domains,
    rng: Rng,
    sizes: Sizes,
    /// Per scope: ids a mutation of the program wrote or deleted.
    mutated: Vec<BTreeSet<String>>,
    /// Ids any mutation targeted.
    targets: BTreeSet<String>,
}

/// How the program writes: through the declared write-through operations, through the store's
/// own write path (`certification_seed`), or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writes {
    WriteThrough,
    StoreWriter,
    None,
}

impl Writes {
    pub(crate) fn for_manifest(manifest: &CapabilityManifest) -> Self {
        if manifest.backs(OwnershipMode::WriteThrough)
            && manifest.supports(Operation::Upsert)
            && manifest.supports(Operation::Delete)
        {
            Self::WriteThrough
        } else if manifest.backs(OwnershipMode::EventFeed) {
            Self::StoreWriter
        } else {
            Self::None
        }
    }
}

/// What the program needs from the certification run.
pub(crate) trait Harness {
    fn connector(&self) -> &dyn Connector;
    fn manifest(&self) -> &CapabilityManifest;
    /// Writes through the store's own write path (or upsert), remembering what to clean up.
    fn store_write(&mut self, scope: &Scope, documents: &[Document]) -> Result<(), String>;
    /// Remembers a document written through upsert, for cleanup.
    fn record_written(&mut self, scope: &Scope, id: &DocumentId);
    /// Notes an error the connector returned (for the redaction checks and quarantine tracking).
    fn observe_error(&mut self, err: &ConnectorError);
}

/// The primary scope's volume: enough for every `top_k` up to the declared cap, within the
/// depth's ceiling, plus a margin so full lists are common.
pub(crate) fn primary_volume(max_top_k: u32, sizes: Sizes) -> usize {
    let capped = max_top_k.min(sizes.max_primary_volume) as usize;
    capped + (capped / 10).max(5)
}

impl Generated {
    /// Generates the documents of `scopes` (the first is the primary scope, filled to
    /// [`primary_volume`]; the others hold a quarter of it, at least 16).
    pub(crate) fn new(
        rng: &Rng,
        manifest: &CapabilityManifest,
        scopes: Vec<Scope>,
        aliases: Vec<String>,
        sizes: Sizes,
    ) -> Option<Self> {
        let vector = manifest.vector?;
        let mut data_rng = rng.fork("data");
        let domains = Domains::new(&mut data_rng, generate::keys(manifest));
        let mut model = Model::new(scopes, aliases, vector.distance);
        let primary = primary_volume(manifest.caps.max_top_k, sizes);
        let others = (primary / 4).max(16).min(primary);
        let pool = primary + primary / 3;
        for scope_idx in 0..model.scopes.len() {
            let volume = if scope_idx == 0 { primary } else { others };
            for idx in data_rng.sample_indices(pool, volume) {
                let id = generate::id_for(idx);
                let vector = data_rng.unit_vector(vector.dimension as usize);
                let doc =
                    generate::new_doc(&mut data_rng, &model, &domains, scope_idx, &id, vector);
                model.record_write(doc);
            }
        }
        let n_scopes = model.scopes.len();
        Some(Self {
            model,
            domains,
            rng: rng.fork("program"),
            sizes,
            mutated: vec![BTreeSet::new(); n_scopes],
            targets: BTreeSet::new(),
        })
    }

    /// The seeded documents of each scope, as the connector receives them.
    pub(crate) fn seed_documents(&self) -> Vec<(Scope, Vec<Document>)> {
        (0..self.model.scopes.len())
            .map(|scope_idx| {
                let documents = self
                    .model
                    .current_docs(scope_idx)
                    .filter_map(|doc_idx| to_document(self.model.doc(doc_idx)))
                    .collect();
                (self.model.scopes[scope_idx].clone(), documents)
            })
            .collect()
    }

    /// How many documents were seeded, in all and in the primary scope.
    pub(crate) fn volume(&self) -> (usize, usize) {
        let total = (0..self.model.scopes.len()).map(|idx| self.model.n_current(idx)).sum();
        (total, self.model.n_current(0))
    }

    /// Runs the program, the audit and the shrinking.
    pub(crate) fn run(&mut self, harness: &mut dyn Harness, writes: Writes) -> Outcome {
        let mut program = Program { outcome: Outcome::default(), writes };
        let sizes = self.sizes;
        let n_writes = if writes == Writes::None { 0 } else { sizes.n_writes };
        let mut kinds: Vec<u8> = Vec::new();
        if harness.manifest().supports(Operation::Search) {
            kinds.extend(std::iter::repeat_n(0, sizes.n_searches));
        }
        if harness.manifest().supports(Operation::Fetch) {
            kinds.extend(std::iter::repeat_n(1, sizes.n_fetches));
        }
        kinds.extend(std::iter::repeat_n(2, n_writes));
        let order = self.rng.sample_indices(kinds.len(), kinds.len());
        program.outcome.n_planned = kinds.len();
        for step_idx in order {
            if program.outcome.stopped.is_some() {
                break;
            }
            let scope_idx = self.pick_scope();
            match kinds[step_idx] {
                0 => self.search_step(harness, &mut program, scope_idx),
                1 => self.fetch_step(harness, &mut program, scope_idx),
                _ => self.write_step(harness, &mut program, scope_idx),
            }
            program.outcome.n_steps += 1;
        }
        if program.outcome.stopped.is_none() && harness.manifest().supports(Operation::Fetch) {
            self.audit(harness, &mut program);
        }
        if program.outcome.stopped.is_none() {
            self.shrink_roots(harness, &mut program.outcome);
        }
        program.outcome
    }

    /// The primary scope half of the time, any other otherwise.
    fn pick_scope(&mut self) -> usize {
        let n_scopes = self.model.scopes.len();
        if n_scopes == 1 || self.rng.percent(50) { 0 } else { self.rng.between(1, n_scopes - 1) }
    }

    fn search_step(&mut self, harness: &mut dyn Harness, program: &mut Program, scope_idx: usize) {
        let manifest = harness.manifest().clone();
        let dimension = manifest.vector.map_or(1, |vector| vector.dimension as usize);
        let (query, query_note) = generate::query(&mut self.rng, &self.model, scope_idx, dimension);
        let filter = if self.rng.percent(70) && manifest.supports(Operation::Search) {
            self.domains.filter(&mut self.rng, self.sizes, manifest.caps.max_filter_nodes as usize)
        } else {
            None
        };
        let n_matches = self
            .model
            .expected_search(scope_idx, &query, filter.as_ref().map(|filter| filter.root()))
            .len();
        let top_k = generate::top_k(&mut self.rng, manifest.caps.max_top_k, n_matches);
        let include_content = self.rng.percent(90);
        let Some(request) = generate::search_request(query, top_k, filter, include_content) else {
            return;
        };
        self.read(harness, program, Read::Search { scope_idx, request, query_note }, false);
    }

    fn fetch_step(&mut self, harness: &mut dyn Harness, program: &mut Program, scope_idx: usize) {
        let cap = harness.manifest().caps.max_fetch_ids as usize;
        let n_ids = self.rng.between(1, cap.clamp(1, 16));
        let home: Vec<String> = self.model.ids_ever_in(scope_idx);
        let all = self.model.all_ids();
        let mut ids = Vec::new();
        for _ in 0..n_ids {
            let id = match self.rng.below(10) {
                0..=3 if !home.is_empty() => self.rng.pick(&home).clone(),
                9 => format!("nx-{}", self.rng.hex(8)),
                _ => self.rng.pick(&all).clone(),
            };
            if let Ok(id) = DocumentId::new(id)
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        self.read(harness, program, Read::Fetch { scope_idx, ids }, false);
    }

    /// Sends a read, judges it and records what it broke. Returns the answer's hits or
    /// documents as origins, for read-backs.
    fn read(
        &mut self,
        harness: &mut dyn Harness,
        program: &mut Program,
        read: Read,
        audit: bool,
    ) -> Option<Vec<Origin>> {
        let sent = self.describe_read(&read, audit);
        match self.execute(harness, &read, audit) {
            Ok((findings, origins)) => {
                program.outcome.record(&sent, Some((read, audit)), findings);
                Some(origins)
            }
            Err(err) => {
                program.fail(harness, &sent, &err);
                None
            }
        }
    }

    fn execute(
        &self,
        harness: &dyn Harness,
        read: &Read,
        audit: bool,
    ) -> Result<(Vec<Finding>, Vec<Origin>), ConnectorError> {
        let empty = BTreeSet::new();
        match read {
            Read::Search { scope_idx, request, .. } => {
                let context = ReadContext {
                    mutated_here: &self.mutated[*scope_idx],
                    audit_targets: audit.then_some(&self.targets),
                };
                let response =
                    harness.connector().search(&self.model.scopes[*scope_idx], request)?;
                let origins = response
                    .hits
                    .iter()
                    .map(|hit| self.model.identify(*scope_idx, &hit.document))
                    .collect();
                Ok((judge::search(&self.model, *scope_idx, request, &response, &context), origins))
            }
            Read::Fetch { scope_idx, ids } => {
                let context = ReadContext {
                    mutated_here: if audit { &empty } else { &self.mutated[*scope_idx] },
                    audit_targets: audit.then_some(&self.targets),
                };
                let documents = harness.connector().fetch(&self.model.scopes[*scope_idx], ids)?;
                let origins = documents
                    .iter()
                    .map(|document| self.model.identify(*scope_idx, document))
                    .collect();
                Ok((judge::fetch(&self.model, *scope_idx, ids, &documents, &context), origins))
            }
        }
    }

    fn describe_read(&self, read: &Read, audit: bool) -> String {
        let prefix = if audit { "final audit: " } else { "" };
        match read {
            Read::Search { scope_idx, request, query_note } => format!(
                "{prefix}search {} top_k={} filter={} include_content={} query={query_note}",
                self.model.alias(*scope_idx),
                request.top_k,
                request
                    .filter
                    .as_ref()
                    .map_or_else(|| "none".to_owned(), |filter| describe::filter(filter.root())),
                request.include_content
            ),
            Read::Fetch { scope_idx, ids } => {
                let ids: Vec<String> = ids.iter().map(|id| format!("{:?}", id.as_str())).collect();
                format!("{prefix}fetch {} ids=[{}]", self.model.alias(*scope_idx), ids.join(", "))
            }
        }
    }

    fn write_step(&mut self, harness: &mut dyn Harness, program: &mut Program, scope_idx: usize) {
        let home: Vec<usize> = self.model.current_docs(scope_idx).collect();
        let foreign_only: Vec<usize> = (0..self.model.scopes.len())
            .filter(|&other| other != scope_idx)
            .flat_map(|other| self.model.current_docs(other))
            .filter(|&doc_idx| self.model.current(scope_idx, &self.model.doc(doc_idx).id).is_none())
            .collect();
        let shared: Vec<usize> = home
            .iter()
            .copied()
            .filter(|&doc_idx| {
                let id = &self.model.doc(doc_idx).id;
                (0..self.model.scopes.len())
                    .any(|other| other != scope_idx && self.model.current(other, id).is_some())
            })
            .collect();
        let can_delete = program.writes == Writes::WriteThrough;
        // Writes rotate through their kinds, so every run has rewrites (where a stale read shows),
        // upserts aimed at other scopes' ids, and deletes.
        let kind = program.outcome.n_writes % 4;
        if can_delete && kind == 2 && !shared.is_empty() {
            let id = self.model.doc(*self.rng.pick(&shared)).id.clone();
            self.delete(harness, program, scope_idx, &id);
        } else if can_delete && kind == 3 && !foreign_only.is_empty() {
            let id = self.model.doc(*self.rng.pick(&foreign_only)).id.clone();
            self.delete(harness, program, scope_idx, &id);
        } else if kind == 1 && !foreign_only.is_empty() {
            // An upsert aimed at an id that lives in other scopes, on a poisoned vector.
            let source = *self.rng.pick(&foreign_only);
            self.rewrite(harness, program, scope_idx, source);
        } else if !home.is_empty() {
            // A rewrite on the same vector, so a stale copy stays the nearest neighbour.
            let current = *self.rng.pick(&home);
            self.rewrite(harness, program, scope_idx, current);
        }
    }

    /// Upserts into `scope_idx` a new version of the document `source_idx`'s id, on its vector,
    /// with new content and metadata.
    fn rewrite(
        &mut self,
        harness: &mut dyn Harness,
        program: &mut Program,
        scope_idx: usize,
        source_idx: usize,
    ) {
        let source = self.model.doc(source_idx).clone();
        let doc = generate::new_doc(
            &mut self.rng,
            &self.model,
            &self.domains,
            scope_idx,
            &source.id,
            source.vector,
        );
        self.upsert(harness, program, doc);
    }

    fn upsert(&mut self, harness: &mut dyn Harness, program: &mut Program, doc: Doc) {
        let scope_idx = doc.scope;
        let scope = self.model.scopes[scope_idx].clone();
        let alias = self.model.alias(scope_idx).to_owned();
        let Some(document) = to_document(&doc) else { return };
        program.outcome.n_writes += 1;
        let mut findings = Vec::new();
        let mut acked_watermark = None;
        let sent = match program.writes {
            Writes::WriteThrough => {
                let sent = format!("upsert {:?} v{} into {alias}", doc.id, doc.version);
                let expected = if self.model.current(scope_idx, &doc.id).is_some() {
                    MutationOutcome::Updated
                } else {
                    MutationOutcome::Inserted
                };
                let Ok(before) = self.native_watermark(harness, program, &scope, &sent) else {
                    return;
                };
                let ack = match harness.connector().upsert(&scope, &document) {
                    Ok(ack) => ack,
                    Err(err) => {
                        harness.record_written(&scope, document.id());
                        program.fail_write(harness, &sent, &err);
                        return;
                    }
                };
                harness.record_written(&scope, document.id());
                let Ok(after) = self.native_watermark(harness, program, &scope, &sent) else {
                    return;
                };
                let watermarks = before.zip(after);
                let others = self.mismatch_context(harness, &ack, watermarks);
                let asked =
                    WriteAsked { scope_idx, id: &doc.id, outcome: expected, deleting: false };
                findings.extend(judge::ack(&self.model, &asked, &ack, watermarks, &others));
                acked_watermark = ack.watermark.map(|watermark| watermark.value());
                sent
            }
            Writes::StoreWriter | Writes::None => {
                let sent = format!(
                    "store write (certification_seed) of {:?} v{} into {alias}",
                    doc.id, doc.version
                );
                if let Err(reason) = harness.store_write(&scope, std::slice::from_ref(&document)) {
                    program.outcome.stopped = Some(format!("{sent}: {reason}"));
                    return;
                }
                sent
            }
        };
        let id = doc.id.clone();
        let vector = doc.vector.clone();
        let metadata = doc.metadata.clone();
        let doc_idx = self.model.record_write(doc);
        self.mutated[scope_idx].insert(id.clone());
        self.targets.insert(id.clone());
        program.outcome.record(&sent, None, findings);
        self.read_back(
            harness,
            program,
            scope_idx,
            &id,
            Some((doc_idx, vector, metadata)),
            acked_watermark,
        );
    }

    fn delete(
        &mut self,
        harness: &mut dyn Harness,
        program: &mut Program,
        scope_idx: usize,
        id: &str,
    ) {
        let scope = self.model.scopes[scope_idx].clone();
        let sent = format!("delete {id:?} from {}", self.model.alias(scope_idx));
        let Ok(document_id) = DocumentId::new(id) else { return };
        program.outcome.n_writes += 1;
        let existed = self.model.current(scope_idx, id);
        let expected =
            if existed.is_some() { MutationOutcome::Deleted } else { MutationOutcome::NotFound };
        let Ok(before) = self.native_watermark(harness, program, &scope, &sent) else { return };
        let ack = match harness.connector().delete(&scope, &document_id) {
            Ok(ack) => ack,
            Err(err) => {
                program.fail_write(harness, &sent, &err);
                return;
            }
        };
        let Ok(after) = self.native_watermark(harness, program, &scope, &sent) else { return };
        let watermarks = before.zip(after);
        let others = self.mismatch_context(harness, &ack, watermarks);
        let asked = WriteAsked { scope_idx, id, outcome: expected, deleting: true };
        let findings = judge::ack(&self.model, &asked, &ack, watermarks, &others);
        self.model.record_delete(scope_idx, id);
        self.mutated[scope_idx].insert(id.to_owned());
        self.targets.insert(id.to_owned());
        program.outcome.record(&sent, None, findings);
        let vector = existed.map(|doc_idx| self.model.doc(doc_idx).vector.clone());
        if let Some(vector) = vector {
            let top_k = harness.manifest().caps.max_top_k.min(10);
            if let Some(request) = generate::search_request(vector, top_k, None, true) {
                let query_note = format!("exactly the vector of the deleted {id:?}");
                self.read(harness, program, Read::Search { scope_idx, request, query_note }, false);
            }
        }
        let ids = vec![document_id];
        self.read(harness, program, Read::Fetch { scope_idx, ids }, false);
    }

    /// After a write: the fetch and a filtered search on its vector see the written version.
    fn read_back(
        &mut self,
        harness: &mut dyn Harness,
        program: &mut Program,
        scope_idx: usize,
        id: &str,
        written: Option<(usize, Vec<f32>, BTreeMap<String, String>)>,
        acked_watermark: Option<u64>,
    ) {
        let Some((doc_idx, vector, metadata)) = written else { return };
        let manifest = harness.manifest().clone();
        if manifest.supports(Operation::Fetch)
            && let Ok(document_id) = DocumentId::new(id)
        {
            let scope = self.model.scopes[scope_idx].clone();
            let sent =
                format!("fetch {} ids=[{id:?}] right after the write", self.model.alias(scope_idx));
            let read = Read::Fetch { scope_idx, ids: vec![document_id.clone()] };
            match harness.connector().fetch(&scope, std::slice::from_ref(&document_id)) {
                Ok(documents) => {
                    let context =
                        ReadContext { mutated_here: &self.mutated[scope_idx], audit_targets: None };
                    let mut findings =
                        judge::fetch(&self.model, scope_idx, &[document_id], &documents, &context);
                    let row_watermark = documents
                        .iter()
                        .find(|document| {
                            self.model.identify(scope_idx, document) == Origin::Home(doc_idx)
                        })
                        .and_then(|document| document.watermark.map(|watermark| watermark.value()));
                    if let (Some(acked), Some(row)) = (acked_watermark, row_watermark)
                        && acked != row
                        && manifest.watermark_kind != WatermarkKind::PerScopeNative
                    {
                        findings.push(Finding {
                            property: Property::AckWatermark,
                            received: format!("the ack's watermark {acked}, the row's {row}"),
                            expected: "the ack names the watermark the written row carries"
                                .to_owned(),
                        });
                    }
                    program.outcome.record(&sent, Some((read, false)), findings);
                }
                Err(err) => program.fail(harness, &sent, &err),
            }
        }
        if program.outcome.stopped.is_some() || !manifest.supports(Operation::Search) {
            return;
        }
        let filter = self.domains.matching_filter(
            &mut self.rng,
            self.sizes,
            manifest.caps.max_filter_nodes as usize,
            &metadata,
        );
        let top_k = manifest.caps.max_top_k.min(10);
        let Some(request) = generate::search_request(vector, top_k, filter, true) else { return };
        let query_note = format!("exactly the vector of the written {id:?}, right after the write");
        let read = Read::Search { scope_idx, request, query_note };
        if let Some(origins) = self.read(harness, program, read.clone(), false)
            && !origins.contains(&Origin::Home(doc_idx))
        {
            let sent = self.describe_read(&read, false);
            program.outcome.record(
                &sent,
                Some((read, false)),
                vec![Finding {
                    property: Property::Fresh,
                    received: format!("{} hits without the written version", origins.len()),
                    expected: format!(
                        "the written version {} among the hits",
                        describe::expected_doc(&self.model, doc_idx)
                    ),
                }],
            );
        }
    }

    /// The scope's native watermark, when the connector declares one.
    fn native_watermark(
        &self,
        harness: &mut dyn Harness,
        program: &mut Program,
        scope: &Scope,
        sent: &str,
    ) -> Result<Option<u64>, ()> {
        if harness.manifest().watermark_kind != WatermarkKind::PerScopeNative {
            return Ok(None);
        }
        match harness.connector().watermark(scope) {
            Ok(watermark) => Ok(Some(watermark.value())),
            Err(err) => {
                program.fail(harness, &format!("watermark around: {sent}"), &err);
                Err(())
            }
        }
    }

    /// The other scopes' watermarks, read only when an ACK's watermark looks wrong, so the
    /// witness can say whose watermark it is.
    fn mismatch_context(
        &self,
        harness: &mut dyn Harness,
        ack: &kyro_connector_sdk::MutationAck,
        watermarks: Option<(u64, u64)>,
    ) -> Vec<(usize, u64)> {
        let Some((_, after)) = watermarks else { return Vec::new() };
        if ack.watermark.map(|watermark| watermark.value()) == Some(after) {
            return Vec::new();
        }
        let mut others = Vec::new();
        for (scope_idx, scope) in self.model.scopes.iter().enumerate() {
            match harness.connector().watermark(scope) {
                Ok(watermark) => others.push((scope_idx, watermark.value())),
                Err(err) => harness.observe_error(&err),
            }
        }
        others
    }

    /// Fetches every id of the space in every scope and compares each with the oracle.
    fn audit(&mut self, harness: &mut dyn Harness, program: &mut Program) {
        let ids: Vec<DocumentId> =
            self.model.all_ids().into_iter().filter_map(|id| DocumentId::new(id).ok()).collect();
        let chunk = (harness.manifest().caps.max_fetch_ids as usize).max(1);
        for scope_idx in 0..self.model.scopes.len() {
            for ids in ids.chunks(chunk) {
                if program.outcome.stopped.is_some() {
                    return;
                }
                self.read(harness, program, Read::Fetch { scope_idx, ids: ids.to_vec() }, true);
            }
        }
    }

    fn shrink_roots(&mut self, harness: &mut dyn Harness, outcome: &mut Outcome) {
        for (property, result) in &mut outcome.properties {
            let Some(root) = &mut result.root else { continue };
            let Some((read, audit)) = root.read.clone() else { continue };
            let mut last: Option<Finding> = None;
            let shrunk =
                shrink::shrink(read.clone(), self.sizes.shrink_calls, &mut |candidate| match self
                    .execute(harness, candidate, audit)
                {
                    Ok((findings, _)) => {
                        let found =
                            findings.into_iter().find(|finding| finding.property == *property);
                        let fails = found.is_some();
                        if fails {
                            last = found;
                        }
                        fails
                    }
                    Err(err) => {
                        harness.observe_error(&err);
                        false
                    }
                });
            if let Some(finding) = last {
                root.shrunk_from = Some(root.sent.clone());
                root.sent = cap(&self.describe_read(&shrunk, audit), WITNESS_FIELD_CAP);
                root.received = finding.received;
                root.expected = finding.expected;
            }
        }
    }
}

struct Program {
    outcome: Outcome,
    writes: Writes,
}

impl Program {
    /// A call failed: a broken answer when the connector is at fault, otherwise the program
    /// cannot go on.
    fn fail(&mut self, harness: &mut dyn Harness, sent: &str, err: &ConnectorError) {
        harness.observe_error(err);
        match err.kind() {
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Quarantined => {
                self.outcome.stopped = Some(cap(&format!("{sent}: {err}"), WITNESS_FIELD_CAP));
            }
            kind => {
                self.outcome.record(
                    sent,
                    None,
                    vec![Finding {
                        property: Property::Answered,
                        received: cap(&format!("error {err}"), WITNESS_FIELD_CAP),
                        expected:
                            "an answer: the request is within every declared capability and cap"
                                .to_owned(),
                    }],
                );
                if kind == ErrorKind::Panicked {
                    self.outcome.stopped =
                        Some("the connector panicked and was quarantined".to_owned());
                }
            }
        }
    }

    /// A write failed: after recording it, the oracle no longer knows what the store holds.
    fn fail_write(&mut self, harness: &mut dyn Harness, sent: &str, err: &ConnectorError) {
        self.fail(harness, sent, err);
        if self.outcome.stopped.is_none() {
            self.outcome.stopped =
                Some(format!("{sent} failed, so the store's contents are no longer known"));
        }
    }
}

/// A generated version as the connector receives it.
fn to_document(doc: &Doc) -> Option<Document> {
    Document::new(
        DocumentId::new(doc.id.clone()).ok()?,
        Some(Embedding::new(doc.vector.clone()).ok()?),
        Some(doc.content.clone()),
        Metadata::new(doc.metadata.clone()).ok()?,
        None,
    )
    .ok()
}
