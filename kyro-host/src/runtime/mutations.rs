//! Write-through mutations: the connector's ACK is verified against the write that was asked
//! for, made durable in the ledger, and the reuse entries it covers are invalidated before the
//! caller hears of it. A write the store may have applied is never left uncovered: when the ACK
//! names another scope, both scopes are invalidated before the error is returned.

use std::sync::Arc;

use kyro_core::change::{ChangeScope, ChangeTarget, ChangeType, ScopeKey};
use kyro_core::planner::Invalidation;
use kyro_core::replay::StepType;
use kyro_core::{Document, DocumentId, MutationAck, MutationOutcome, Scope};

use super::calls::{call_connector, connector_error};
use super::capture::{StepRequest, change_capture};
use super::error::{RuntimeError, RuntimeErrorKind, RuntimeResult};
use super::principal::Principal;
use super::session::Session;
use super::{Runtime, now_ms};
use crate::stores::RegisteredStore;
use crate::wire::change::{DocumentMutationResult, MutationAckDto};
use crate::wire::packet::FreshnessScopeDto;
use crate::wire::routes;
use kyro_state::{ApplyOutcome, ChangeInput, DocumentChange, DocumentKey, ScopeChange};

/// One write-through mutation: an upsert of `document`, or a delete of `id` without one.
pub(crate) struct Mutation {
    pub(crate) scope: Scope,
    pub(crate) id: DocumentId,
    pub(crate) document: Option<Document>,
    /// The request body as the client sent it, for the capture.
    pub(crate) raw_body: String,
}

impl Runtime {
    fn write_through_store(&self, scope: &Scope) -> RuntimeResult<Arc<RegisteredStore>> {
        let store = Arc::clone(self.store_for(scope.namespace())?);
        if !store.allows_write_through() {
            return Err(RuntimeError::conflict(format!(
                "store {} is not certified for write_through; send change events instead",
                store.config.id
            )));
        }
        Ok(store)
    }

    /// `POST /v1/documents/upsert` and `/v1/documents/delete`.
    ///
    /// # Errors
    ///
    /// A tenant the caller may not act for, a store without certified write-through, a
    /// connector failure, or a ledger failure after the store already applied the write
    /// (`acknowledged`).
    pub(crate) async fn mutate(
        &self,
        session: &Session,
        principal: &Principal,
        mutation: Mutation,
    ) -> RuntimeResult<DocumentMutationResult> {
        principal.confine(mutation.scope.tenant_id())?;
        if !session.allow_mutations {
            return Err(RuntimeError::conflict(
                "connector mutations are refused in this shadow session (allow_connector_mutations is false)",
            ));
        }
        let store = self.write_through_store(&mutation.scope)?;
        if let (Some(document), Some(vector)) = (&mutation.document, store.manifest.vector)
            && let Some(embedding) = document.embedding()
            && embedding.dimension() != vector.dimension as usize
        {
            return Err(RuntimeError::invalid(format!(
                "document.embedding has {} dimensions; store {} holds {}",
                embedding.dimension(),
                store.config.id,
                vector.dimension
            )));
        }
        let deleting = mutation.document.is_none();
        let revision = mutation
            .document
            .as_ref()
            .and_then(|document| document.revision().map(|revision| revision.as_str().to_owned()));
        let (call_scope, call_id) = (mutation.scope.clone(), mutation.id.clone());
        let ack = match mutation.document.clone() {
            Some(document) => {
                call_connector(&store, "upsert", move |connector| {
                    connector.upsert(&call_scope, &document)
                })
                .await
            }
            None => {
                call_connector(&store, "delete", move |connector| {
                    connector.delete(&call_scope, &call_id)
                })
                .await
            }
        }
        .map_err(|err| connector_error(&store.config.id, &err))?;
        if ack.scope != mutation.scope || ack.id != mutation.id {
            return Err(self.unverified_ack(session, &store, &mutation.scope, &ack).await);
        }
        let step_type = if deleting { StepType::Delete } else { StepType::Upsert };
        let (mut input, invalidation) = verified_change(&mutation, &ack, revision.clone());
        if session.capture {
            let step = capture_step(&mutation, step_type);
            input.capture = Some(change_capture(step, &input, invalidation.clone()));
        }
        let (outcome, entries_invalidated) = self
            .apply(session, input, &[invalidation])
            .await
            .map_err(RuntimeError::acknowledged)?;
        let generation = match outcome {
            ApplyOutcome::Applied { generation }
            | ApplyOutcome::Replayed { generation }
            | ApplyOutcome::Conflict { generation } => generation,
        };
        Ok(DocumentMutationResult {
            id: mutation.id.to_string(),
            outcome: ack.outcome,
            generation,
            entries_invalidated,
            invalidated_scope: FreshnessScopeDto::from(&mutation.scope),
            revision,
            mutation_ack: MutationAckDto::new(ack.backend_mutation_id, &ack.scope, true),
        })
    }

    /// The store acknowledged another tenant, namespace or id: it may have written anywhere in
    /// either scope, so both namespaces are invalidated (without document facts: nothing was
    /// verified) before the caller is told the write is not freshness evidence.
    async fn unverified_ack(
        &self,
        session: &Session,
        store: &RegisteredStore,
        asked: &Scope,
        ack: &MutationAck,
    ) -> RuntimeError {
        tracing::error!(store = %store.config.id, "connector ACK named another scope or id");
        let scopes = [asked, &ack.scope];
        let input = ChangeInput {
            source_event: None,
            fingerprint: ack.backend_mutation_id.clone(),
            scope_keys: scopes
                .iter()
                .map(|scope| ScopeChange {
                    key: ScopeKey::namespace(scope.tenant_id(), scope.namespace()).0,
                    trigger: "coherence_mismatch".to_owned(),
                })
                .collect(),
            documents: Vec::new(),
            now_ms: now_ms(),
            capture: None,
        };
        let invalidations: Vec<Invalidation> = scopes
            .iter()
            .map(|scope| Invalidation::Namespace {
                tenant_id: Some(scope.tenant_id().to_owned()),
                namespace: scope.namespace().to_owned(),
            })
            .collect();
        if let Err(err) = self.apply(session, input, &invalidations).await {
            tracing::error!(error = %err, "the mismatched ACK's invalidation was not recorded");
        }
        RuntimeError::new(
            RuntimeErrorKind::AckMismatch,
            format!(
                "store {} acknowledged a different tenant, namespace or id; the write is not treated as freshness evidence",
                store.config.id
            ),
        )
        .acknowledged()
    }
}

/// The ledger change a verified ACK makes, and what it invalidates. A written document may now
/// rank into any result of its namespace; a deleted one only leaves the results that held it
/// (see `ChangeType::may_reorder_results`).
fn verified_change(
    mutation: &Mutation,
    ack: &MutationAck,
    revision: Option<String>,
) -> (ChangeInput, Invalidation) {
    let scope = &mutation.scope;
    let deleting = mutation.document.is_none();
    let kind = if deleting { ChangeType::Deleted } else { ChangeType::ContentUpdated };
    let change_scope = ChangeScope {
        tenant_id: Some(scope.tenant_id().to_owned()),
        namespace: Some(scope.namespace().to_owned()),
        connector_id: None,
    };
    let target = ChangeTarget::Document { doc_id: mutation.id.to_string() };
    let scope_keys = target
        .touched_keys_for(&change_scope, kind)
        .into_iter()
        .map(|key| ScopeChange { key: key.0, trigger: "write_through".to_owned() })
        .collect();
    let input = ChangeInput {
        source_event: None,
        fingerprint: ack.backend_mutation_id.clone(),
        scope_keys,
        documents: vec![DocumentChange {
            key: DocumentKey {
                tenant_id: scope.tenant_id().to_owned(),
                namespace: scope.namespace().to_owned(),
                doc_id: mutation.id.to_string(),
            },
            revision,
            watermark: ack.watermark.map(|watermark| watermark.value()),
            tombstone: deleting && ack.outcome == MutationOutcome::Deleted,
            event_timestamp_ms: None,
        }],
        now_ms: now_ms(),
        capture: None,
    };
    (input, Invalidation::for_change(&target, &change_scope, kind))
}

/// The capture step of a verified mutation.
fn capture_step(mutation: &Mutation, step_type: StepType) -> StepRequest<'_> {
    let scope = &mutation.scope;
    let deleting = mutation.document.is_none();
    StepRequest {
        step_type,
        tenant_id: Some(scope.tenant_id()),
        label: format!(
            "{} {}/{}/{}",
            step_type.as_str(),
            scope.tenant_id(),
            scope.namespace(),
            mutation.id
        ),
        route: if deleting { routes::DELETE } else { routes::UPSERT },
        body: mutation.raw_body.clone(),
        idempotency_key: None,
    }
}
