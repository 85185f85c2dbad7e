//! The runtime layer: sessions, group commit, connector calls, and the serving operations
//! (retrieve, change events, invalidations, write-through mutations, feedback), with the
//! capture of every step and shadow sessions.
//!
//! Decisions come from `kyro_core::planner`; this layer gathers the facts (ledger reads,
//! connector answers) and does the IO. It knows nothing of HTTP: it answers with wire types or
//! a [`RuntimeError`]. Invariants it keeps:
//! - a change is acknowledged only after the state store committed it, and the reuse entries it
//!   covers are invalidated before the acknowledgement is sent;
//! - every retrieve's trace is durable before its packet is returned;
//! - connector output is re-checked (scope, ids, counts, order) before it can reach a packet;
//! - every tenant a request names or touches is one the caller may act for ([`Principal`]).

pub(crate) mod calls;
pub(crate) mod capture;
pub(crate) mod changes;
pub(crate) mod commit;
pub(crate) mod error;
pub(crate) mod evidence;
pub(crate) mod feedback;
pub(crate) mod fingerprint;
pub(crate) mod health;
pub(crate) mod mutations;
pub(crate) mod packet;
pub(crate) mod principal;
pub(crate) mod retrieve;
pub(crate) mod session;
pub(crate) mod shadow;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use self::error::{RuntimeError, RuntimeErrorKind, RuntimeResult};
use self::session::Session;
use crate::config::ValidatedConfig;
use crate::stores::{RefusedStore, RegisteredStore};

/// Milliseconds since the epoch, from the system clock.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

/// Everything the serving operations share.
pub(crate) struct Runtime {
    /// The checked configuration.
    pub(crate) config: ValidatedConfig,
    /// Stores that serve.
    pub(crate) stores: Vec<Arc<RegisteredStore>>,
    /// Stores that were refused at startup.
    pub(crate) refused: Vec<RefusedStore>,
    /// The live session: the durable ledger, traces, feedback and capture.
    pub(crate) live: Arc<Session>,
    /// Shadow sessions by id.
    pub(crate) shadows: Mutex<HashMap<String, Arc<Session>>>,
}

impl Runtime {
    /// The session a request is served in: the live one, or the named shadow session.
    ///
    /// # Errors
    ///
    /// `NotFound` when no live shadow session has that id (an expired one is dropped).
    pub(crate) fn session(&self, shadow_id: Option<&str>) -> RuntimeResult<Arc<Session>> {
        let Some(id) = shadow_id else { return Ok(Arc::clone(&self.live)) };
        let mut shadows =
            self.shadows.lock().map_err(|_| RuntimeError::not_found("no such shadow session"))?;
        match shadows.get(id) {
            Some(session) if session.expires_at_ms.is_none_or(|expires| expires > now_ms()) => {
                Ok(Arc::clone(session))
            }
            Some(_) => {
                shadows.remove(id);
                Err(RuntimeError::not_found("the shadow session expired"))
            }
            None => Err(RuntimeError::not_found("no shadow session with that id")),
        }
    }

    /// The store serving `namespace`, the first configured one that does.
    ///
    /// # Errors
    ///
    /// `NotFound` when no store is configured for it, `StoreNotCertified` when the stores that
    /// might were refused.
    pub(crate) fn store_for(&self, namespace: &str) -> RuntimeResult<&Arc<RegisteredStore>> {
        self.stores.iter().find(|store| store.serves(namespace)).ok_or_else(|| {
            if self.refused.is_empty() {
                RuntimeError::not_found(format!("no configured store serves namespace {namespace}"))
            } else {
                RuntimeError::new(
                    RuntimeErrorKind::StoreNotCertified,
                    format!("no certified store serves namespace {namespace}"),
                )
            }
        })
    }
}
