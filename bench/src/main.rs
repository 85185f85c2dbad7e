//! `kyro-bench`: what the runtime costs over the store it wraps, measured end to end against the
//! real `kyro serve` process and against the same scoped top-10 query sent straight to the
//! store, over pgvector and over embedded Qdrant; and what the plugin boundary costs per call.
//!
//! Arms, per store, all against one server and one copy of the data (issue #7):
//! - `direct`: the connector's own query issued from this process: for pgvector its search
//!   transaction with sqlx, for embedded Qdrant the same request to the qdrant-edge engine
//!   opened on a byte-for-byte copy of the server's collection;
//! - `fetch-eventual` / `fetch-strict`: `POST /v1/context/retrieve` with a fresh query vector
//!   every time, so every request is a backend fetch;
//! - `reuse-strict`: a fixed set of queries, warmed once, then repeated in strict mode, so every
//!   request is served from the reuse cache;
//! - `change-event`: `POST /v1/events/change` with a new `source_event_id` each time (durable ACK).
//!
//! And once per run, the plugin boundary: the reference connector loaded as a cdylib against
//! the same connector linked in, call by call (`boundary.rs`).
//!
//! Loads: closed-loop sweeps at 1, 2, 4 and 8 requests in flight, with the direct and fetch arms
//! interleaved (A B C, then C B A, per round) so machine drift hits them alike; then an open-loop
//! generator at fixed offered rates (fractions of direct's best closed-loop throughput) whose
//! latencies run from each request's scheduled start, so queueing is not hidden.
//! Each phase reports p50, p99, p99.9, throughput, and the CPU time per request of the `kyro`
//! process and of this load generator (utime + stime from `/proc/<pid>/stat`).
//!
//! It prepares its data itself (`dataset.rs`): fixed-seed vectors, 100,000 × 768 by default, in
//! four tenants of different sizes, indexed with HNSW; the pgvector table and the pristine
//! Qdrant collection are kept and reused by later runs with the same parameters. Traffic goes to
//! 127.0.0.1 only. `scripts/bench.sh` builds what it needs, runs it, and splices its `--markdown`
//! output into `docs/benchmarks.md`.

#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

mod boundary;
mod client;
mod dataset;
mod generator;
mod machine;
mod pg_store;
mod qdrant_store;
mod random;
mod report;
mod server;
mod stats;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use clap::Parser;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::dataset::{Dataset, Preparation};
use crate::generator::{Arm, Bench, Direct, merge_into, pair_round, pairing, stream_id};
use crate::machine::Machine;
use crate::report::{PairedRow, Report, StoreReport, boundary_target};
use crate::server::Server;
use crate::stats::{Sample, clock_ticks_per_second, quantile};

/// Hits per query, in every arm.
pub(crate) const TOP_K: usize = 10;
const DEFAULT_DATABASE_URL: &str = "postgres://kyro:kyro@127.0.0.1:5432/kyro_test";

/// A store the runtime arms run over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum StoreKind {
    /// PostgreSQL with pgvector, through the pgvector connector.
    Pgvector,
    /// The Qdrant connector's embedded backend (qdrant-edge in the `kyro` process).
    QdrantEmbedded,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            StoreKind::Pgvector => "pgvector",
            StoreKind::QdrantEmbedded => "qdrant-embedded",
        }
    }
}

/// Benchmarks `kyro serve` over pgvector and embedded Qdrant against direct queries to the same
/// store, and the plugin boundary (issue #7).
#[derive(Parser, Debug)]
#[command(name = "kyro-bench")]
struct Args {
    /// Stores to run the arms over, in this order.
    #[arg(long = "stores", visible_alias = "store", value_enum, value_delimiter = ',',
          default_values_t = [StoreKind::Pgvector, StoreKind::QdrantEmbedded])]
    stores: Vec<StoreKind>,
    /// Rows (points) of the dataset.
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Vector dimension of the dataset.
    #[arg(long, default_value_t = 768)]
    dimension: usize,
    /// The PostgreSQL URL (default: $KYRO_TEST_DATABASE_URL, else the local test database).
    #[arg(long)]
    database_url: Option<String>,
    /// The pgvector table, in schema `public` (default: `kyro_bench_scoped_search` for
    /// 100,000 × 768, which the pgvector connector bench shares, else a name with the size).
    #[arg(long)]
    table: Option<String>,
    /// Where the pristine embedded Qdrant collections are kept (default: `kyro-bench-data`
    /// next to the profile directory, i.e. `target/kyro-bench-data`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The `kyro` binary (default: next to this executable).
    #[arg(long)]
    kyro_binary: Option<PathBuf>,
    /// The pgvector connector cdylib (default: next to this executable).
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// The Qdrant connector cdylib (default: next to this executable).
    #[arg(long)]
    qdrant_plugin: Option<PathBuf>,
    /// The reference fixture cdylib of the plugin boundary arm (default: next to this
    /// executable).
    #[arg(long)]
    boundary_plugin: Option<PathBuf>,
    /// Tenants the queries cycle through (the data holds 50%, 30%, 15% and 5% in tenant-0..3).
    #[arg(long, value_delimiter = ',', default_values_t = Dataset::tenant_names())]
    tenants: Vec<String>,
    /// Requests in flight for the closed-loop sweeps.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4, 8])]
    concurrency: Vec<usize>,
    /// Seconds per closed-loop phase (per arm, per concurrency, per round).
    #[arg(long, default_value_t = 3.0)]
    phase_secs: f64,
    /// Interleaved rounds of the direct/fetch sweeps and the open-loop phases.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Offered rates of the open-loop phases, as fractions of direct's best closed-loop rate;
    /// the first is the one the targets are checked at.
    #[arg(long, value_delimiter = ',', default_values_t = [0.5, 0.1])]
    open_fractions: Vec<f64>,
    /// Seconds per open-loop phase (per arm, per round).
    #[arg(long, default_value_t = 10.0)]
    open_secs: f64,
    /// Threads of the open-loop generator (the most requests it can hold in flight).
    #[arg(long, default_value_t = 16)]
    open_workers: usize,
    /// Distinct queries of the reuse-hit arm.
    #[arg(long, default_value_t = 256)]
    reuse_queries: usize,
    /// Connections of the pgvector connector's pool and of the direct arm's pool.
    #[arg(long, default_value_t = 8)]
    pool_size: u32,
    /// Upper bound on the requests of any one phase.
    #[arg(long, default_value_t = 500_000)]
    max_requests: usize,
    /// Skips the direct and fetch phases, to profile the reuse and change-event phases alone.
    #[arg(long)]
    skip_fetch: bool,
    /// Seconds per side per case of the plugin boundary arm.
    #[arg(long, default_value_t = 2.0)]
    boundary_secs: f64,
    /// Skips the plugin boundary arm.
    #[arg(long)]
    skip_boundary: bool,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/kyro-bench.json")]
    output: PathBuf,
    /// Also writes the figures as the markdown section of `docs/benchmarks.md`.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

impl Args {
    /// The settings for the report, without the database URL (it may hold a password).
    fn settings_json(&self) -> Value {
        json!({
            "stores": self.stores.iter().map(|store| store.name()).collect::<Vec<_>>(),
            "rows": self.rows, "dimension": self.dimension, "tenants": self.tenants,
            "concurrency": self.concurrency, "phase_secs": self.phase_secs, "rounds": self.rounds,
            "open_fractions": self.open_fractions, "open_secs": self.open_secs,
            "open_workers": self.open_workers, "reuse_queries": self.reuse_queries,
            "pool_size": self.pool_size, "max_requests": self.max_requests,
            "skip_fetch": self.skip_fetch, "boundary_secs": self.boundary_secs,
            "skip_boundary": self.skip_boundary,
        })
    }

    fn settings_markdown(&self) -> String {
        let list = |values: &[usize]| {
            values.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        };
        let fractions = self
            .open_fractions
            .iter()
            .map(|fraction| format!("{:.0}%", fraction * 100.0))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "closed loop at {} in flight, {} s per phase, {} round(s); open loop at {fractions} of \
             `direct`'s best closed-loop rate, {} s per arm per round, up to {} generator threads; \
             {} reuse queries; pgvector pool {}; plugin boundary {} s per side per case",
            list(&self.concurrency),
            self.phase_secs,
            self.rounds,
            self.open_secs,
            self.open_workers,
            self.reuse_queries,
            self.pool_size,
            self.boundary_secs,
        )
    }
}

/// What every store's run needs: the arguments, the dataset, and where things are.
struct Setup {
    args: Args,
    dataset: Dataset,
    exe_dir: PathBuf,
    kyro_binary: PathBuf,
    work_dir: WorkDir,
    run_id: String,
}

/// The run's temporary directory (server configs, SQLite state, Qdrant copies), removed when
/// the run ends, whether it succeeded or not.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("kyro-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .with_context(|| format!("failed to create {}", path.display()))?;
        Ok(Self(path))
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(!args.stores.is_empty(), "--stores needs at least one store");
    ensure!(!args.tenants.is_empty(), "--tenants needs at least one tenant");
    ensure!(args.concurrency.iter().all(|n| *n > 0), "--concurrency values must be positive");
    ensure!(args.open_workers > 0, "--open-workers must be positive");
    ensure!(
        (1..=16_000).contains(&args.dimension),
        "--dimension must be in 1..=16000 (pgvector's HNSW indexes up to 2000)"
    );
    let dataset = Dataset { n_rows: args.rows, dimension: args.dimension };
    ensure!(
        dataset.tenant_rows().iter().all(|n_rows| *n_rows >= TOP_K),
        "--rows {} leaves a tenant with fewer than {TOP_K} rows; use at least 200",
        args.rows
    );
    let known_tenants = Dataset::tenant_names();
    for tenant in &args.tenants {
        ensure!(
            known_tenants.contains(tenant),
            "--tenants: {tenant} is not one of {known_tenants:?}"
        );
    }
    let started_at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut machine = Machine::read(started_at);
    let exe_dir = std::env::current_exe()
        .context("failed to find this executable")?
        .parent()
        .context("this executable has no directory")?
        .to_path_buf();
    let kyro_binary = args.kyro_binary.clone().unwrap_or_else(|| exe_dir.join("kyro"));
    require(&kyro_binary, "the kyro binary", "kyro-host")?;
    let work_dir = WorkDir::create()?;
    let setup = Setup {
        dataset,
        exe_dir,
        kyro_binary,
        work_dir,
        run_id: format!("{}-{started_at}", std::process::id()),
        args,
    };

    let mut stores: Vec<StoreReport> = Vec::new();
    let mut done: Vec<StoreKind> = Vec::new();
    for &kind in &setup.args.stores {
        if done.contains(&kind) {
            continue;
        }
        done.push(kind);
        let store_report = match kind {
            StoreKind::Pgvector => run_pgvector(&setup, &mut machine)?,
            StoreKind::QdrantEmbedded => run_qdrant(&setup)?,
        };
        store_report.print();
        stores.push(store_report);
    }

    let boundary = if setup.args.skip_boundary {
        Vec::new()
    } else {
        let plugin = setup
            .args
            .boundary_plugin
            .clone()
            .unwrap_or_else(|| setup.exe_dir.join("libkyro_fixture_reference.so"));
        require(&plugin, "the reference fixture plugin", "kyro-fixture-reference")?;
        println!();
        println!("plugin boundary: {} against the same connector linked in", plugin.display());
        let cases = boundary::run(&plugin, setup.args.boundary_secs)?;
        println!(
            "{:<32} {:>8} {:>11} {:>11} {:>10} {:>11} {:>11} {:>10}",
            "case",
            "samples",
            "in-proc p50",
            "loaded p50",
            "added",
            "in-proc p99",
            "loaded p99",
            "added"
        );
        for case in &cases {
            println!(
                "{:<32} {:>8} {:>9.3}us {:>9.3}us {:>+8.3}us {:>9.3}us {:>9.3}us {:>+8.3}us",
                case.name,
                case.n_samples,
                case.in_process[0],
                case.loaded[0],
                case.added_p50_us(),
                case.in_process[1],
                case.loaded[1],
                case.added_p99_us()
            );
        }
        if let Some(target) = boundary_target(&cases) {
            let met = if target.met { "met   " } else { "MISSED" };
            println!("{met} {}: {}", target.target, target.measured);
        }
        cases
    };
    machine.load_after = machine::load_average();

    let mut all_targets: Vec<Value> = stores
        .iter()
        .flat_map(|store| store.targets.iter().map(|target| target.to_json(store.store)))
        .collect();
    if let Some(target) = boundary_target(&boundary) {
        all_targets.push(target.to_json("reference fixture"));
    }
    let document = json!({
        "tool": "kyro-bench",
        "started_at_unix": started_at,
        "machine": machine.to_json(),
        "settings": setup.args.settings_json(),
        "stores": stores.iter().map(StoreReport::to_json).collect::<Vec<Value>>(),
        "plugin_boundary": boundary.iter().map(boundary::BoundaryCase::to_json).collect::<Vec<Value>>(),
        "targets": all_targets,
    });
    write_file(
        &setup.args.output,
        &serde_json::to_string_pretty(&document).context("failed to encode the report")?,
    )?;
    println!();
    println!("wrote {}", setup.args.output.display());
    if let Some(path) = &setup.args.markdown {
        let text = report::markdown(&machine, &setup.args.settings_markdown(), &stores, &boundary);
        write_file(path, &text)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn require(path: &Path, what: &str, package: &str) -> anyhow::Result<()> {
    ensure!(
        path.exists(),
        "{what} is not at {}; build it with `cargo build --release -p {package}` (scripts/bench.sh builds everything)",
        path.display()
    );
    Ok(())
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("failed to write {}", path.display()))
}

/// Prepares the pgvector table, starts `kyro serve` on it, and runs every arm.
fn run_pgvector(setup: &Setup, machine: &mut Machine) -> anyhow::Result<StoreReport> {
    let args = &setup.args;
    let plugin =
        args.plugin.clone().unwrap_or_else(|| setup.exe_dir.join("libkyro_connector_pgvector.so"));
    require(&plugin, "the pgvector plugin", "kyro-connector-pgvector")?;
    let database_url = args
        .database_url
        .clone()
        .or_else(|| std::env::var("KYRO_TEST_DATABASE_URL").ok())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("failed to start a tokio runtime")?;
    // The same session settings as the connector's connections.
    let connect_options = PgConnectOptions::from_str(&database_url)
        .context("failed to parse the database URL")?
        .options([("plan_cache_mode", "force_custom_plan")]);
    let pool = runtime
        .block_on(
            PgPoolOptions::new().max_connections(args.pool_size).connect_with(connect_options),
        )
        .context("failed to connect to PostgreSQL; run scripts/setup-postgres.sh")?;
    let table = pg_store::table_name(setup.dataset, args.table.as_deref())?;
    let preparation = runtime.block_on(pg_store::ensure_table(&pool, &table, setup.dataset))?;
    machine.postgres = Some(runtime.block_on(pg_store::versions(&pool))?);

    let dir = setup.work_dir.join("pgvector");
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let store_config = pg_store::store_config(
        &plugin.display().to_string(),
        &table,
        setup.dataset.dimension,
        args.pool_size,
    );
    let server = Server::start(&setup.kyro_binary, &dir, &store_config, Some(&database_url))?;
    println!("kyro serve pid {} on {} over pgvector table {table}", server.pid(), server.address);
    let direct = Direct::Pgvector(pg_store::DirectSearch::new(runtime, pool, &table));
    let details = json!({ "table": format!("public.{table}"), "ef_search": pg_store::EF_SEARCH,
                          "iterative_scan": pg_store::ITERATIVE_SCAN });
    run_arms(setup, StoreKind::Pgvector, direct, &server, preparation, details)
}

/// Prepares the embedded collection, gives `kyro serve` and the direct arm a copy each, and
/// runs every arm.
fn run_qdrant(setup: &Setup) -> anyhow::Result<StoreReport> {
    let args = &setup.args;
    let plugin = args
        .qdrant_plugin
        .clone()
        .unwrap_or_else(|| setup.exe_dir.join("libkyro_connector_qdrant.so"));
    require(&plugin, "the qdrant plugin", "kyro-connector-qdrant")?;
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => setup
            .exe_dir
            .parent()
            .context("the executable's directory has no parent")?
            .join("kyro-bench-data"),
    };
    let (pristine, preparation) =
        qdrant_store::ensure_collection(&plugin, &data_dir, setup.dataset)?;
    let dir = setup.work_dir.join("qdrant-embedded");
    let server_data = dir.join("server-data");
    let direct_data = dir.join("direct-data");
    for copy in [&server_data, &direct_data] {
        qdrant_store::copy_dir(
            &pristine.join(qdrant_store::COLLECTION),
            &copy.join(qdrant_store::COLLECTION),
        )?;
    }
    let direct = qdrant_store::DirectSearch::open(&direct_data)?;
    direct.check(&args.tenants)?;
    let details = direct.describe();
    let store_config = qdrant_store::store_config(
        &plugin.display().to_string(),
        &server_data,
        setup.dataset.dimension,
    );
    let server = Server::start(&setup.kyro_binary, &dir, &store_config, None)?;
    println!("kyro serve pid {} on {} over embedded qdrant", server.pid(), server.address);
    let report = run_arms(
        setup,
        StoreKind::QdrantEmbedded,
        Direct::QdrantEmbedded(direct),
        &server,
        preparation,
        details,
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    report
}

/// Every arm over one store: the interleaved direct/fetch sweeps, the open loop, reuse hits,
/// then change events.
fn run_arms(
    setup: &Setup,
    kind: StoreKind,
    direct: Direct,
    server: &Server,
    preparation: Preparation,
    details: Value,
) -> anyhow::Result<StoreReport> {
    let args = &setup.args;
    let mut bench = Bench {
        direct,
        address: server.address,
        server_pid: server.pid().to_string(),
        ticks: clock_ticks_per_second(),
        tenants: args.tenants.clone(),
        dimension: args.dimension,
        reuse_bodies: Vec::new(),
        run_id: format!("{}-{}", setup.run_id, kind.name()),
        phase_seed: 0,
        max_requests: args.max_requests,
    };
    let phase = Duration::from_secs_f64(args.phase_secs);
    let mut report = Report::default();
    let n_rounds = if args.skip_fetch { 0 } else { args.rounds };
    let fetch_arms = [Arm::Direct, Arm::FetchEventual, Arm::FetchStrict];

    // Warm-up: every arm for one phase at 2 in flight, not recorded.
    if !args.skip_fetch {
        for (arm_idx, arm) in fetch_arms.into_iter().enumerate() {
            bench.closed_loop(arm, stream_id(0, arm_idx, 0), 2, phase)?;
        }
    }

    // Closed-loop sweeps, interleaved per concurrency: A B C, then C B A.
    let mut sweeps: Vec<(Arm, usize, Sample)> = Vec::new();
    // Per load: fetch-eventual minus direct on the same queries, in milliseconds.
    let mut paired: Vec<(String, Vec<f64>)> = Vec::new();
    for round_idx in 0..n_rounds {
        for &concurrency in &args.concurrency {
            let mut order = fetch_arms.to_vec();
            if round_idx % 2 == 1 {
                order.reverse();
            }
            let mut round_samples = Vec::new();
            for arm in order {
                let stream = stream_id(1 + round_idx, concurrency, pairing(arm));
                round_samples.push((arm, bench.closed_loop(arm, stream, concurrency, phase)?));
            }
            pair_round(&mut paired, &format!("closed {concurrency}"), &round_samples);
            for (arm, sample) in round_samples {
                merge_into(&mut sweeps, arm, concurrency, sample);
            }
        }
    }
    let mut direct_best = 0.0_f64;
    for (arm, concurrency, sample) in sweeps {
        let summary = report.add(arm, &format!("closed {concurrency}"), sample);
        if arm == Arm::Direct {
            direct_best = direct_best.max(summary.throughput);
        }
    }

    // Open loop at fixed offered rates, interleaved the same way.
    let mut open: Vec<(Arm, usize, Sample)> = Vec::new();
    for (fraction_idx, &fraction) in args.open_fractions.iter().enumerate() {
        let rate = (direct_best * fraction).max(1.0);
        for round_idx in 0..n_rounds {
            let mut order = fetch_arms.to_vec();
            if round_idx % 2 == 1 {
                order.reverse();
            }
            let mut round_samples = Vec::new();
            for arm in order {
                let stream = stream_id(100 + round_idx, fraction_idx, pairing(arm));
                let sample = bench.open_loop(
                    arm,
                    stream,
                    rate,
                    Duration::from_secs_f64(args.open_secs),
                    args.open_workers,
                )?;
                round_samples.push((arm, sample));
            }
            pair_round(&mut paired, &format!("open {:.0}%", fraction * 100.0), &round_samples);
            for (arm, sample) in round_samples {
                merge_into(&mut open, arm, fraction_idx, sample);
            }
        }
    }
    for (arm, fraction_idx, sample) in open {
        let fraction = args.open_fractions[fraction_idx];
        let rate = (direct_best * fraction).max(1.0);
        report.add(arm, &format!("open {rate:.0}/s ({:.0}%)", fraction * 100.0), sample);
    }

    // Reuse hits: warm a fixed set of strict queries, check they hit, then sweep.
    bench.prepare_reuse(args.reuse_queries)?;
    for &concurrency in &args.concurrency {
        let sample = bench.closed_loop(Arm::ReuseStrict, 0, concurrency, phase)?;
        report.add(Arm::ReuseStrict, &format!("closed {concurrency}"), sample);
    }

    // Change events last: they invalidate reuse entries and advance the generation.
    for &concurrency in &args.concurrency {
        let sample = bench.closed_loop(Arm::ChangeEvent, 0, concurrency, phase)?;
        report.add(Arm::ChangeEvent, &format!("closed {concurrency}"), sample);
    }
    bench.direct.close();

    let paired = paired
        .into_iter()
        .map(|(load, mut differences)| PairedRow {
            n_pairs: differences.len(),
            median_ms: quantile(&mut differences, 0.5),
            p01_ms: quantile(&mut differences, 0.01),
            p99_ms: quantile(&mut differences, 0.99),
            load,
        })
        .collect();
    let open_fraction = args.open_fractions.first().copied().unwrap_or(0.5);
    let targets = report.targets(open_fraction);
    Ok(StoreReport {
        store: kind.name(),
        dataset: setup.dataset,
        preparation,
        details,
        tenants: args.tenants.clone(),
        report,
        paired,
        direct_best,
        targets,
    })
}
