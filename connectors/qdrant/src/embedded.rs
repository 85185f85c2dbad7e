//! The embedded backend: Qdrant's qdrant-edge engine, in this process, over a local directory.
//!
//! The engine is synchronous, so this backend needs no async runtime. The connector is the only
//! writer of its directory, which is what lets it back write-through ownership: an upsert or a
//! delete goes through the engine's write-ahead log and is applied to its segments before
//! `EdgeShard::update` returns, and the connector reads the point back (or counts it gone)
//! within the scope before it acknowledges. Writes are serialized by one lock, so the
//! inserted/updated outcome of the existence check cannot race another write.
//!
//! Durability: the engine appends to a memory-mapped write-ahead log and does not fsync each
//! write; an acknowledged write survives a crash of this process, not necessarily a power loss
//! before the next flush (the engine flushes when it is closed).
//!
//! This module does not translate KyroDB filters itself; it renders the neutral tree from
//! `filter.rs`.

use std::sync::Mutex;

use kyro_connector_sdk::{ConnectorError, Distance, VectorSpec};
use qdrant_edge::external::uuid::Uuid;
use qdrant_edge::{
    CountRequest, CreateIndex, DEFAULT_VECTOR_NAME, EdgeConfig, EdgeShard, EdgeVectorParams,
    FieldCondition, FieldIndexOperations, HasIdCondition, JsonPath, KeywordIndexParams, Match,
    MatchAny, MatchValue, NamedQuery, Payload, PayloadFieldSchema, PayloadSchemaParams, PointId,
    PointInsertOperations, PointOperations, PointStructPersisted, QueryEnum, Range, ScrollRequest,
    SearchRequest, UpdateOperation, ValueVariants, VectorInternal, VectorStructInternal,
    VectorStructPersisted, WithPayloadInterface, WithVector,
};
use serde_json::{Map, Value};

use crate::config::{EmbeddedSettings, PayloadFields};
use crate::error::StoreError;
use crate::filter::{Condition, FieldPath};
use crate::payload::PointKey;
use crate::store::Found;

/// The version string reported in health and certification reports.
pub const ENGINE_VERSION: &str = "qdrant-edge 0.7.0";

/// An opened embedded collection.
pub(crate) struct EmbeddedStore {
    shard: EdgeShard,
    /// Serializes writes: existence check, write and read-back happen under it.
    writes: Mutex<()>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").field("path", &self.shard.path()).finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens the collection directory `<path>/<collection>`, creating it when allowed, checks
    /// its dimension and distance, creates the scope's payload indexes, and builds the vector
    /// index for whatever was written since the last open.
    ///
    /// # Errors
    ///
    /// `Configuration` when the collection is missing (and may not be created) or has another
    /// dimension or distance; `Unavailable` when the directory cannot be used.
    pub(crate) fn open(
        settings: &EmbeddedSettings,
        collection: &str,
        vector: VectorSpec,
        fields: &PayloadFields,
        create_collection: bool,
    ) -> Result<Self, ConnectorError> {
        let dir = settings.path().join(collection);
        let shard = if dir.join("edge_config.json").exists() {
            let shard = EdgeShard::load(&dir, None).map_err(|err| {
                ConnectorError::unavailable(format!(
                    "failed to open embedded collection \"{collection}\": {err}"
                ))
            })?;
            check_vectors(collection, vector, &shard.config())?;
            shard
        } else if create_collection {
            std::fs::create_dir_all(&dir).map_err(|err| {
                ConnectorError::unavailable(format!(
                    "failed to create the directory of embedded collection \"{collection}\": {}",
                    err.kind()
                ))
            })?;
            EdgeShard::new(&dir, edge_config(vector)).map_err(|err| {
                ConnectorError::unavailable(format!(
                    "failed to create embedded collection \"{collection}\": {err}"
                ))
            })?
        } else {
            return Err(ConnectorError::configuration(format!(
                "embedded collection \"{collection}\" does not exist under path; create it or set create_collection = true"
            )));
        };
        let store = Self { shard, writes: Mutex::new(()) };
        store.ensure_indexes(fields).map_err(|err| {
            ConnectorError::unavailable(format!(
                "failed to index embedded collection \"{collection}\": {err}"
            ))
        })?;
        Ok(store)
    }

    /// Keyword payload indexes on tenant (marked as the tenant field) and namespace, then the
    /// engine's own optimizers (HNSW for large segments), which run only when asked to.
    fn ensure_indexes(&self, fields: &PayloadFields) -> Result<(), StoreError> {
        let schema = self.shard.info().payload_schema;
        for (field, is_tenant) in [(fields.tenant(), true), (fields.namespace(), false)] {
            let path = json_path(&FieldPath { field: field.to_owned(), key: None })?;
            if schema.contains_key(&path) {
                continue;
            }
            let params = KeywordIndexParams {
                is_tenant: is_tenant.then_some(true),
                ..KeywordIndexParams::default()
            };
            let operation = UpdateOperation::FieldIndexOperation(
                FieldIndexOperations::CreateIndex(CreateIndex {
                    field_name: path,
                    field_schema: Some(PayloadFieldSchema::FieldParams(
                        PayloadSchemaParams::Keyword(params),
                    )),
                }),
            );
            self.shard
                .update(operation)
                .map_err(|err| StoreError::embedded("create_index", err))?;
        }
        self.optimize()
    }

    /// Runs the engine's optimizers until they have nothing left to do: merges small segments
    /// and builds the HNSW index of segments past the indexing threshold.
    pub(crate) fn optimize(&self) -> Result<(), StoreError> {
        let _writes = self.lock_writes()?;
        self.shard.optimize().map_err(|err| StoreError::embedded("optimize", err))?;
        Ok(())
    }

    fn lock_writes(&self) -> Result<std::sync::MutexGuard<'_, ()>, StoreError> {
        self.writes.lock().map_err(|_| {
            StoreError::embedded(
                "lock",
                qdrant_edge::OperationError::service_error(
                    "the connector's write lock is poisoned",
                ),
            )
        })
    }

    /// The `limit` nearest points that satisfy `filter`.
    pub(crate) fn search(
        &self,
        filter: &Condition,
        embedding: &[f32],
        limit: u32,
    ) -> Result<Vec<Found>, StoreError> {
        let request = search_request(filter, embedding, limit)?;
        let points =
            self.shard.search(request).map_err(|err| StoreError::embedded("search", err))?;
        Ok(points
            .into_iter()
            .map(|point| Found {
                payload: point.payload.map(|payload| payload.0).unwrap_or_default(),
                score: point.score,
            })
            .collect())
    }

    /// How many points satisfy `filter`, exactly.
    pub(crate) fn count(&self, filter: &Condition) -> Result<u64, StoreError> {
        let count = self
            .shard
            .count(CountRequest { filter: Some(to_filter(filter)?), exact: true })
            .map_err(|err| StoreError::embedded("count", err))?;
        Ok(count as u64)
    }

    /// The payloads of at most `limit` points that satisfy `filter`.
    pub(crate) fn scroll(
        &self,
        filter: &Condition,
        limit: u32,
    ) -> Result<Vec<Map<String, Value>>, StoreError> {
        let (records, _) = self
            .shard
            .scroll(ScrollRequest {
                offset: None,
                limit: Some(limit as usize),
                filter: Some(to_filter(filter)?),
                with_payload: Some(WithPayloadInterface::Bool(true)),
                with_vector: WithVector::Bool(false),
                order_by: None,
            })
            .map_err(|err| StoreError::embedded("scroll", err))?;
        Ok(records
            .into_iter()
            .map(|record| record.payload.map(|p| p.0).unwrap_or_default())
            .collect())
    }

    /// Writes one point, then reads it back within `owner` (its scope and id); returns whether
    /// it existed before and the engine's operation number that wrote it.
    ///
    /// # Errors
    ///
    /// `Internal` when the point id is held by a point of another scope (which deterministic
    /// ids make impossible short of a hash collision or a foreign writer), or when the point is
    /// not visible after the write.
    pub(crate) fn upsert(
        &self,
        point: PointKey,
        embedding: &[f32],
        payload: Map<String, Value>,
        owner: &Condition,
        probe: &[f32],
    ) -> Result<(bool, u64), UpsertError> {
        let _writes = self.lock_writes()?;
        let point_id = edge_point_id(point);
        let existing = self
            .shard
            .retrieve(
                &[point_id],
                Some(WithPayloadInterface::Bool(false)),
                Some(WithVector::Bool(false)),
            )
            .map_err(|err| StoreError::embedded("retrieve", err))?;
        let previous = if existing.is_empty() {
            None
        } else {
            Some(self.version_of(owner, probe)?.ok_or(UpsertError::ForeignPoint)?)
        };
        let operation = UpdateOperation::PointOperation(PointOperations::UpsertPoints(
            PointInsertOperations::PointsList(vec![PointStructPersisted {
                id: point_id,
                vector: VectorStructPersisted::from(VectorStructInternal::Single(
                    embedding.to_vec(),
                )),
                payload: Some(Payload(payload)),
            }]),
        ));
        self.shard.update(operation).map_err(|err| StoreError::embedded("upsert", err))?;
        // Visible means a scoped read finds the point at a version newer than before the write.
        let version = self
            .version_of(owner, probe)?
            .filter(|version| previous.is_none_or(|previous| *version > previous))
            .ok_or(UpsertError::NotVisible)?;
        Ok((previous.is_some(), version))
    }

    /// Deletes the points that satisfy `target` (one document of one scope) and checks that
    /// none is left; returns the engine's operation number of the point it deleted, or `None`
    /// when there was nothing to delete.
    pub(crate) fn delete(
        &self,
        target: &Condition,
        probe: &[f32],
    ) -> Result<Option<u64>, UpsertError> {
        let _writes = self.lock_writes()?;
        let Some(version) = self.version_of(target, probe)? else { return Ok(None) };
        let operation = UpdateOperation::PointOperation(PointOperations::DeletePointsByFilter(
            to_filter(target)?,
        ));
        self.shard.update(operation).map_err(|err| StoreError::embedded("delete", err))?;
        if self.count(target)? != 0 {
            return Err(UpsertError::NotVisible);
        }
        Ok(Some(version))
    }

    /// The engine's version (operation number) of the one point that satisfies `target`.
    fn version_of(&self, target: &Condition, probe: &[f32]) -> Result<Option<u64>, StoreError> {
        let request = SearchRequest {
            with_payload: Some(WithPayloadInterface::Bool(false)),
            ..search_request(target, probe, 1)?
        };
        let points =
            self.shard.search(request).map_err(|err| StoreError::embedded("read_back", err))?;
        Ok(points.first().map(|point| point.version))
    }
}

/// Why a write could not be acknowledged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpsertError {
    /// The engine failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The derived point id is held by a point of another scope.
    #[error("the document's point id is held by a point of another scope; the write was refused")]
    ForeignPoint,
    /// The write returned but a read within the scope does not show it.
    #[error("the write was applied but is not visible to a scoped read")]
    NotVisible,
}

fn edge_config(vector: VectorSpec) -> EdgeConfig {
    EdgeConfig::builder()
        .vector(
            DEFAULT_VECTOR_NAME,
            EdgeVectorParams::builder(vector.dimension as usize, edge_distance(vector.distance))
                .build(),
        )
        .build()
}

/// The engine's name for a distance.
pub(crate) fn edge_distance(distance: Distance) -> qdrant_edge::Distance {
    match distance {
        Distance::Cosine => qdrant_edge::Distance::Cosine,
        Distance::L2 => qdrant_edge::Distance::Euclid,
        Distance::InnerProduct => qdrant_edge::Distance::Dot,
    }
}

fn check_vectors(
    collection: &str,
    expected: VectorSpec,
    config: &EdgeConfig,
) -> Result<(), ConnectorError> {
    let params = config.vectors.get(DEFAULT_VECTOR_NAME).filter(|_| config.vectors.len() == 1);
    let Some(params) = params else {
        return Err(ConnectorError::configuration(format!(
            "embedded collection \"{collection}\" does not hold one unnamed dense vector per point; the connector needs exactly that"
        )));
    };
    if params.size != expected.dimension as usize
        || params.distance != edge_distance(expected.distance)
    {
        return Err(ConnectorError::configuration(format!(
            "embedded collection \"{collection}\" has dimension {} and distance {:?}, but the configuration says dimension {} and distance {}",
            params.size,
            params.distance,
            expected.dimension,
            expected.distance.as_str()
        )));
    }
    Ok(())
}

/// The engine's point id for a derived key.
pub(crate) fn edge_point_id(point: PointKey) -> PointId {
    PointId::Uuid(Uuid::from_bytes(*point.as_bytes()))
}

/// The search request for `filter` (which always carries the scope).
pub(crate) fn search_request(
    filter: &Condition,
    embedding: &[f32],
    limit: u32,
) -> Result<SearchRequest, StoreError> {
    Ok(SearchRequest {
        query: QueryEnum::Nearest(NamedQuery {
            query: VectorInternal::from(embedding.to_vec()),
            using: None,
        }),
        filter: Some(to_filter(filter)?),
        params: None,
        limit: limit as usize,
        offset: 0,
        with_payload: Some(WithPayloadInterface::Bool(true)),
        with_vector: Some(WithVector::Bool(false)),
        score_threshold: None,
    })
}

/// A payload path. Both parts are identifiers (`[A-Za-z0-9_]+`, checked by the configuration
/// and by `FilterKey`), which the engine's path syntax reads as plain keys; the engine keeps its
/// path type's parts private, so the dotted form is parsed, and a failure is reported rather
/// than assumed impossible.
fn json_path(path: &FieldPath) -> Result<JsonPath, StoreError> {
    path.dotted().parse::<JsonPath>().map_err(|()| {
        StoreError::embedded(
            "filter",
            qdrant_edge::OperationError::service_error(format!(
                "payload path {} is not a plain key path",
                path.dotted()
            )),
        )
    })
}

/// Renders a neutral condition tree as the engine's filter.
pub(crate) fn to_filter(condition: &Condition) -> Result<qdrant_edge::Filter, StoreError> {
    let must = match condition {
        Condition::All(children) => to_conditions(children)?,
        other => vec![to_condition(other)?],
    };
    Ok(qdrant_edge::Filter { must: Some(must), ..qdrant_edge::Filter::default() })
}

fn to_conditions(children: &[Condition]) -> Result<Vec<qdrant_edge::Condition>, StoreError> {
    let mut conditions = Vec::with_capacity(children.len());
    for child in children {
        conditions.push(to_condition(child)?);
    }
    Ok(conditions)
}

fn to_condition(condition: &Condition) -> Result<qdrant_edge::Condition, StoreError> {
    let rendered = match condition {
        Condition::Keyword { path, value } => {
            qdrant_edge::Condition::Field(FieldCondition::new_match(
                json_path(path)?,
                Match::Value(MatchValue { value: ValueVariants::String(value.clone()) }),
            ))
        }
        Condition::KeywordAny { path, values } => {
            qdrant_edge::Condition::Field(FieldCondition::new_match(
                json_path(path)?,
                Match::Any(MatchAny {
                    any: qdrant_edge::AnyVariants::Strings(values.iter().cloned().collect()),
                }),
            ))
        }
        Condition::Range { path, min, max } => {
            qdrant_edge::Condition::Field(FieldCondition::new_range(
                json_path(path)?,
                Range { gte: min.map(Into::into), lte: max.map(Into::into), lt: None, gt: None },
            ))
        }
        Condition::HasPoint(points) => qdrant_edge::Condition::HasId(
            points.iter().copied().map(edge_point_id).collect::<HasIdCondition>(),
        ),
        Condition::All(children) => qdrant_edge::Condition::Filter(qdrant_edge::Filter {
            must: Some(to_conditions(children)?),
            ..qdrant_edge::Filter::default()
        }),
        Condition::Any(children) => qdrant_edge::Condition::Filter(qdrant_edge::Filter {
            should: Some(to_conditions(children)?),
            ..qdrant_edge::Filter::default()
        }),
        Condition::Not(child) => qdrant_edge::Condition::Filter(qdrant_edge::Filter {
            must_not: Some(vec![to_condition(child)?]),
            ..qdrant_edge::Filter::default()
        }),
    };
    Ok(rendered)
}
