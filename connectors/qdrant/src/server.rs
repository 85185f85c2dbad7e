//! The server backend: a Qdrant server reached over gRPC with qdrant-client.
//!
//! The connector owns a small tokio runtime, created when it opens, and blocks on it in each
//! synchronous trait call; every call is also bounded by the configured timeout. The request
//! builders here are pure functions, so the exact gRPC messages (scope `must` conditions
//! included) are snapshot-tested without a server.
//!
//! This module does not write documents: KyroDB does not own a server collection's writes, so
//! the server backend declares no upsert and no write-through ownership.

use std::collections::HashMap;
use std::time::Duration;

use qdrant_client::Qdrant;
use qdrant_client::qdrant::{
    self, CollectionExistsRequest, CountPoints, CreateCollection, CreateFieldIndexCollection,
    DeletePoints, FieldType, GetCollectionInfoRequest, KeywordIndexParams, PayloadIndexParams,
    PointsSelector, ScrollPoints, SearchPoints, VectorParams, VectorsConfig,
    condition::ConditionOneOf, r#match::MatchValue, payload_index_params::IndexParams,
    point_id::PointIdOptions, value::Kind, vectors_config,
};
use serde_json::{Map, Value};

use kyro_connector_sdk::{ConnectorError, Distance, Secret, SecretSource, VectorSpec};

use crate::config::{PayloadFields, ServerSettings};
use crate::error::{Redactor, StoreError};
use crate::filter::{Condition, FieldPath};
use crate::store::Found;

/// A connected Qdrant server collection.
pub(crate) struct ServerStore {
    runtime: tokio::runtime::Runtime,
    client: Qdrant,
    collection: String,
    timeout: Duration,
}

impl std::fmt::Debug for ServerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerStore")
            .field("collection", &self.collection)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ServerStore {
    /// Connects, checks (or creates) the collection and its payload indexes.
    ///
    /// # Errors
    ///
    /// `Configuration` when the collection is missing (and may not be created) or has another
    /// dimension or distance; `Unavailable`/`Timeout` when the server cannot be reached. Every
    /// message is redacted.
    pub(crate) fn open(
        settings: &ServerSettings,
        collection: &str,
        vector: VectorSpec,
        fields: &PayloadFields,
        create_collection: bool,
    ) -> Result<(Self, Redactor), ConnectorError> {
        let (store, redactor) = Self::connect(settings, collection)?;
        store.prepare(vector, fields, create_collection).map_err(|err| match err {
            Prepare::Store(err) => redactor.to_connector_error(&err),
            Prepare::Mismatch(message) => ConnectorError::configuration(message),
        })?;
        Ok((store, redactor))
    }

    /// Resolves the API key, starts the runtime and builds the client, without any network IO
    /// (gRPC connects lazily, on the first call).
    ///
    /// # Errors
    ///
    /// `Configuration` for an unresolvable API key or an invalid URL; `Internal` when the
    /// runtime cannot start.
    pub(crate) fn connect(
        settings: &ServerSettings,
        collection: &str,
    ) -> Result<(Self, Redactor), ConnectorError> {
        let api_key = settings.api_key().map(SecretSource::resolve).transpose()?;
        let mut secrets = vec![Secret::new(settings.url())];
        secrets.extend(api_key.clone());
        let redactor = Redactor::new(secrets);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kyro-qdrant")
            .enable_all()
            .build()
            .map_err(|err| {
                ConnectorError::internal(format!(
                    "failed to start the connector's runtime: {}",
                    err.kind()
                ))
            })?;
        let mut client_config = Qdrant::from_url(settings.url())
            .timeout(settings.timeout())
            .connect_timeout(settings.timeout())
            .skip_compatibility_check();
        if let Some(api_key) = &api_key {
            client_config = client_config.api_key(api_key.expose());
        }
        // The channel is created inside the runtime it will run on.
        let client = {
            let _guard = runtime.enter();
            client_config.build()
        }
        .map_err(|err| {
            ConnectorError::configuration(redactor.redact(&format!("invalid url: {err}")))
        })?;
        let store = Self {
            runtime,
            client,
            collection: collection.to_owned(),
            timeout: settings.timeout(),
        };
        Ok((store, redactor))
    }

    fn prepare(
        &self,
        vector: VectorSpec,
        fields: &PayloadFields,
        create_collection: bool,
    ) -> Result<(), Prepare> {
        let exists = self.call("collection_exists", async {
            self.client
                .collection_exists(CollectionExistsRequest {
                    collection_name: self.collection.clone(),
                })
                .await
        })?;
        if !exists {
            if !create_collection {
                return Err(Prepare::Mismatch(format!(
                    "collection \"{}\" does not exist; create it or set create_collection = true",
                    self.collection
                )));
            }
            self.call("create_collection", async {
                self.client
                    .create_collection(create_collection_request(&self.collection, vector))
                    .await
            })?;
        }
        let info = self.call("collection_info", async {
            self.client
                .collection_info(GetCollectionInfoRequest {
                    collection_name: self.collection.clone(),
                })
                .await
        })?;
        let info = info.result.unwrap_or_default();
        let actual = info
            .config
            .and_then(|config| config.params)
            .and_then(|params| params.vectors_config)
            .and_then(|vectors| vectors.config);
        check_vectors(&self.collection, vector, actual.as_ref()).map_err(Prepare::Mismatch)?;
        for (field, is_tenant) in [(fields.tenant(), true), (fields.namespace(), false)] {
            if !info.payload_schema.contains_key(field) {
                self.call("create_field_index", async {
                    self.client
                        .create_field_index(keyword_index_request(
                            &self.collection,
                            field,
                            is_tenant,
                        ))
                        .await
                })?;
            }
        }
        Ok(())
    }

    /// Runs one call on the connector's runtime, bounded by the configured timeout.
    fn call<T>(
        &self,
        operation: &'static str,
        future: impl Future<Output = Result<T, qdrant_client::QdrantError>>,
    ) -> Result<T, StoreError> {
        let timeout = self.timeout;
        self.runtime.block_on(async {
            match tokio::time::timeout(timeout, future).await {
                Ok(result) => result.map_err(|err| StoreError::server(operation, err)),
                Err(_) => Err(StoreError::Timeout { operation, timeout }),
            }
        })
    }

    /// The server's version.
    pub(crate) fn version(&self) -> Result<String, StoreError> {
        let reply = self.call("health_check", self.client.health_check())?;
        Ok(format!("qdrant {}", reply.version))
    }

    /// The `limit` nearest points that satisfy `filter`.
    pub(crate) fn search(
        &self,
        filter: &Condition,
        embedding: &[f32],
        limit: u32,
    ) -> Result<Vec<Found>, StoreError> {
        let request = search_request(&self.collection, filter, embedding, limit, self.timeout);
        let response = self.call("search", self.client.search_points(request))?;
        Ok(response
            .result
            .into_iter()
            .map(|point| Found { payload: payload_to_json(point.payload), score: point.score })
            .collect())
    }

    /// How many points satisfy `filter`, exactly.
    pub(crate) fn count(&self, filter: &Condition) -> Result<u64, StoreError> {
        let request = count_request(&self.collection, filter, self.timeout);
        let response = self.call("count", self.client.count(request))?;
        Ok(response.result.map_or(0, |result| result.count))
    }

    /// The payloads of at most `limit` points that satisfy `filter`.
    pub(crate) fn scroll(
        &self,
        filter: &Condition,
        limit: u32,
    ) -> Result<Vec<Map<String, Value>>, StoreError> {
        let request = scroll_request(&self.collection, filter, limit, self.timeout);
        let response = self.call("scroll", self.client.scroll(request))?;
        Ok(response.result.into_iter().map(|point| payload_to_json(point.payload)).collect())
    }

    /// Writes points and waits until the write is applied. Only the certification harness's
    /// seeding uses it: the server backend does not own writes, so it declares no upsert.
    pub(crate) fn upsert(
        &self,
        points: Vec<(String, Vec<f32>, Map<String, Value>)>,
    ) -> Result<(), StoreError> {
        let points: Vec<qdrant::PointStruct> = points
            .into_iter()
            .map(|(id, vector, payload)| {
                qdrant::PointStruct::new(id, vector, qdrant_client::Payload::from(payload))
            })
            .collect();
        let request = qdrant::UpsertPointsBuilder::new(self.collection.clone(), points).wait(true);
        self.call("upsert", self.client.upsert_points(request))?;
        Ok(())
    }

    /// Deletes the points that satisfy `filter` and waits until the deletion is applied;
    /// returns the server's operation id.
    pub(crate) fn delete(&self, filter: &Condition) -> Result<Option<u64>, StoreError> {
        let request = delete_request(&self.collection, filter, self.timeout);
        let response = self.call("delete", self.client.delete_points(request))?;
        Ok(response.result.and_then(|result| result.operation_id))
    }
}

/// Why a collection could not be prepared.
enum Prepare {
    Store(StoreError),
    Mismatch(String),
}

impl From<StoreError> for Prepare {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

/// The server's name for a distance.
pub(crate) fn grpc_distance(distance: Distance) -> qdrant::Distance {
    match distance {
        Distance::Cosine => qdrant::Distance::Cosine,
        Distance::L2 => qdrant::Distance::Euclid,
        Distance::InnerProduct => qdrant::Distance::Dot,
    }
}

/// Refuses a collection whose vectors are not one unnamed vector of the configured dimension
/// and distance.
fn check_vectors(
    collection: &str,
    expected: VectorSpec,
    actual: Option<&vectors_config::Config>,
) -> Result<(), String> {
    let Some(vectors_config::Config::Params(params)) = actual else {
        return Err(format!(
            "collection \"{collection}\" does not hold one unnamed dense vector per point; the connector needs exactly that"
        ));
    };
    let distance = grpc_distance(expected.distance);
    if params.size != u64::from(expected.dimension) || params.distance != distance as i32 {
        let actual_distance = qdrant::Distance::try_from(params.distance)
            .map_or_else(|_| "unknown".to_owned(), |distance| distance.as_str_name().to_owned());
        return Err(format!(
            "collection \"{collection}\" has dimension {} and distance {actual_distance}, but the configuration says dimension {} and distance {}",
            params.size,
            expected.dimension,
            expected.distance.as_str()
        ));
    }
    Ok(())
}

fn timeout_seconds(timeout: Duration) -> Option<u64> {
    Some(timeout.as_secs().max(1))
}

/// The request that creates the collection: one unnamed vector.
pub(crate) fn create_collection_request(collection: &str, vector: VectorSpec) -> CreateCollection {
    CreateCollection {
        collection_name: collection.to_owned(),
        vectors_config: Some(VectorsConfig {
            config: Some(vectors_config::Config::Params(VectorParams {
                size: u64::from(vector.dimension),
                distance: grpc_distance(vector.distance) as i32,
                ..Default::default()
            })),
        }),
        ..Default::default()
    }
}

/// The request that creates a keyword payload index, marked as the tenant field when it is one.
pub(crate) fn keyword_index_request(
    collection: &str,
    field: &str,
    is_tenant: bool,
) -> CreateFieldIndexCollection {
    CreateFieldIndexCollection {
        collection_name: collection.to_owned(),
        wait: Some(true),
        field_name: field.to_owned(),
        field_type: Some(FieldType::Keyword as i32),
        field_index_params: Some(PayloadIndexParams {
            index_params: Some(IndexParams::KeywordIndexParams(KeywordIndexParams {
                is_tenant: is_tenant.then_some(true),
                ..Default::default()
            })),
        }),
        ..Default::default()
    }
}

/// The search request for `filter` (which always carries the scope).
pub(crate) fn search_request(
    collection: &str,
    filter: &Condition,
    embedding: &[f32],
    limit: u32,
    timeout: Duration,
) -> SearchPoints {
    SearchPoints {
        collection_name: collection.to_owned(),
        vector: embedding.to_vec(),
        filter: Some(to_filter(filter)),
        limit: u64::from(limit),
        with_payload: Some(true.into()),
        with_vectors: Some(false.into()),
        timeout: timeout_seconds(timeout),
        ..Default::default()
    }
}

/// The exact count request for `filter`.
pub(crate) fn count_request(
    collection: &str,
    filter: &Condition,
    timeout: Duration,
) -> CountPoints {
    CountPoints {
        collection_name: collection.to_owned(),
        filter: Some(to_filter(filter)),
        exact: Some(true),
        timeout: timeout_seconds(timeout),
        ..Default::default()
    }
}

/// The scroll request that fetches documents by `filter`.
pub(crate) fn scroll_request(
    collection: &str,
    filter: &Condition,
    limit: u32,
    timeout: Duration,
) -> ScrollPoints {
    ScrollPoints {
        collection_name: collection.to_owned(),
        filter: Some(to_filter(filter)),
        limit: Some(limit),
        with_payload: Some(true.into()),
        with_vectors: Some(false.into()),
        timeout: timeout_seconds(timeout),
        ..Default::default()
    }
}

/// The delete-by-filter request, applied before the server answers.
pub(crate) fn delete_request(
    collection: &str,
    filter: &Condition,
    timeout: Duration,
) -> DeletePoints {
    DeletePoints {
        collection_name: collection.to_owned(),
        wait: Some(true),
        points: Some(PointsSelector::from(to_filter(filter))),
        timeout: timeout_seconds(timeout),
        ..Default::default()
    }
}

/// Renders a neutral condition tree as a gRPC filter.
pub(crate) fn to_filter(condition: &Condition) -> qdrant::Filter {
    match condition {
        Condition::All(children) => qdrant::Filter {
            must: children.iter().map(to_condition).collect(),
            ..Default::default()
        },
        other => qdrant::Filter { must: vec![to_condition(other)], ..Default::default() },
    }
}

fn to_condition(condition: &Condition) -> qdrant::Condition {
    let one_of = match condition {
        Condition::Keyword { path, value } => {
            // Built explicitly: qdrant-client's `From<String>` turns a value with white space
            // into a full-text match, which is not equality.
            field_match(path, MatchValue::Keyword(value.clone()))
        }
        Condition::KeywordAny { path, values } => field_match(
            path,
            MatchValue::Keywords(qdrant::RepeatedStrings { strings: values.clone() }),
        ),
        Condition::Range { path, min, max } => ConditionOneOf::Field(qdrant::FieldCondition {
            key: path.dotted(),
            range: Some(qdrant::Range { gte: *min, lte: *max, lt: None, gt: None }),
            ..Default::default()
        }),
        Condition::HasPoint(points) => ConditionOneOf::HasId(qdrant::HasIdCondition {
            has_id: points
                .iter()
                .map(|point| qdrant::PointId {
                    point_id_options: Some(PointIdOptions::Uuid(point.to_uuid_string())),
                })
                .collect(),
        }),
        Condition::All(children) => ConditionOneOf::Filter(qdrant::Filter {
            must: children.iter().map(to_condition).collect(),
            ..Default::default()
        }),
        Condition::Any(children) => ConditionOneOf::Filter(qdrant::Filter {
            should: children.iter().map(to_condition).collect(),
            ..Default::default()
        }),
        Condition::Not(child) => ConditionOneOf::Filter(qdrant::Filter {
            must_not: vec![to_condition(child)],
            ..Default::default()
        }),
    };
    qdrant::Condition { condition_one_of: Some(one_of) }
}

fn field_match(path: &FieldPath, value: MatchValue) -> ConditionOneOf {
    ConditionOneOf::Field(qdrant::FieldCondition {
        key: path.dotted(),
        r#match: Some(qdrant::Match { match_value: Some(value) }),
        ..Default::default()
    })
}

/// A gRPC payload as JSON, so one reader handles both backends.
fn payload_to_json(payload: HashMap<String, qdrant::Value>) -> Map<String, Value> {
    payload.into_iter().map(|(key, value)| (key, value_to_json(value))).collect()
}

fn value_to_json(value: qdrant::Value) -> Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(flag)) => Value::Bool(flag),
        Some(Kind::IntegerValue(integer)) => Value::from(integer),
        Some(Kind::DoubleValue(double)) => {
            serde_json::Number::from_f64(double).map_or(Value::Null, Value::Number)
        }
        Some(Kind::StringValue(text)) => Value::String(text),
        Some(Kind::StructValue(object)) => Value::Object(
            object.fields.into_iter().map(|(key, value)| (key, value_to_json(value))).collect(),
        ),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.into_iter().map(value_to_json).collect())
        }
    }
}
