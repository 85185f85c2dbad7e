//! Connector calls: every call runs on the guard's worker threads and is awaited without
//! blocking the async runtime; the store's call timeout and the guard's quarantine rule apply.
//! What a connector says when it fails goes to the log; callers get a public-safe error.

use kyro_connector_sdk::{Connector, ConnectorError, ErrorKind, SearchRequest, SearchResponse};

use super::error::{RuntimeError, RuntimeErrorKind};
use crate::stores::RegisteredStore;
use crate::wire::request::ValidRetrieve;

/// A connector call running on the guard's workers.
pub(crate) struct PendingCall<T> {
    answer: tokio::sync::oneshot::Receiver<kyro_connector_sdk::Result<T>>,
    deadline: tokio::time::Instant,
}

/// Starts a connector call; [`finish_call`] waits for it (bounded by the store's timeout from
/// now) and applies the quarantine rule.
///
/// # Errors
///
/// The guard refused the call (the connector is quarantined or its workers are gone).
pub(crate) fn start_call<T: Send + 'static>(
    store: &RegisteredStore,
    call: impl FnOnce(&dyn Connector) -> kyro_connector_sdk::Result<T> + Send + 'static,
) -> kyro_connector_sdk::Result<PendingCall<T>> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    store.connector.submit(call, move |result| {
        let _ = reply.send(result);
    })?;
    Ok(PendingCall { answer, deadline: tokio::time::Instant::now() + store.config.call_timeout })
}

/// Waits for a started call.
///
/// # Errors
///
/// The connector failed, the worker stopped, or the deadline passed.
pub(crate) async fn finish_call<T: Send + 'static>(
    store: &RegisteredStore,
    operation: &'static str,
    pending: PendingCall<T>,
) -> kyro_connector_sdk::Result<T> {
    let result = match tokio::time::timeout_at(pending.deadline, pending.answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(ConnectorError::internal("connector worker stopped")),
        Err(_) => Err(ConnectorError::new(
            ErrorKind::Timeout,
            format!(
                "store {} did not answer {operation} within {:?}",
                store.config.id, store.config.call_timeout
            ),
        )),
    };
    store.connector.observe(operation, result)
}

/// Starts a call and waits for it.
///
/// # Errors
///
/// As [`start_call`] and [`finish_call`].
pub(crate) async fn call_connector<T: Send + 'static>(
    store: &RegisteredStore,
    operation: &'static str,
    call: impl FnOnce(&dyn Connector) -> kyro_connector_sdk::Result<T> + Send + 'static,
) -> kyro_connector_sdk::Result<T> {
    let pending = start_call(store, call)?;
    finish_call(store, operation, pending).await
}

/// The backend search a retrieve asks for, as a call for the guard's workers.
pub(crate) fn search_call(
    valid: &ValidRetrieve,
) -> impl FnOnce(&dyn Connector) -> kyro_connector_sdk::Result<SearchResponse> + Send + 'static {
    let request = SearchRequest {
        embedding: valid.embedding.clone(),
        top_k: valid.top_k,
        filter: valid.filter.clone(),
        include_content: valid.include_content,
    };
    let scope = valid.scope.clone();
    move |connector| connector.search(&scope, &request)
}

/// A connector failure as the caller sees it: the kind and the store, never the connector's
/// own message, which may quote SQL, rows or credentials. The message is logged here.
pub(crate) fn connector_error(store_id: &str, err: &ConnectorError) -> RuntimeError {
    tracing::warn!(store = %store_id, kind = %err.kind(), error = %err.message(), "connector call failed");
    let kind = match err.kind() {
        ErrorKind::InvalidRequest | ErrorKind::LimitExceeded => RuntimeErrorKind::StoreRejected,
        ErrorKind::Unsupported => RuntimeErrorKind::Unsupported,
        _ => RuntimeErrorKind::ConnectorUnavailable,
    };
    RuntimeError::new(kind, format!("store {store_id} answered {}", err.kind()))
}
