//! `retrieve`: gather the facts (the reuse cache's entry, the ledger before the fetch, the
//! backend's checked answer, the ledger after it), let the planner decide and settle, then
//! persist the trace and answer (`runtime::packet`).
//!
//! The backend search starts before the ledger read when the cache cannot answer anyway, so the
//! two overlap; such an answer is only known to be as fresh as a generation the session had
//! seen committed before the search started, and is proven and cached at that one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use kyro_connector_sdk::{SearchResponse, ShortfallReason};
use kyro_core::change::ScopeKey;
use kyro_core::planner::{
    Action, Answer, Backend, CacheEntry, Decision, DocumentFacts, LedgerAfter, LedgerFacts,
    SettleInput, ShortAnswer, StoreFacts, check_hits, decide, refresh_entry, settle,
};
use kyro_core::replay::Candidate;
use kyro_core::{DocumentId, Scope, Watermark};

use super::calls::{
    PendingCall, call_connector, connector_error, finish_call, search_call, start_call,
};
use super::capture::ScopeSeen;
use super::error::{RuntimeError, RuntimeResult};
use super::evidence::Evidence;
use super::fingerprint::{RequestHashes, hash_request};
use super::packet::{Retrieved, elapsed_ms, stage};
use super::principal::Principal;
use super::session::Session;
use super::{Runtime, now_ms};
use crate::stores::RegisteredStore;
use crate::wire::packet::ContextPacket;
use crate::wire::request::{RetrieveRequest, ValidRetrieve};
use kyro_state::DocumentKey;

/// What the ledger said for a retrieve: the planner's facts, each document's facts by id, and
/// what was read of each scope key (for the capture).
pub(crate) struct LedgerRead {
    pub(crate) facts: LedgerFacts,
    pub(crate) documents: BTreeMap<String, DocumentFacts>,
    pub(crate) seen: Vec<ScopeSeen>,
}

impl Runtime {
    /// `POST /v1/context/retrieve`.
    ///
    /// # Errors
    ///
    /// Validation failures, a tenant the principal may not act for, an unavailable store with
    /// nothing to fall back on, or a trace that could not be persisted.
    pub(crate) async fn retrieve(
        &self,
        session: &Session,
        principal: &Principal,
        request: RetrieveRequest,
        raw_body: Option<String>,
    ) -> RuntimeResult<ContextPacket> {
        let started = Instant::now();
        let valid = request.validate(self.config.default_freshness)?;
        principal.confine(valid.scope.tenant_id())?;
        let store = Arc::clone(self.store_for(valid.scope.namespace())?);
        check_manifest(&store, &valid)?;
        let hashes = hash_request(&request.scope, &valid, &store);
        let read_keys: Vec<String> =
            ScopeKey::read_keys(valid.scope.tenant_id(), valid.scope.namespace(), &store.config.id)
                .into_iter()
                .map(|key| key.0)
                .collect();
        let cached = cached_entry(session, &valid.scope, &store, &hashes);
        let searched_at = session.observed();
        let mut early = (cached.is_none() && valid.required_generation.is_none())
            .then(|| start_call(&store, search_call(&valid)).ok())
            .flatten();
        let searched_early = early.is_some();
        let mut stages = Vec::new();
        let (ledger, entry, decision) =
            self.plan(session, &valid, &store, &read_keys, cached, &mut stages).await;
        let generation = ledger.as_ref().map_or(0, |read| read.facts.current_generation);
        let fetching = matches!(decision.action, Action::Fetch { .. });
        let fetched = if fetching {
            Some(self.fetch(session, &store, early.take(), &valid, &mut stages).await)
        } else {
            None
        };
        if let Some(pending) = early {
            // The planner did not need the early search; a panic or hang in it must still
            // reach the guard, so it is awaited in the background.
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let _ = finish_call(&store, "search", pending).await;
            });
        }
        let proven_at =
            if fetching && searched_early { searched_at.min(generation) } else { generation };
        let backend = fetched.as_ref().map_or(Backend::NotAsked, |fetched| fetched.backend.clone());
        let settlement = settle(SettleInput {
            decision: &decision,
            entry: entry.as_ref(),
            generation: proven_at,
            backend: &backend,
            owner: (valid.scope.tenant_id(), valid.scope.namespace(), &store.config.id),
        })
        .map_err(|_| backend_error(&store, fetched.as_ref()))?;
        if let Some(entry) = settlement.cache_entry.clone()
            && let Ok(mut cache) = session.cache.lock()
        {
            cache.insert(hashes.fingerprint, entry);
        }
        let retrieved = Retrieved {
            request,
            valid,
            store,
            hashes,
            read_keys,
            seen: ledger.map(|read| read.seen).unwrap_or_default(),
            stages,
            started,
            raw_body,
            fetched: fetched.map(|fetched| (fetched.candidates, fetched.short, fetched.latency_ms)),
        };
        self.answer(session, retrieved, settlement).await
    }

    /// Reads the ledger for the request's scope keys and the cached entry's documents, refreshes
    /// the entry against it, and lets the planner decide.
    async fn plan(
        &self,
        session: &Session,
        valid: &ValidRetrieve,
        store: &RegisteredStore,
        read_keys: &[String],
        cached: Option<CacheEntry>,
        stages: &mut Vec<crate::wire::trace::StageDto>,
    ) -> (Option<LedgerRead>, Option<CacheEntry>, Decision) {
        let cached_docs: Vec<DocumentKey> = cached
            .iter()
            .flat_map(|entry| &entry.items)
            .map(|item| document_key(&valid.scope, &item.id))
            .collect();
        let ledger_started = Instant::now();
        let ledger = self.read_ledger(session, read_keys, &cached_docs).await;
        stages.push(stage(
            "ledger_check",
            elapsed_ms(ledger_started),
            ledger.is_some(),
            0,
            ledger.as_ref().map(|read| format!("generation {}", read.facts.current_generation)),
        ));
        let (entry, decision) = decide_retrieve(
            self.config.production,
            store.config.ownership,
            valid,
            ledger.as_ref(),
            cached,
        );
        stages.push(stage(
            "reuse_lookup",
            0.0,
            matches!(decision.action, Action::Reuse { .. }),
            entry.as_ref().map_or(0, |entry| entry.items.len()),
            Some(action_text(decision.action).to_owned()),
        ));
        (ledger, entry, decision)
    }

    /// Asks the backend (or waits for the early search), checks its hits, and reads the ledger
    /// for the documents it returned.
    async fn fetch(
        &self,
        session: &Session,
        store: &Arc<RegisteredStore>,
        early: Option<PendingCall<SearchResponse>>,
        valid: &ValidRetrieve,
        stages: &mut Vec<crate::wire::trace::StageDto>,
    ) -> Fetched {
        let fetch_started = Instant::now();
        let result = match early {
            Some(pending) => finish_call(store, "search", pending).await,
            None => call_connector(store, "search", search_call(valid)).await,
        };
        let latency_ms = elapsed_ms(fetch_started);
        let response = match result {
            Ok(response) => response,
            Err(err) => {
                let kind = err.kind().to_string();
                stages.push(stage("backend_fetch", latency_ms, false, 0, Some(kind.clone())));
                return Fetched {
                    backend: Backend::Failed { kind },
                    error: Some(err),
                    candidates: Vec::new(),
                    short: None,
                    latency_ms: Some(latency_ms),
                };
            }
        };
        let n_hits = response.hits.len();
        let short = short_answer(valid.top_k, n_hits, response.shortfall.as_ref());
        stages.push(stage(
            "backend_fetch",
            latency_ms,
            true,
            n_hits,
            short.map(|short| format!("{} of {} returned", short.returned, short.requested)),
        ));
        let hits =
            check_hits(&valid.scope, valid.top_k, valid.include_content, response.hits, now_ms());
        let candidates: Vec<Candidate> = hits
            .items
            .iter()
            .map(|item| Candidate {
                id: item.id.to_string(),
                revision: item.revision.as_ref().map(|revision| revision.as_str().to_owned()),
                watermark: item.watermark.map(Watermark::value),
            })
            .collect();
        // Read after the fetch, so that a change acknowledged before or during it is seen.
        let prune_started = Instant::now();
        let keys: Vec<DocumentKey> =
            hits.items.iter().map(|item| document_key(&valid.scope, &item.id)).collect();
        let ledger_after = self.read_ledger(session, &[], &keys).await.map(|read| LedgerAfter {
            current_generation: read.facts.current_generation,
            documents: read.documents,
        });
        stages.push(stage(
            "stale_prune",
            elapsed_ms(prune_started),
            ledger_after.is_some(),
            0,
            None,
        ));
        Fetched {
            backend: Backend::Answered(Answer { hits, short, ledger_after }),
            error: None,
            candidates,
            short,
            latency_ms: Some(latency_ms),
        }
    }

    /// Reads the ledger for the given scope keys and documents, marking its health.
    pub(crate) async fn read_ledger(
        &self,
        session: &Session,
        keys: &[String],
        documents: &[DocumentKey],
    ) -> Option<LedgerRead> {
        let view = match session.state.read_freshness(keys, documents).await {
            Ok(view) => view,
            Err(err) => {
                session.mark(&[Evidence::PlannerState], false);
                tracing::error!(error = %err, "freshness ledger read failed");
                return None;
            }
        };
        session.mark(&[Evidence::PlannerState], true);
        session.observe(view.current_generation);
        let seen = view
            .scope_generations
            .iter()
            .zip(&view.scope_acknowledged_at_ms)
            .map(|((key, generation), acknowledged_at_ms)| ScopeSeen {
                key: key.clone(),
                generation: *generation,
                acknowledged_at_ms: *acknowledged_at_ms,
            })
            .collect();
        let scope_generation =
            view.scope_generations.iter().map(|(_, generation)| *generation).max().unwrap_or(0);
        let documents = view
            .documents
            .into_iter()
            .map(|state| {
                let facts = DocumentFacts {
                    generation: state.generation,
                    revision: state.revision,
                    watermark: state.watermark,
                    tombstone: state.tombstone,
                    event_timestamp_ms: state.event_timestamp_ms,
                };
                (state.key.doc_id, facts)
            })
            .collect();
        Some(LedgerRead {
            facts: LedgerFacts { current_generation: view.current_generation, scope_generation },
            documents,
            seen,
        })
    }
}

/// What a fetch produced.
struct Fetched {
    backend: Backend,
    /// The connector's error, when the call failed.
    error: Option<kyro_connector_sdk::ConnectorError>,
    /// The checked hits before pruning, for the capture.
    candidates: Vec<Candidate>,
    short: Option<ShortAnswer>,
    latency_ms: Option<f64>,
}

/// The serving path's decision from its facts: the cached entry refreshed against the ledger's
/// document generations, then the planner's decision. The replay simulator reaches the same
/// decision through `kyro_core::replay::replay_retrieve`; a property test holds them equal.
pub(crate) fn decide_retrieve(
    production: bool,
    ownership: kyro_core::OwnershipMode,
    valid: &ValidRetrieve,
    ledger: Option<&LedgerRead>,
    cached: Option<CacheEntry>,
) -> (Option<CacheEntry>, Decision) {
    let entry = cached.map(|entry| {
        let generations: Vec<u64> = ledger
            .iter()
            .flat_map(|read| read.documents.values())
            .map(|facts| facts.generation)
            .collect();
        refresh_entry(entry, &generations)
    });
    let decision = decide(
        valid.freshness_mode,
        production,
        StoreFacts { ownership, certified: true },
        ledger.map(|read| read.facts),
        valid.required_generation,
        entry.as_ref(),
    );
    (entry, decision)
}

/// The error of a fetch that failed with nothing to fall back on.
fn backend_error(store: &RegisteredStore, fetched: Option<&Fetched>) -> RuntimeError {
    match fetched.and_then(|fetched| fetched.error.as_ref()) {
        Some(err) => connector_error(&store.config.id, err),
        None => RuntimeError::new(
            super::error::RuntimeErrorKind::ConnectorUnavailable,
            format!("store {} did not answer", store.config.id),
        ),
    }
}

/// A request the store's manifest cannot serve is the caller's error, found before any call.
fn check_manifest(store: &RegisteredStore, valid: &ValidRetrieve) -> RuntimeResult<()> {
    if let Some(vector) = store.manifest.vector
        && vector.dimension as usize != valid.embedding.dimension()
    {
        return Err(RuntimeError::invalid(format!(
            "query_embedding has {} dimensions; store {} holds {}",
            valid.embedding.dimension(),
            store.config.id,
            vector.dimension
        )));
    }
    if valid.top_k > store.manifest.caps.max_top_k {
        return Err(RuntimeError::invalid(format!(
            "top_k {} is over store {}'s cap of {}",
            valid.top_k, store.config.id, store.manifest.caps.max_top_k
        )));
    }
    if let Some(filter) = &valid.filter {
        for key in filter.keys() {
            if !store.manifest.filterable_keys.allows(key) {
                return Err(RuntimeError::invalid(format!(
                    "filter key {key} is not filterable on store {}",
                    store.config.id
                )));
            }
        }
    }
    Ok(())
}

fn cached_entry(
    session: &Session,
    scope: &Scope,
    store: &RegisteredStore,
    hashes: &RequestHashes,
) -> Option<CacheEntry> {
    let mut cache = session.cache.lock().ok()?;
    cache
        .get_scoped(hashes.fingerprint, scope.tenant_id(), scope.namespace(), &store.config.id)
        .cloned()
}

/// A backend answer short of `top_k` while more matches may exist. A store that answers short
/// without saying its scope is exhausted is treated as having stopped early.
fn short_answer(
    top_k: u32,
    n_hits: usize,
    shortfall: Option<&kyro_connector_sdk::Shortfall>,
) -> Option<ShortAnswer> {
    let returned = u32::try_from(n_hits).unwrap_or(u32::MAX);
    match shortfall {
        Some(shortfall) if matches!(shortfall.reason, ShortfallReason::Exhausted) => None,
        Some(shortfall) => {
            Some(ShortAnswer { requested: shortfall.requested, returned: shortfall.returned })
        }
        None if returned < top_k => Some(ShortAnswer { requested: top_k, returned }),
        None => None,
    }
}

pub(crate) fn document_key(scope: &Scope, id: &DocumentId) -> DocumentKey {
    DocumentKey {
        tenant_id: scope.tenant_id().to_owned(),
        namespace: scope.namespace().to_owned(),
        doc_id: id.to_string(),
    }
}

/// What the planner decided, in words, for the trace's `reuse_lookup` stage (a client reads
/// it: never a `Debug` rendering).
fn action_text(action: Action) -> &'static str {
    match action {
        Action::Block => "block: freshness cannot be proven",
        Action::Reuse { stale: false } => "reuse a fresh entry",
        Action::Reuse { stale: true } => "reuse a stale entry, flagged",
        Action::Fetch { fallback: false } => "fetch from the backend",
        Action::Fetch { fallback: true } => "fetch from the backend, a stale entry standing by",
    }
}

#[cfg(test)]
mod tests;
