//! The plugin boundary arm: the reference connector loaded as a cdylib (`ForeignConnector`)
//! against the same connector linked into this process (`kyro_fixture_support::Fixture<0>`,
//! the type the reference cdylib exports), side by side, as `tests/benches/plugin_boundary.rs`
//! does with criterion.
//!
//! Both hold the same ten documents in the in-memory reference store, so the store's work is
//! identical and the difference is the boundary: encoding the request, the `abi_stable` call
//! with its `catch_unwind`, decoding in the plugin, encoding the response, and decoding and
//! re-validating it in the host. Not included: the guard's worker-thread hand-off, which the
//! host pays for in-process and loaded connectors alike (it is inside the runtime arms).
//!
//! Interleaving: blocks of calls alternate between the two sides (A B, then B A), so drift hits
//! both alike. A search is timed call by call; a health call is far below the clock's useful
//! resolution, so it is timed in batches of `HEALTH_BATCH` and each batch's mean is a sample.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use kyro_connector_sdk::loader;
use kyro_connector_sdk::{
    Connector, ConnectorConfig, ConnectorPlugin, Document, DocumentId, Embedding, HostContext,
    Metadata, Scope, SearchRequest,
};
use kyro_fixture_support::Fixture;
use serde_json::{Value, json};

use crate::stats::quantile;

const DIMENSION: u32 = 768;
const BLOCK: usize = 200;
const HEALTH_BATCH: usize = 100;
const N_WARMUP_CALLS: usize = 2_000;

/// One case's figures, in microseconds per call.
pub(crate) struct BoundaryCase {
    pub(crate) name: &'static str,
    pub(crate) n_samples: usize,
    pub(crate) calls_per_sample: usize,
    pub(crate) in_process: [f64; 3],
    pub(crate) loaded: [f64; 3],
}

impl BoundaryCase {
    /// Loaded minus in-process at p50.
    pub(crate) fn added_p50_us(&self) -> f64 {
        self.loaded[0] - self.in_process[0]
    }

    /// Loaded minus in-process at p99.
    pub(crate) fn added_p99_us(&self) -> f64 {
        self.loaded[1] - self.in_process[1]
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "case": self.name,
            "samples_per_side": self.n_samples,
            "calls_per_sample": self.calls_per_sample,
            "in_process_us": { "p50": self.in_process[0], "p99": self.in_process[1], "p99_9": self.in_process[2] },
            "loaded_cdylib_us": { "p50": self.loaded[0], "p99": self.loaded[1], "p99_9": self.loaded[2] },
            "added_p50_us": self.added_p50_us(),
            "added_p99_us": self.added_p99_us(),
        })
    }
}

/// The reference store's configuration, as the e2e tests' `memory_config` writes it.
fn config() -> ConnectorConfig {
    ConnectorConfig::from_json(
        json!({
            "dimension": DIMENSION,
            "distance": "cosine",
            "filterable_keys": ["lang", "year", "product"],
            "max_top_k": 50,
            "max_fetch_ids": 50,
        })
        .to_string(),
    )
}

/// The criterion bench's vectors, so both tools measure the same calls.
fn vector(seed: u32) -> anyhow::Result<Embedding> {
    Embedding::new(
        (0..DIMENSION)
            .map(|idx| (((seed + 1) * 2654435761_u32.wrapping_mul(idx + 1)) % 1000) as f32 / 1000.0)
            .collect(),
    )
    .context("finite values")
}

fn load(connector: &dyn Connector, scope: &Scope) -> anyhow::Result<()> {
    for idx in 0..10 {
        let metadata = Metadata::new(BTreeMap::from([("lang".to_owned(), "en".to_owned())]))
            .context("valid metadata")?;
        let document = Document::new(
            DocumentId::new(format!("doc-{idx}")).context("valid id")?,
            Some(vector(idx)?),
            Some(format!("a short passage of support content, number {idx}")),
            metadata,
            None,
        )
        .context("valid document")?;
        connector.upsert(scope, &document).context("upsert")?;
    }
    Ok(())
}

/// Runs every case for about `secs` seconds per side.
pub(crate) fn run(plugin_path: &Path, secs: f64) -> anyhow::Result<Vec<BoundaryCase>> {
    let config = config();
    let scope = Scope::new("acme", "support").context("valid scope")?;
    let plugin = loader::load(plugin_path)
        .with_context(|| format!("failed to load {}", plugin_path.display()))?;
    let loaded = plugin.open(&config, HostContext::discard()).context("the plugin did not open")?;
    let in_process = Fixture::<0>::open(&config, HostContext::discard())
        .context("the in-process connector did not open")?;
    load(&loaded, &scope)?;
    load(&in_process, &scope)?;
    let top10 =
        SearchRequest { embedding: vector(99)?, top_k: 10, filter: None, include_content: true };
    let top1 = SearchRequest { top_k: 1, ..top10.clone() };
    let ids = |connector: &dyn Connector| -> anyhow::Result<Vec<String>> {
        let response = connector.search(&scope, &top10).context("search")?;
        Ok(response.hits.into_iter().map(|hit| String::from(hit.document.id)).collect())
    };
    let loaded_ids = ids(&loaded)?;
    ensure!(loaded_ids.len() == 10, "the loaded connector returned {} hits", loaded_ids.len());
    ensure!(loaded_ids == ids(&in_process)?, "the two sides answered differently");

    let duration = Duration::from_secs_f64(secs);
    let sides: [&dyn Connector; 2] = [&in_process, &loaded];
    let scope = &scope;
    let search_top10 = |connector: &dyn Connector| {
        black_box(connector.search(black_box(scope), black_box(&top10)).is_ok());
    };
    let search_top1 = |connector: &dyn Connector| {
        black_box(connector.search(black_box(scope), black_box(&top1)).is_ok());
    };
    let health = |connector: &dyn Connector| {
        black_box(connector.health().is_ok());
    };
    Ok(vec![
        measure("search 768 d, top 10", sides, 1, duration, search_top10),
        measure("search 768 d, top 1", sides, 1, duration, search_top1),
        measure("health (fixed cost of a call)", sides, HEALTH_BATCH, duration, health),
    ])
}

/// Alternating blocks of `call` on both sides until each side ran for about `duration`;
/// a sample is the mean of `calls_per_sample` consecutive calls.
fn measure(
    name: &'static str,
    sides: [&dyn Connector; 2],
    calls_per_sample: usize,
    duration: Duration,
    call: impl Fn(&dyn Connector),
) -> BoundaryCase {
    for side in sides {
        for _ in 0..N_WARMUP_CALLS {
            call(side);
        }
    }
    let mut samples: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut spent = [Duration::ZERO; 2];
    let mut block_idx = 0_usize;
    while spent[0] < duration || spent[1] < duration {
        let order = if block_idx.is_multiple_of(2) { [0, 1] } else { [1, 0] };
        for side_idx in order {
            let block_start = Instant::now();
            for _ in 0..BLOCK {
                let start = Instant::now();
                for _ in 0..calls_per_sample {
                    call(sides[side_idx]);
                }
                samples[side_idx]
                    .push(start.elapsed().as_secs_f64() * 1e6 / calls_per_sample as f64);
            }
            spent[side_idx] += block_start.elapsed();
        }
        block_idx += 1;
    }
    let n_samples = samples[0].len().min(samples[1].len());
    let percentiles = |values: &mut Vec<f64>| {
        [quantile(values, 0.5), quantile(values, 0.99), quantile(values, 0.999)]
    };
    let [mut in_process, mut loaded] = samples;
    BoundaryCase {
        name,
        n_samples,
        calls_per_sample,
        in_process: percentiles(&mut in_process),
        loaded: percentiles(&mut loaded),
    }
}
