//! Scoped top-10 search on the embedded backend: the connector (linked in-process) against the
//! same query issued directly to the qdrant-edge engine, interleaved on one thread (A B, then
//! B A, and so on).
//!
//! Data: 100 000 points of 768 dimensions from a fixed seed, in five tenants of different sizes,
//! loaded through the connector and indexed with HNSW by the engine's optimizers. The direct
//! side opens a copy of the same collection directory, so both sides search identical segments.
//!
//! What the difference measures: building the scope filter, converting payloads into
//! `StoredDocument`s and the connector's checks. Not a timed test: it prints p50, p99 and the
//! ratio of the medians, and `docs/benchmarks.md` records a run.
//!
//! `KYRO_BENCH_POINTS` and `KYRO_BENCH_QUERIES` shrink the run for a quick look;
//! `KYRO_BENCH_SWAP=1` swaps which side opens the copied directory.

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kyro_connector_qdrant::{QdrantConfig, QdrantConnector};
use kyro_connector_sdk::{
    Connector, ConnectorConfig, Document, DocumentId, Embedding, HostContext, Metadata, Scope,
    SearchRequest,
};
use qdrant_edge::{
    Condition, EdgeShard, FieldCondition, Filter, JsonPath, Match, MatchValue, NamedQuery,
    QueryEnum, SearchRequest as EdgeSearch, ValueVariants, VectorInternal, WithPayloadInterface,
    WithVector,
};

const DIMENSION: usize = 768;
const TOP_K: u32 = 10;
/// Tenant sizes as shares of the points: one large tenant, a long tail.
const TENANT_SHARES: [(&str, f64); 5] =
    [("t0", 0.5), ("t1", 0.25), ("t2", 0.15), ("t3", 0.07), ("t4", 0.03)];

/// A small deterministic generator (SplitMix64), so the data is the same on every run.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    fn vector(&mut self) -> Vec<f32> {
        (0..DIMENSION).map(|_| self.unit()).collect()
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|text| text.parse().ok()).unwrap_or(default)
}

fn config(dir: &Path) -> ConnectorConfig {
    ConnectorConfig::from_json(
        serde_json::json!({
            "backend": "embedded",
            "path": dir,
            "collection": "bench",
            "dimension": DIMENSION,
            "distance": "cosine",
            "max_top_k": 100,
            "create_collection": true,
        })
        .to_string(),
    )
}

fn open(dir: &Path) -> QdrantConnector {
    let config = config(dir).parse::<QdrantConfig>().expect("bench config parses");
    QdrantConnector::open(config.validate().expect("bench config is valid"), HostContext::discard())
        .expect("the embedded collection opens")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy directory");
    for entry in std::fs::read_dir(from).expect("read directory") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

fn key_match(field: &str, value: &str) -> Condition {
    Condition::Field(FieldCondition::new_match(
        field.parse::<JsonPath>().expect("a plain field name is a path"),
        Match::Value(MatchValue { value: ValueVariants::String(value.to_owned()) }),
    ))
}

/// The query the connector sends, written directly against the engine.
fn direct_search(shard: &EdgeShard, scope: &Scope, query: &[f32]) -> usize {
    let request = EdgeSearch {
        query: QueryEnum::Nearest(NamedQuery {
            query: VectorInternal::from(query.to_vec()),
            using: None,
        }),
        filter: Some(Filter {
            must: Some(vec![
                key_match("tenant_id", scope.tenant_id()),
                key_match("namespace", scope.namespace()),
            ]),
            ..Filter::default()
        }),
        params: None,
        limit: TOP_K as usize,
        offset: 0,
        with_payload: Some(WithPayloadInterface::Bool(true)),
        with_vector: Some(WithVector::Bool(false)),
        score_threshold: None,
    };
    shard.search(request).expect("direct search").len()
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn main() {
    let n_points = env_usize("KYRO_BENCH_POINTS", 100_000);
    let n_queries = env_usize("KYRO_BENCH_QUERIES", 2_000);
    let root: PathBuf =
        std::env::temp_dir().join(format!("kyro-qdrant-bench-{}", std::process::id()));
    let connector_dir = root.join("connector");
    let direct_dir = root.join("direct");
    let mut rng = SplitMix(0x6b79_726f_6462);

    let started = Instant::now();
    let scopes: Vec<(Scope, usize)> = TENANT_SHARES
        .iter()
        .map(|(tenant, share)| {
            let scope = Scope::new(*tenant, "docs").expect("valid scope");
            (scope, ((n_points as f64) * share).round() as usize)
        })
        .collect();
    {
        let connector = open(&connector_dir);
        for (scope, n_docs) in &scopes {
            for doc_idx in 0..*n_docs {
                let document = Document::new(
                    DocumentId::new(format!("doc-{doc_idx}")).expect("valid id"),
                    Some(Embedding::new(rng.vector()).expect("finite vector")),
                    Some(format!("content of document {doc_idx}")),
                    Metadata::default(),
                    None,
                )
                .expect("valid document");
                connector.upsert(scope, &document).expect("upsert");
            }
        }
        println!("loaded {n_points} points in {:.1} s", started.elapsed().as_secs_f64());
        let indexing = Instant::now();
        connector.optimize().expect("optimize");
        println!("built the HNSW index in {:.1} s", indexing.elapsed().as_secs_f64());
    }
    copy_dir(&connector_dir, &direct_dir);
    // `KYRO_BENCH_SWAP=1` gives the copy to the connector and the original to the engine, to
    // tell a difference between the two sides from one between two engine instances.
    let (connector_dir, direct_dir) = if std::env::var_os("KYRO_BENCH_SWAP").is_some() {
        println!("swapped: the connector opens the copy");
        (direct_dir, connector_dir)
    } else {
        (connector_dir, direct_dir)
    };
    let connector = open(&connector_dir);
    let shard = EdgeShard::load(&direct_dir.join("bench"), None).expect("direct shard opens");
    let info = shard.info();
    println!(
        "segments: {}, points: {}, indexed vectors: {}",
        info.segments_count, info.points_count, info.indexed_vectors_count
    );

    let queries: Vec<(usize, Vec<f32>)> =
        (0..n_queries).map(|query_idx| (query_idx % scopes.len(), rng.vector())).collect();
    let warmup = n_queries.min(200);
    let mut through_connector = Vec::with_capacity(n_queries);
    let mut direct = Vec::with_capacity(n_queries);
    for (round, (scope_idx, query)) in queries.iter().enumerate() {
        let scope = &scopes[*scope_idx].0;
        let request = SearchRequest {
            embedding: Embedding::new(query.clone()).expect("finite vector"),
            top_k: TOP_K,
            filter: None,
            include_content: true,
        };
        // Alternate which side goes first, so neither always runs on the other's warm caches.
        let time_connector = || {
            let started = Instant::now();
            let response = connector.search(scope, &request).expect("connector search");
            (started.elapsed(), response.hits.len())
        };
        let time_direct = || {
            let started = Instant::now();
            let n_hits = direct_search(&shard, scope, query);
            (started.elapsed(), n_hits)
        };
        let ((a, n_connector), (b, n_direct)) = if round % 2 == 0 {
            let a = time_connector();
            (a, time_direct())
        } else {
            let b = time_direct();
            (time_connector(), b)
        };
        assert_eq!(n_connector, n_direct, "both sides answer the same query");
        if round >= warmup {
            through_connector.push(a);
            direct.push(b);
        }
    }
    through_connector.sort();
    direct.sort();
    let (a50, a99) = (percentile(&through_connector, 0.5), percentile(&through_connector, 0.99));
    let (b50, b99) = (percentile(&direct, 0.5), percentile(&direct, 0.99));
    println!("queries measured: {} (after {warmup} warm-up rounds), top_k {TOP_K}", direct.len());
    println!("through the connector: p50 {:.1} µs, p99 {:.1} µs", micros(a50), micros(a99));
    println!("direct qdrant-edge:    p50 {:.1} µs, p99 {:.1} µs", micros(b50), micros(b99));
    println!(
        "connector / direct: p50 {:.3}, p99 {:.3}",
        micros(a50) / micros(b50),
        micros(a99) / micros(b99)
    );
    drop(connector);
    drop(shard);
    let _ = std::fs::remove_dir_all(&root);
}
