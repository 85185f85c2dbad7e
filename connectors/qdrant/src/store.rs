//! The two backends behind one interface: what the connector asks of a store, in terms of the
//! neutral condition tree, with every error already classified and redacted.
//!
//! This module holds no scope logic of its own: every condition it receives was built by
//! `filter::scoped` or `filter::scoped_ids`, so it always carries tenant and namespace.

use kyro_connector_sdk::ConnectorError;
use serde_json::{Map, Value};

use crate::embedded::EmbeddedStore;
use crate::error::{Redactor, StoreError};
use crate::filter::Condition;
use crate::server::ServerStore;

/// A point found by a search.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) payload: Map<String, Value>,
    pub(crate) score: f32,
}

/// An opened backend.
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "one value per connector, never moved in a hot path")]
pub(crate) enum Store {
    Server { store: ServerStore, redactor: Redactor },
    Embedded(EmbeddedStore),
}

impl Store {
    fn error(&self, error: &StoreError) -> ConnectorError {
        match self {
            Self::Server { redactor, .. } => redactor.to_connector_error(error),
            Self::Embedded(_) => Redactor::default().to_connector_error(error),
        }
    }

    pub(crate) fn search(
        &self,
        filter: &Condition,
        embedding: &[f32],
        limit: u32,
    ) -> Result<Vec<Found>, ConnectorError> {
        let result = match self {
            Self::Server { store, .. } => store.search(filter, embedding, limit),
            Self::Embedded(store) => store.search(filter, embedding, limit),
        };
        result.map_err(|err| self.error(&err))
    }

    pub(crate) fn count(&self, filter: &Condition) -> Result<u64, ConnectorError> {
        let result = match self {
            Self::Server { store, .. } => store.count(filter),
            Self::Embedded(store) => store.count(filter),
        };
        result.map_err(|err| self.error(&err))
    }

    pub(crate) fn scroll(
        &self,
        filter: &Condition,
        limit: u32,
    ) -> Result<Vec<Map<String, Value>>, ConnectorError> {
        let result = match self {
            Self::Server { store, .. } => store.scroll(filter, limit),
            Self::Embedded(store) => store.scroll(filter, limit),
        };
        result.map_err(|err| self.error(&err))
    }

    pub(crate) fn version(&self) -> Result<String, ConnectorError> {
        match self {
            Self::Server { store, .. } => store.version().map_err(|err| self.error(&err)),
            Self::Embedded(_) => Ok(crate::embedded::ENGINE_VERSION.to_owned()),
        }
    }
}
