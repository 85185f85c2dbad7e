//! The cost of the plugin boundary: one search with a 768-dimension query returning 10 hits,
//! through the loaded cdylib versus the same connector linked in-process, measured side by side.
//!
//! Run: `cargo build --release -p kyro-fixture-reference && cargo bench -p kyro-e2e --bench plugin_boundary`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kyro_connector_sdk::loader;
use kyro_connector_sdk::testing::MemoryConnector;
use kyro_connector_sdk::{
    Connector, ConnectorPlugin, Document, DocumentId, Embedding, HostContext, Metadata, Scope,
    SearchRequest,
};
use kyro_e2e::{memory_config, plugin_path};

const DIMENSION: u32 = 768;

fn vector(seed: u32) -> Embedding {
    Embedding::new(
        (0..DIMENSION)
            .map(|idx| (((seed + 1) * 2654435761_u32.wrapping_mul(idx + 1)) % 1000) as f32 / 1000.0)
            .collect(),
    )
    .expect("finite values")
}

fn load(connector: &dyn Connector, scope: &Scope) {
    for idx in 0..10 {
        let metadata = Metadata::new(BTreeMap::from([("lang".to_owned(), "en".to_owned())]))
            .expect("valid metadata");
        let document = Document::new(
            DocumentId::new(format!("doc-{idx}")).expect("valid id"),
            Some(vector(idx)),
            Some(format!("a short passage of support content, number {idx}")),
            metadata,
            None,
        )
        .expect("valid document");
        connector.upsert(scope, &document).expect("upsert");
    }
}

fn boundary(criterion: &mut Criterion) {
    let config = memory_config(DIMENSION, None);
    let scope = Scope::new("acme", "support").expect("valid scope");
    let plugin =
        loader::load(&plugin_path("kyro-fixture-reference")).expect("reference plugin loads");
    let loaded = plugin.open(&config, HostContext::discard()).expect("plugin opens");
    let in_process =
        MemoryConnector::open(&config, HostContext::discard()).expect("connector opens");
    load(&loaded, &scope);
    load(&in_process, &scope);
    let request =
        SearchRequest { embedding: vector(99), top_k: 10, filter: None, include_content: true };
    assert_eq!(loaded.search(&scope, &request).expect("search").hits.len(), 10);

    let mut group = criterion.benchmark_group("search_768d_top10");
    group.bench_function("in_process", |bencher| {
        bencher.iter(|| {
            black_box(in_process.search(black_box(&scope), black_box(&request)).expect("search"))
        });
    });
    group.bench_function("loaded_cdylib", |bencher| {
        bencher.iter(|| {
            black_box(loaded.search(black_box(&scope), black_box(&request)).expect("search"))
        });
    });
    group.finish();

    // The fixed cost of a call, with almost nothing to encode: where the per-call floor is.
    let mut group = criterion.benchmark_group("health_call");
    group.bench_function("in_process", |bencher| {
        bencher.iter(|| black_box(in_process.health().expect("health")));
    });
    group.bench_function("loaded_cdylib", |bencher| {
        bencher.iter(|| black_box(loaded.health().expect("health")));
    });
    group.finish();

    // The same search returning one hit: the per-hit cost is the difference to ten hits.
    let one_hit = SearchRequest { top_k: 1, ..request.clone() };
    let mut group = criterion.benchmark_group("search_768d_top1");
    group.bench_function("in_process", |bencher| {
        bencher.iter(|| {
            black_box(in_process.search(black_box(&scope), black_box(&one_hit)).expect("search"))
        });
    });
    group.bench_function("loaded_cdylib", |bencher| {
        bencher.iter(|| {
            black_box(loaded.search(black_box(&scope), black_box(&one_hit)).expect("search"))
        });
    });
    group.finish();
}

criterion_group!(benches, boundary);
criterion_main!(benches);
