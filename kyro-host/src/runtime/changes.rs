//! Change events and invalidations: each is confined to the caller's tenants, made durable in
//! the ledger (one transaction with its capture step), and the reuse entries it covers are
//! invalidated before it is acknowledged.

use kyro_core::change::{ChangeScope, ChangeTarget};
use kyro_core::planner::{Fingerprinter, Invalidation};
use kyro_core::replay::StepType;
use serde_json::Value;

use super::capture::{StepRequest, change_capture};
use super::error::{RuntimeError, RuntimeErrorKind, RuntimeResult};
use super::evidence::Evidence;
use super::principal::Principal;
use super::session::Session;
use super::{Runtime, now_ms};
use crate::wire::change::{ChangeEventResult, ValidChange, ValidInvalidation};
use crate::wire::routes;
use kyro_state::{
    ApplyOutcome, ChangeInput, DocumentChange, DocumentKey, EventTenant, ScopeChange, SourceEvent,
};

/// Refuses a change that touches a tenant the caller may not act for. What a change touches is
/// what it invalidates: a restricted caller may only cover entries of its own tenants, never a
/// store, a namespace across tenants, or everything.
pub(crate) fn confine_change(
    principal: &Principal,
    scope: &ChangeScope,
    invalidation: &Invalidation,
) -> RuntimeResult<()> {
    if let Some(tenant_id) = &scope.tenant_id {
        principal.confine(tenant_id)?;
    }
    match invalidation {
        Invalidation::Tenant { tenant_id }
        | Invalidation::Namespace { tenant_id: Some(tenant_id), .. }
        | Invalidation::Document { tenant_id, .. } => {
            principal.confine(tenant_id)?;
            if scope.tenant_id.as_ref().is_some_and(|named| named != tenant_id) {
                return Err(RuntimeError::forbidden(
                    "the change's scope and target name different tenants",
                ));
            }
            Ok(())
        }
        Invalidation::Namespace { tenant_id: None, .. } => {
            principal.require_unrestricted("change a namespace across tenants")
        }
        Invalidation::Store { .. } => principal.require_unrestricted("change a whole connector"),
        Invalidation::All => principal.require_unrestricted("change every tenant"),
    }
}

/// A fingerprint of a JSON body that does not depend on its key order or whitespace: a retried
/// event whose client reordered its keys is the same event.
pub(crate) fn canonical_fingerprint(value: &Value) -> String {
    fn feed(value: &Value, out: &mut Fingerprinter) {
        match value {
            Value::Null => {
                out.field("null");
            }
            Value::Bool(flag) => {
                out.field(if *flag { "true" } else { "false" });
            }
            Value::Number(number) => {
                out.field("number").field(&number.to_string());
            }
            Value::String(text) => {
                out.field("string").field(text);
            }
            Value::Array(items) => {
                out.field("array").number(items.len() as u64);
                for item in items {
                    feed(item, out);
                }
            }
            Value::Object(object) => {
                let mut keys: Vec<&String> = object.keys().collect();
                keys.sort_unstable();
                out.field("object").number(keys.len() as u64);
                for key in keys {
                    out.field(key);
                    feed(&object[key], out);
                }
            }
        }
    }
    let mut fingerprinter = Fingerprinter::default();
    feed(value, &mut fingerprinter);
    fingerprinter.finish().to_string()
}

impl Runtime {
    /// `POST /v1/events/change`, with the parsed body for the dedupe fingerprint.
    ///
    /// # Errors
    ///
    /// A tenant the caller may not touch, a replayed id with a different body (`Conflict`), or a
    /// ledger that could not persist the change.
    pub(crate) async fn change_event(
        &self,
        session: &Session,
        principal: &Principal,
        change: ValidChange,
        body: &Value,
    ) -> RuntimeResult<ChangeEventResult> {
        let invalidation =
            Invalidation::for_change(&change.target, &change.scope, change.change_type);
        confine_change(principal, &change.scope, &invalidation)?;
        let keys = change.target.touched_keys_for(&change.scope, change.change_type);
        let documents = match (&change.target, &change.scope.tenant_id, &change.scope.namespace) {
            (ChangeTarget::Document { doc_id }, Some(tenant_id), Some(namespace)) => {
                vec![DocumentChange {
                    key: DocumentKey {
                        tenant_id: tenant_id.clone(),
                        namespace: namespace.clone(),
                        doc_id: doc_id.clone(),
                    },
                    revision: change.revision.clone(),
                    watermark: None,
                    tombstone: change.change_type.is_tombstone(),
                    event_timestamp_ms: change.timestamp_ms,
                }]
            }
            _ => Vec::new(),
        };
        let mut input = ChangeInput {
            source_event: Some(SourceEvent::new(
                EventTenant::from(change.scope.tenant_id.as_deref()),
                change.source_event_id.clone(),
            )),
            fingerprint: canonical_fingerprint(body),
            scope_keys: keys
                .into_iter()
                .map(|key| ScopeChange { key: key.0, trigger: "change_event".to_owned() })
                .collect(),
            documents,
            now_ms: now_ms(),
            capture: None,
        };
        input.capture = session.capture.then(|| {
            let step = StepRequest {
                step_type: StepType::ChangeEvent,
                tenant_id: change.scope.tenant_id.as_deref(),
                label: format!("change_event {}", change.source_event_id),
                route: routes::CHANGE_EVENT,
                body: body.to_string(),
                idempotency_key: None,
            };
            change_capture(step, &input, invalidation.clone())
        });
        change_result(self.apply(session, input, &[invalidation]).await?, "source_event_id")
    }

    /// `POST /v1/context/invalidate`.
    ///
    /// # Errors
    ///
    /// A tenant the caller may not touch, or a ledger that could not persist the invalidation.
    pub(crate) async fn invalidate(
        &self,
        session: &Session,
        principal: &Principal,
        request: ValidInvalidation,
        idempotency_key: Option<String>,
        body: &Value,
    ) -> RuntimeResult<ChangeEventResult> {
        let ValidInvalidation { target, scope } = request;
        let invalidation = Invalidation::for_target(&target, &scope);
        confine_change(principal, &scope, &invalidation)?;
        let keys = target.touched_keys(&scope);
        let trigger = if matches!(target, ChangeTarget::Namespace { .. }) {
            "namespace_invalidation"
        } else {
            "manual_invalidation"
        };
        let mut input = ChangeInput {
            source_event: idempotency_key.as_ref().map(|key| {
                SourceEvent::new(
                    EventTenant::from(scope.tenant_id.as_deref()),
                    format!("idempotency:invalidate:{key}"),
                )
            }),
            fingerprint: canonical_fingerprint(body),
            scope_keys: keys
                .into_iter()
                .map(|key| ScopeChange { key: key.0, trigger: trigger.to_owned() })
                .collect(),
            documents: Vec::new(),
            now_ms: now_ms(),
            capture: None,
        };
        input.capture = session.capture.then(|| {
            let step = StepRequest {
                step_type: StepType::Invalidate,
                tenant_id: scope.tenant_id.as_deref(),
                label: format!("invalidate {trigger}"),
                route: routes::INVALIDATE,
                body: body.to_string(),
                idempotency_key: idempotency_key.clone(),
            };
            change_capture(step, &input, invalidation.clone())
        });
        change_result(self.apply(session, input, &[invalidation]).await?, "Idempotency-Key")
    }

    /// Applies a durable change and invalidates what it covers; returns the ledger's outcome and
    /// how many reuse entries it invalidated.
    pub(crate) async fn apply(
        &self,
        session: &Session,
        input: ChangeInput,
        invalidations: &[Invalidation],
    ) -> RuntimeResult<(ApplyOutcome, usize)> {
        let outcome = session.changes.submit(input).await.map_err(|err| {
            session.mark(&[Evidence::PlannerState, Evidence::Capture], false);
            tracing::error!(error = %err, "planner state persistence failed");
            RuntimeError::new(
                RuntimeErrorKind::PersistenceFailed(Evidence::PlannerState),
                "the change could not be made durable; it was not acknowledged",
            )
        })?;
        session.mark(&[Evidence::PlannerState, Evidence::Capture], true);
        session.observe(outcome.generation());
        let invalidated = match outcome {
            ApplyOutcome::Applied { generation } => session
                .cache
                .lock()
                .map(|mut cache| {
                    invalidations
                        .iter()
                        .map(|invalidation| cache.invalidate(invalidation, generation))
                        .sum()
                })
                .unwrap_or(0),
            _ => 0,
        };
        Ok((outcome, invalidated))
    }
}

/// The answer to a change event or invalidation, from the ledger's outcome; `key_name` names
/// the idempotency key the caller sent (`source_event_id` or `Idempotency-Key`). A conflict
/// says nothing about the change that holds the key.
fn change_result(
    (outcome, entries_invalidated): (ApplyOutcome, usize),
    key_name: &str,
) -> RuntimeResult<ChangeEventResult> {
    match outcome {
        ApplyOutcome::Applied { generation } => {
            Ok(ChangeEventResult { accepted: true, generation, entries_invalidated, detail: None })
        }
        ApplyOutcome::Replayed { generation } => Ok(ChangeEventResult {
            accepted: true,
            generation,
            entries_invalidated: 0,
            detail: Some(format!(
                "{key_name} was already processed; its original generation is returned"
            )),
        }),
        ApplyOutcome::Conflict { .. } => Err(RuntimeError::conflict(format!(
            "{key_name} was already used with a different body"
        ))),
    }
}
