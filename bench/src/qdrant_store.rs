//! The embedded Qdrant side: the benchmark collection (built here when missing), the direct
//! arm's query against the qdrant-edge engine, and the `[[stores]]` entry `kyro serve` gets.
//!
//! The collection is written by the Qdrant connector itself, loaded as the same cdylib
//! `kyro serve` loads, through its acknowledged upsert (so the payload layout and point ids
//! are the connector's own), then reopened, which runs the engine's optimizers and builds the
//! HNSW index. That pristine directory is kept under `--data-dir` with a marker naming its
//! parameters and reused by later runs. Each run copies it twice, byte for byte: one copy for
//! `kyro serve`, one for the direct arm, because an embedded directory can be opened by one
//! engine instance at a time, and because certification at startup writes (then purges) a
//! private scope in the server's copy.
//!
//! This crate links qdrant-edge (the same `=0.7.0` the connector uses) only for the direct arm;
//! it never links the connector.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, ensure};
use kyro_connector_sdk::loader;
use kyro_connector_sdk::{
    Connector, ConnectorConfig, Document, DocumentId, Embedding, HostContext, Metadata, Scope,
};
use qdrant_edge::{
    Condition, CountRequest, EdgeShard, FieldCondition, Filter, JsonPath, Match, MatchValue,
    NamedQuery, QueryEnum, SearchRequest, ValueVariants, VectorInternal, WithPayloadInterface,
    WithVector,
};
use serde_json::{Value, json};

use crate::dataset::{Dataset, NAMESPACE, Preparation, TENANT_PERCENT};
use crate::random::DATA_SEED;

/// The collection's name under its data directory.
pub(crate) const COLLECTION: &str = "bench";
const MARKER_FILE: &str = "kyro-bench-dataset.json";
const TOP_K: usize = crate::TOP_K;

/// The marker that says a directory holds `dataset`, complete and indexed.
fn marker(dataset: Dataset) -> Value {
    json!({
        "rows": dataset.n_rows,
        "dimension": dataset.dimension,
        "seed": DATA_SEED,
        "tenant_percent": TENANT_PERCENT,
        "namespace": NAMESPACE,
        "layout": "kyro-connector-qdrant embedded, upserted through the cdylib",
    })
}

/// The connector configuration of a data directory holding the collection.
fn connector_config(path: &Path, dimension: usize, create_collection: bool) -> Value {
    json!({
        "backend": "embedded",
        "path": path,
        "collection": COLLECTION,
        "dimension": dimension,
        "distance": "cosine",
        "filterable_keys": ["lang"],
        "max_top_k": 100,
        "create_collection": create_collection,
    })
}

/// The pristine data directory for `dataset` under `data_dir`, built through `plugin` unless a
/// complete one is there.
pub(crate) fn ensure_collection(
    plugin: &Path,
    data_dir: &Path,
    dataset: Dataset,
) -> anyhow::Result<(PathBuf, Preparation)> {
    let dir = data_dir.join(format!("qdrant-embedded-{}x{}", dataset.n_rows, dataset.dimension));
    let marker_path = dir.join(MARKER_FILE);
    let existing: Option<Value> = std::fs::read_to_string(&marker_path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let detail = format!(
        "embedded collection \"{COLLECTION}\" (qdrant-edge 0.7.0, cosine, keyword payload indexes \
         on tenant_id and namespace, HNSW built by the engine's optimizers)"
    );
    if existing.as_ref() == Some(&marker(dataset)) {
        println!("reusing embedded collection {}", dir.display());
        return Ok((dir, Preparation { reused: true, load_secs: 0.0, index_secs: 0.0, detail }));
    }
    println!(
        "building embedded collection {} ({} points x {} d) through {}",
        dir.display(),
        dataset.n_rows,
        dataset.dimension,
        plugin.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let plugin = loader::load(plugin).context("failed to load the qdrant connector")?;
    let started = Instant::now();
    {
        let config =
            ConnectorConfig::from_json(connector_config(&dir, dataset.dimension, true).to_string());
        let connector = plugin
            .open(&config, HostContext::discard())
            .context("the qdrant connector did not open the new collection")?;
        for row in dataset.rows() {
            let scope = Scope::new(row.tenant.as_str(), NAMESPACE).context("a valid scope")?;
            let metadata = Metadata::new(
                [("lang".to_owned(), row.lang.to_owned()), ("year".to_owned(), row.year)]
                    .into_iter()
                    .collect(),
            )
            .context("valid metadata")?;
            let document = Document::new(
                DocumentId::new(row.id).context("a valid id")?,
                Some(Embedding::new(row.embedding).context("a finite vector")?),
                Some(row.content),
                metadata,
                None,
            )
            .context("a valid document")?;
            connector
                .upsert(&scope, &document)
                .context("the qdrant connector refused an upsert")?;
        }
        // Dropping the connector closes the engine, which flushes it.
    }
    let load_secs = started.elapsed().as_secs_f64();
    println!("loaded {} points in {load_secs:.1} s", dataset.n_rows);
    let started = Instant::now();
    {
        // Opening runs the engine's optimizers until they are done: segments are merged and
        // those past the indexing threshold get their HNSW index.
        let config = ConnectorConfig::from_json(
            connector_config(&dir, dataset.dimension, false).to_string(),
        );
        let _connector = plugin
            .open(&config, HostContext::discard())
            .context("the qdrant connector did not reopen the collection")?;
    }
    let index_secs = started.elapsed().as_secs_f64();
    println!("optimized (HNSW) in {index_secs:.1} s");
    std::fs::write(&marker_path, marker(dataset).to_string())
        .with_context(|| format!("failed to write {}", marker_path.display()))?;
    Ok((dir, Preparation { reused: false, load_secs, index_secs, detail }))
}

/// Copies a directory tree, byte for byte.
pub(crate) fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("failed to create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("failed to read {}", from.display()))?
    {
        let entry = entry.context("failed to read a directory entry")?;
        let target = to.join(entry.file_name());
        if entry.file_type().context("failed to read a file type")?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("failed to copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The engine, opened on its own copy of the collection.
pub(crate) struct DirectSearch {
    shard: EdgeShard,
    tenant_path: JsonPath,
    namespace_path: JsonPath,
}

impl DirectSearch {
    /// Opens the collection under the data directory `dir`.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Self> {
        let shard = EdgeShard::load(&dir.join(COLLECTION), None)
            .map_err(|err| anyhow::anyhow!("failed to open the direct arm's collection: {err}"))?;
        let path = |field: &str| {
            field.parse::<JsonPath>().map_err(|()| anyhow::anyhow!("{field} is not a path"))
        };
        Ok(Self { shard, tenant_path: path("tenant_id")?, namespace_path: path("namespace")? })
    }

    /// Segments, points and indexed vectors, for the report.
    pub(crate) fn describe(&self) -> Value {
        let info = self.shard.info();
        json!({
            "segments": info.segments_count,
            "points": info.points_count,
            "indexed_vectors": info.indexed_vectors_count,
        })
    }

    /// Checks that every tenant holds at least `TOP_K` points.
    pub(crate) fn check(&self, tenants: &[String]) -> anyhow::Result<()> {
        for tenant in tenants {
            let n_points = self
                .shard
                .count(CountRequest { filter: Some(self.scope_filter(tenant)), exact: true })
                .map_err(|err| anyhow::anyhow!("failed to count tenant {tenant}: {err}"))?;
            ensure!(n_points >= TOP_K, "tenant {tenant} has only {n_points} points");
        }
        Ok(())
    }

    fn scope_filter(&self, tenant: &str) -> Filter {
        let key_match = |path: &JsonPath, value: &str| {
            Condition::Field(FieldCondition::new_match(
                path.clone(),
                Match::Value(MatchValue { value: ValueVariants::String(value.to_owned()) }),
            ))
        };
        Filter {
            must: Some(vec![
                key_match(&self.tenant_path, tenant),
                key_match(&self.namespace_path, NAMESPACE),
            ]),
            ..Filter::default()
        }
    }

    /// The request the connector sends for a scoped top-10 search with content: a nearest
    /// search with `must` conditions on tenant and namespace, payload included, vectors
    /// excluded; and, like the connector, an exact count of the scope when the answer is short.
    /// Returns the number of hits.
    pub(crate) fn search(&self, tenant: &str, vector: Vec<f32>) -> anyhow::Result<usize> {
        let filter = self.scope_filter(tenant);
        let request = SearchRequest {
            query: QueryEnum::Nearest(NamedQuery {
                query: VectorInternal::from(vector),
                using: None,
            }),
            filter: Some(filter.clone()),
            params: None,
            limit: TOP_K,
            offset: 0,
            with_payload: Some(WithPayloadInterface::Bool(true)),
            with_vector: Some(WithVector::Bool(false)),
            score_threshold: None,
        };
        let points =
            self.shard.search(request).map_err(|err| anyhow::anyhow!("search failed: {err}"))?;
        if points.len() < TOP_K {
            let _n_matching = self
                .shard
                .count(CountRequest { filter: Some(filter), exact: true })
                .map_err(|err| anyhow::anyhow!("count failed: {err}"))?;
        }
        Ok(points.len())
    }
}

/// The `[[stores]]` entry of `kyro.toml`: the embedded backend on the server's copy. The
/// embedded backend backs write-through ownership only.
pub(crate) fn store_config(plugin: &str, dir: &Path, dimension: usize) -> String {
    format!(
        "[[stores]]\nid = \"qdrant\"\nplugin = \"{plugin}\"\nownership_mode = \"write_through\"\nnamespaces = [\"*\"]\n\
         [stores.config]\nbackend = \"embedded\"\npath = \"{}\"\ncollection = \"{COLLECTION}\"\n\
         dimension = {dimension}\ndistance = \"cosine\"\nfilterable_keys = [\"lang\"]\nmax_top_k = 100\n\
         create_collection = false\n",
        dir.display()
    )
}
