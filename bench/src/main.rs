//! `kyro-bench`: what the runtime costs over pgvector, measured end to end against the real
//! `kyro serve` process and against the same scoped top-10 query sent straight to PostgreSQL.
//!
//! Arms, all against one server and one table (issue #7):
//! - `direct`: the connector's own search transaction issued with sqlx from this process;
//! - `fetch-eventual` / `fetch-strict`: `POST /v1/context/retrieve` with a fresh query vector
//!   every time, so every request is a backend fetch;
//! - `reuse-strict`: a fixed set of queries, warmed once, then repeated in strict mode, so every
//!   request is served from the reuse cache;
//! - `change-event`: `POST /v1/events/change` with a new `source_event_id` each time (durable ACK).
//!
//! Loads: closed-loop sweeps at 1, 2, 4 and 8 requests in flight, with the direct and fetch arms
//! interleaved (A B C, then C B A, per round) so machine drift hits them alike; then an open-loop
//! generator at fixed offered rates (fractions of direct's best closed-loop throughput) whose
//! latencies run from each request's scheduled start, so queueing is not hidden.
//! Each phase reports p50, p99, p99.9, throughput, and the CPU time per request of the `kyro`
//! process and of this load generator (utime + stime from `/proc/<pid>/stat`).
//!
//! It reuses the 100,000 × 768 table the pgvector connector bench builds
//! (`cargo bench -p kyro-connector-pgvector --bench scoped_search`) and refuses to run without it;
//! it does not load data itself. The plugin boundary is measured by
//! `cargo bench -p kyro-e2e --bench plugin_boundary`, not here. Traffic goes to 127.0.0.1 only.

#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

mod client;
mod stats;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::client::Connection;
use crate::stats::{
    Sample, Summary, clock_ticks_per_second, cpu_time, paired_differences, quantile,
};

const DATA_TOKEN: &str = "bench-data-token-0123456789abcdef";
const OBS_TOKEN: &str = "bench-obs-token-0123456789abcdef";
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef";
const DEFAULT_DATABASE_URL: &str = "postgres://kyro:kyro@127.0.0.1:5432/kyro_test";
const NAMESPACE: &str = "docs";
const TOP_K: usize = 10;
const EF_SEARCH: u32 = 40;
const ITERATIVE_SCAN: &str = "strict_order";

/// Benchmarks `kyro serve` over pgvector against direct sqlx queries (issue #7).
#[derive(Parser, Debug)]
#[command(name = "kyro-bench")]
struct Args {
    /// The PostgreSQL URL (default: $KYRO_TEST_DATABASE_URL, else the local test database).
    #[arg(long)]
    database_url: Option<String>,
    /// The `kyro` binary (default: next to this executable).
    #[arg(long)]
    kyro_binary: Option<PathBuf>,
    /// The pgvector connector cdylib (default: next to this executable).
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// The table, in schema `public`, built by the pgvector connector bench.
    #[arg(long, default_value = "kyro_bench_scoped_search")]
    table: String,
    /// Its vector dimension.
    #[arg(long, default_value_t = 768)]
    dimension: usize,
    /// Tenants the queries cycle through (the table holds 50%, 30%, 15% and 5% in tenant-0..3).
    #[arg(long, value_delimiter = ',', default_values_t = ["tenant-0".to_owned(), "tenant-1".to_owned(), "tenant-2".to_owned(), "tenant-3".to_owned()])]
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
    /// Offered rates of the open-loop phases, as fractions of direct's best closed-loop rate.
    #[arg(long, value_delimiter = ',', default_values_t = [0.5])]
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
    /// Connections of the connector's pool and of the direct arm's pool.
    #[arg(long, default_value_t = 8)]
    pool_size: u32,
    /// Upper bound on the requests of any one phase.
    #[arg(long, default_value_t = 500_000)]
    max_requests: usize,
    /// Skips the direct and fetch phases, to profile the reuse and change-event phases alone.
    #[arg(long)]
    skip_fetch: bool,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/kyro-bench.json")]
    output: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(!args.tenants.is_empty(), "--tenants needs at least one tenant");
    ensure!(args.concurrency.iter().all(|n| *n > 0), "--concurrency values must be positive");
    ensure!(args.open_workers > 0, "--open-workers must be positive");
    let started_at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let database_url = args
        .database_url
        .clone()
        .or_else(|| std::env::var("KYRO_TEST_DATABASE_URL").ok())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    let exe_dir = std::env::current_exe()
        .context("failed to find this executable")?
        .parent()
        .context("this executable has no directory")?
        .to_path_buf();
    let kyro_binary = args.kyro_binary.clone().unwrap_or_else(|| exe_dir.join("kyro"));
    let plugin =
        args.plugin.clone().unwrap_or_else(|| exe_dir.join("libkyro_connector_pgvector.so"));
    for (path, what) in [(&kyro_binary, "the kyro binary"), (&plugin, "the pgvector plugin")] {
        ensure!(
            path.exists(),
            "{what} is not at {}; build it with `cargo build --release -p kyro-host -p kyro-connector-pgvector`",
            path.display()
        );
    }

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
    let n_rows = runtime.block_on(check_table(&pool, &args.table, &args.tenants))?;

    let dir = std::env::temp_dir().join(format!("kyro-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let server = Server::start(&kyro_binary, &plugin, &dir, &database_url, &args)?;
    println!("kyro serve pid {} on {} (state in {})", server.pid(), server.address, dir.display());

    let table = &args.table;
    let search_sql: &'static str = Box::leak(
        format!(
            "SELECT \"id\", \"metadata\"::text, \"content\"::text, \
             (extract(epoch FROM \"updated_at\") * 1000000)::bigint, \"embedding\" <=> $4 AS distance \
             FROM \"public\".\"{table}\" WHERE \"tenant_id\" = $1 AND \"namespace\" = $2 \
             ORDER BY \"embedding\" <=> $4 LIMIT $3"
        )
        .into_boxed_str(),
    );
    let count_sql: &'static str = Box::leak(
        format!(
            "SELECT count(*) FROM (SELECT 1 FROM \"public\".\"{table}\" \
             WHERE \"tenant_id\" = $1 AND \"namespace\" = $2 LIMIT $3) AS bounded"
        )
        .into_boxed_str(),
    );
    let run_id = format!("{}-{started_at}", std::process::id());
    let mut bench = Bench {
        runtime,
        pool,
        address: server.address,
        server_pid: server.pid().to_string(),
        ticks: clock_ticks_per_second(),
        tenants: args.tenants.clone(),
        dimension: args.dimension,
        search_sql,
        count_sql,
        reuse_bodies: Vec::new(),
        run_id,
        phase_seed: 0,
        max_requests: args.max_requests,
    };
    let phase = Duration::from_secs_f64(args.phase_secs);
    let mut report = Report::default();

    let n_rounds = if args.skip_fetch { 0 } else { args.rounds };
    // Warm-up: every arm for one phase at 2 in flight, not recorded.
    for (arm_idx, arm) in
        [Arm::Direct, Arm::FetchEventual, Arm::FetchStrict].into_iter().enumerate()
    {
        if !args.skip_fetch {
            bench.closed_loop(arm, stream_id(0, arm_idx, 0), 2, phase)?;
        }
    }

    // Closed-loop sweeps, interleaved per concurrency: A B C, then C B A.
    let fetch_arms = [Arm::Direct, Arm::FetchEventual, Arm::FetchStrict];
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

    let targets = report.targets(&args);
    report.print(&targets);
    let mut paired_json = Vec::new();
    println!();
    println!("paired on identical queries: fetch-eventual minus direct, per query");
    for (load, mut differences) in paired {
        let n_pairs = differences.len();
        let p50 = quantile(&mut differences, 0.5);
        let p99 = quantile(&mut differences, 0.99);
        let p01 = quantile(&mut differences, 0.01);
        println!(
            "{load:<18} pairs {n_pairs:>6}  median {p50:+8.3} ms  p1 {p01:+8.3} ms  p99 {p99:+8.3} ms"
        );
        paired_json.push(json!({ "load": load, "pairs": n_pairs, "median_ms": p50, "p1_ms": p01, "p99_ms": p99 }));
    }
    let machine = json!({
        "nproc": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        "cpu": cpu_model(),
    });
    let document = json!({
        "tool": "kyro-bench",
        "started_at_unix": started_at,
        "machine": machine,
        "store": { "kind": "pgvector", "table": args.table, "rows": n_rows, "dimension": args.dimension,
                   "tenants": args.tenants, "ef_search": EF_SEARCH, "iterative_scan": ITERATIVE_SCAN, "top_k": TOP_K },
        "settings": format!("{args:?}"),
        "direct_best_closed_loop_per_s": direct_best,
        "phases": report.rows.iter().map(|row| {
            let mut value = row.summary.to_json();
            value["arm"] = json!(row.arm.name());
            value["load"] = json!(row.load);
            if let Some(error) = &row.first_error {
                value["first_error"] = json!(error);
            }
            value
        }).collect::<Vec<Value>>(),
        "targets": targets,
        "paired_fetch_eventual_minus_direct": paired_json,
    });
    if let Some(parent) = args.output.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    let text = serde_json::to_string_pretty(&document).context("failed to encode the report")?;
    std::fs::write(&args.output, text)
        .with_context(|| format!("failed to write {}", args.output.display()))?;
    println!("wrote {}", args.output.display());

    drop(server);
    bench.runtime.block_on(bench.pool.close());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// One kind of request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arm {
    Direct,
    FetchEventual,
    FetchStrict,
    ReuseStrict,
    ChangeEvent,
}

impl Arm {
    fn name(self) -> &'static str {
        match self {
            Arm::Direct => "direct",
            Arm::FetchEventual => "fetch-eventual",
            Arm::FetchStrict => "fetch-strict",
            Arm::ReuseStrict => "reuse-strict",
            Arm::ChangeEvent => "change-event",
        }
    }
}

/// Adds the paired differences of one round's direct and fetch-eventual phases.
fn pair_round(paired: &mut Vec<(String, Vec<f64>)>, load: &str, round_samples: &[(Arm, Sample)]) {
    let find = |wanted: Arm| round_samples.iter().find(|(arm, _)| *arm == wanted).map(|(_, s)| s);
    let (Some(direct), Some(fetch)) = (find(Arm::Direct), find(Arm::FetchEventual)) else {
        return;
    };
    let differences = paired_differences(direct, fetch);
    match paired.iter_mut().find(|(other, _)| other == load) {
        Some((_, existing)) => existing.extend(differences),
        None => paired.push((load.to_owned(), differences)),
    }
}

/// Query streams: `direct` and `fetch-eventual` share one (the same queries, paired);
/// `fetch-strict` gets its own, because the same query again would be a reuse hit.
fn pairing(arm: Arm) -> usize {
    usize::from(arm == Arm::FetchStrict)
}

fn stream_id(phase_idx: usize, key: usize, pairing: usize) -> u64 {
    let mut random = Random(
        0xC0FF_EE00_D15E_A5E5 ^ ((phase_idx as u64) << 40) ^ ((key as u64) << 8) ^ pairing as u64,
    );
    random.next_u64()
}

fn merge_into(samples: &mut Vec<(Arm, usize, Sample)>, arm: Arm, key: usize, sample: Sample) {
    match samples
        .iter_mut()
        .find(|(other_arm, other_key, _)| *other_arm == arm && *other_key == key)
    {
        Some((_, _, existing)) => existing.merge(sample),
        None => samples.push((arm, key, sample)),
    }
}

/// Everything the load generator shares between threads.
struct Bench {
    runtime: tokio::runtime::Runtime,
    pool: PgPool,
    address: SocketAddr,
    server_pid: String,
    ticks: f64,
    tenants: Vec<String>,
    dimension: usize,
    search_sql: &'static str,
    count_sql: &'static str,
    reuse_bodies: Vec<Vec<u8>>,
    run_id: String,
    /// Advanced per phase; part of every change event's `source_event_id`.
    phase_seed: u64,
    max_requests: usize,
}

/// A load-generator thread's own state.
struct Worker {
    connection: Connection,
    worker_idx: usize,
    body: String,
}

/// How one request went.
enum Outcome {
    Ok,
    WrongPath,
}

impl Bench {
    fn worker(&self, worker_idx: usize) -> Worker {
        Worker {
            connection: Connection::new(self.address),
            worker_idx,
            body: String::with_capacity(16 << 10),
        }
    }

    /// Sends one request of `arm`; `seq` numbers the requests of a phase. The query vector and
    /// tenant depend only on `stream` and `seq`, so arms given the same stream send the same
    /// queries in the same order (paired), whatever thread sends them.
    fn send(
        &self,
        arm: Arm,
        stream: u64,
        worker: &mut Worker,
        seq: usize,
    ) -> anyhow::Result<Outcome> {
        let tenant = &self.tenants[seq % self.tenants.len()];
        let mut random = Random(stream ^ (seq as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
        match arm {
            Arm::Direct => {
                let vector: Vec<f32> = (0..self.dimension).map(|_| random.next_f32()).collect();
                let n_hits = self.runtime.block_on(self.direct_search(tenant, vector))?;
                Ok(if n_hits == TOP_K { Outcome::Ok } else { Outcome::WrongPath })
            }
            Arm::FetchEventual | Arm::FetchStrict => {
                let mode = if arm == Arm::FetchStrict { "strict" } else { "eventual" };
                worker.body.clear();
                write_retrieve(&mut worker.body, &mut random, self.dimension, tenant, mode);
                let response = worker.connection.post(
                    "/v1/context/retrieve",
                    DATA_TOKEN,
                    worker.body.as_bytes(),
                )?;
                check(response, b"\"execution_path\":\"backend_fetch\"")
            }
            Arm::ReuseStrict => {
                let body = &self.reuse_bodies[seq % self.reuse_bodies.len()];
                let response = worker.connection.post("/v1/context/retrieve", DATA_TOKEN, body)?;
                check(response, b"\"execution_path\":\"context_reuse_hit\"")
            }
            Arm::ChangeEvent => {
                worker.body.clear();
                write!(
                    worker.body,
                    "{{\"target\":{{\"type\":\"document\",\"doc_id\":\"bench-doc-{}\"}},\
                     \"change_type\":\"content_updated\",\"scope\":{{\"tenant_id\":\"{tenant}\",\
                     \"namespace\":\"{NAMESPACE}\"}},\"source_event_id\":\"kyro-bench-{}-{}-{}-{seq}\"}}",
                    seq % 1000,
                    self.run_id,
                    self.phase_seed,
                    worker.worker_idx
                )
                .context("failed to format an event")?;
                let response = worker.connection.post(
                    "/v1/events/change",
                    DATA_TOKEN,
                    worker.body.as_bytes(),
                )?;
                check(response, b"\"generation\"")
            }
        }
    }

    /// `concurrency` threads, each sending its next request as soon as the last one answered.
    fn closed_loop(
        &mut self,
        arm: Arm,
        stream: u64,
        concurrency: usize,
        duration: Duration,
    ) -> anyhow::Result<Sample> {
        self.phase_seed += 1;
        let this = &*self;
        let next = AtomicUsize::new(0);
        let (server_before, client_before) = this.cpu()?;
        let start = Instant::now();
        let deadline = start + duration;
        let results = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..concurrency)
                .map(|worker_idx| {
                    let next = &next;
                    scope.spawn(move || {
                        let mut worker = this.worker(worker_idx);
                        let mut partial = empty_sample();
                        while Instant::now() < deadline {
                            let seq = next.fetch_add(1, Ordering::Relaxed);
                            if seq >= this.max_requests {
                                break;
                            }
                            let request_start = Instant::now();
                            let outcome = this.send(arm, stream, &mut worker, seq);
                            record(&mut partial, seq, outcome, request_start.elapsed());
                        }
                        partial
                    })
                })
                .collect();
            handles.into_iter().map(|handle| handle.join()).collect::<Vec<_>>()
        });
        let elapsed = start.elapsed();
        let (server_after, client_after) = this.cpu()?;
        let mut sample = empty_sample();
        for result in results {
            let partial =
                result.map_err(|_| anyhow::anyhow!("a load-generator thread panicked"))?;
            sample.merge(partial);
        }
        sample.elapsed = elapsed;
        sample.server_cpu = server_after.saturating_sub(server_before);
        sample.client_cpu = client_after.saturating_sub(client_before);
        Ok(sample)
    }

    /// Requests at a fixed offered rate, each timed from when it was scheduled to start; the
    /// phase gives up (and counts the rest as dropped) at three times its planned duration.
    fn open_loop(
        &mut self,
        arm: Arm,
        stream: u64,
        rate: f64,
        duration: Duration,
        n_workers: usize,
    ) -> anyhow::Result<Sample> {
        self.phase_seed += 1;
        let this = &*self;
        let n_planned = ((rate * duration.as_secs_f64()) as usize).clamp(1, this.max_requests);
        let interval = Duration::from_secs_f64(1.0 / rate);
        let next = AtomicUsize::new(0);
        let last_done = Mutex::new(Instant::now());
        let (server_before, client_before) = this.cpu()?;
        let start = Instant::now();
        let give_up = start + duration * 3;
        let results = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n_workers)
                .map(|worker_idx| {
                    let (next, last_done) = (&next, &last_done);
                    scope.spawn(move || {
                        let mut worker = this.worker(worker_idx);
                        let mut partial = empty_sample();
                        loop {
                            let seq = next.fetch_add(1, Ordering::Relaxed);
                            if seq >= n_planned {
                                break;
                            }
                            let scheduled = start + interval * seq as u32;
                            let now = Instant::now();
                            if now >= give_up {
                                partial.n_dropped += 1;
                                continue;
                            }
                            if scheduled > now {
                                std::thread::sleep(scheduled - now);
                            }
                            let outcome = this.send(arm, stream, &mut worker, seq);
                            let done = Instant::now();
                            record(
                                &mut partial,
                                seq,
                                outcome,
                                done.saturating_duration_since(scheduled),
                            );
                            if let Ok(mut last) = last_done.lock() {
                                *last = (*last).max(done);
                            }
                        }
                        partial
                    })
                })
                .collect();
            handles.into_iter().map(|handle| handle.join()).collect::<Vec<_>>()
        });
        let (server_after, client_after) = this.cpu()?;
        let mut sample = empty_sample();
        for result in results {
            let partial =
                result.map_err(|_| anyhow::anyhow!("a load-generator thread panicked"))?;
            sample.merge(partial);
        }
        let last = last_done.into_inner().map_err(|_| anyhow::anyhow!("a poisoned lock"))?;
        sample.elapsed = last.saturating_duration_since(start);
        sample.server_cpu = server_after.saturating_sub(server_before);
        sample.client_cpu = client_after.saturating_sub(client_before);
        Ok(sample)
    }

    /// Builds the reuse arm's queries, sends each once (a backend fetch that fills the cache),
    /// and checks that a second send is a reuse hit.
    fn prepare_reuse(&mut self, n_queries: usize) -> anyhow::Result<()> {
        ensure!(n_queries > 0, "--reuse-queries must be positive");
        let mut random = Random(0x5EED_0000_0000_0001);
        let mut bodies = Vec::with_capacity(n_queries);
        for query_idx in 0..n_queries {
            let tenant = &self.tenants[query_idx % self.tenants.len()];
            let mut body = String::new();
            write_retrieve(&mut body, &mut random, self.dimension, tenant, "strict");
            bodies.push(body.into_bytes());
        }
        let mut connection = Connection::new(self.address);
        for body in &bodies {
            let response = connection.post("/v1/context/retrieve", DATA_TOKEN, body)?;
            ensure!(
                response.status == 200,
                "warming a reuse entry failed: {}",
                lossy(&response.body)
            );
        }
        for body in &bodies {
            let response = connection.post("/v1/context/retrieve", DATA_TOKEN, body)?;
            if !matches!(
                check(response, b"\"execution_path\":\"context_reuse_hit\""),
                Ok(Outcome::Ok)
            ) {
                bail!("a warmed strict query was not served from the reuse cache");
            }
        }
        self.reuse_bodies = bodies;
        Ok(())
    }

    /// The connector's search transaction, issued directly: same settings, statement, bounded
    /// count when short, and columns decoded. Returns the number of hits.
    async fn direct_search(&self, tenant: &str, vector: Vec<f32>) -> anyhow::Result<usize> {
        let begin: &'static str = if EF_SEARCH == 40 && ITERATIVE_SCAN == "strict_order" {
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
             SET LOCAL hnsw.ef_search = 40; SET LOCAL hnsw.iterative_scan = strict_order"
        } else {
            bail!("the direct arm's BEGIN is written for ef_search 40 and strict_order")
        };
        let mut transaction = self.pool.begin_with(begin).await.context("failed to begin")?;
        let rows = sqlx::query(self.search_sql)
            .bind(tenant)
            .bind(NAMESPACE)
            .bind(TOP_K as i64)
            .bind(pgvector::Vector::from(vector))
            .fetch_all(&mut *transaction)
            .await
            .context("failed to search")?;
        let mut hits: Vec<DirectHit> = Vec::with_capacity(rows.len());
        for row in &rows {
            hits.push((
                row.try_get(0).context("id")?,
                row.try_get(1).context("metadata")?,
                row.try_get(2).context("content")?,
                row.try_get(3).context("watermark")?,
                row.try_get(4).context("distance")?,
            ));
        }
        if rows.len() < TOP_K {
            let _n_matching: i64 = sqlx::query_scalar(self.count_sql)
                .bind(tenant)
                .bind(NAMESPACE)
                .bind(TOP_K as i64)
                .fetch_one(&mut *transaction)
                .await
                .context("failed to count")?;
        }
        transaction.commit().await.context("failed to commit")?;
        Ok(hits.len())
    }

    fn cpu(&self) -> anyhow::Result<(Duration, Duration)> {
        Ok((cpu_time(&self.server_pid, self.ticks)?, cpu_time("self", self.ticks)?))
    }
}

/// A hit as the direct arm decodes it: id, metadata, content, watermark, distance.
type DirectHit = (String, Option<String>, Option<String>, Option<i64>, f64);

fn empty_sample() -> Sample {
    Sample {
        latencies_us: Vec::new(),
        elapsed: Duration::ZERO,
        n_errors: 0,
        n_wrong_path: 0,
        n_dropped: 0,
        server_cpu: Duration::ZERO,
        client_cpu: Duration::ZERO,
        first_error: None,
        by_seq: Vec::new(),
    }
}

fn record(sample: &mut Sample, seq: usize, outcome: anyhow::Result<Outcome>, latency: Duration) {
    match outcome {
        Ok(Outcome::Ok) => {
            sample.latencies_us.push(latency.as_secs_f64() * 1e6);
            sample.by_seq.push((seq, latency.as_secs_f64() * 1e6));
        }
        Ok(Outcome::WrongPath) => {
            sample.n_wrong_path += 1;
            sample.latencies_us.push(latency.as_secs_f64() * 1e6);
        }
        Err(err) => {
            sample.n_errors += 1;
            if sample.first_error.is_none() {
                sample.first_error = Some(format!("{err:#}"));
            }
        }
    }
}

fn check(response: client::Response, expected: &[u8]) -> anyhow::Result<Outcome> {
    if response.status != 200 {
        bail!("status {}: {}", response.status, lossy(&response.body));
    }
    let found = response.body.windows(expected.len()).any(|window| window == expected);
    Ok(if found { Outcome::Ok } else { Outcome::WrongPath })
}

fn lossy(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned()
}

fn write_retrieve(
    body: &mut String,
    random: &mut Random,
    dimension: usize,
    tenant: &str,
    mode: &str,
) {
    body.push_str("{\"query_embedding\":[");
    for value_idx in 0..dimension {
        if value_idx > 0 {
            body.push(',');
        }
        // `f32`'s shortest round-trip form: the server parses it back to the same `f32`.
        let _ = write!(body, "{}", random.next_f32());
    }
    let _ = write!(
        body,
        "],\"scope\":{{\"tenant_id\":\"{tenant}\",\"namespace\":\"{NAMESPACE}\"}},\
         \"top_k\":{TOP_K},\"freshness_mode\":\"{mode}\"}}"
    );
}

/// splitmix64, as in the connector benches: fixed seeds, so runs send the same queries.
struct Random(u64);

impl Random {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn next_f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// Checks that the table exists with rows for every tenant; returns its row count.
async fn check_table(pool: &PgPool, table: &str, tenants: &[String]) -> anyhow::Result<i64> {
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(format!("public.{table}"))
        .fetch_one(pool)
        .await
        .context("failed to look up the table")?;
    if exists.is_none() {
        bail!(
            "table public.{table} does not exist; build it once with \
             `cargo bench -p kyro-connector-pgvector --bench scoped_search` (about two minutes)"
        );
    }
    let mut n_rows = 0;
    for tenant in tenants {
        let n_tenant_rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM \"public\".\"{table}\" WHERE tenant_id = $1 AND namespace = $2"
        )))
        .bind(tenant)
        .bind(NAMESPACE)
        .fetch_one(pool)
        .await
        .context("failed to count a tenant's rows")?;
        ensure!(
            n_tenant_rows >= TOP_K as i64,
            "tenant {tenant} has only {n_tenant_rows} rows in {table}"
        );
        n_rows += n_tenant_rows;
    }
    Ok(n_rows)
}

/// A running `kyro serve`, killed on drop.
struct Server {
    child: Child,
    address: SocketAddr,
}

impl Server {
    fn start(
        kyro_binary: &Path,
        plugin: &Path,
        dir: &Path,
        database_url: &str,
        args: &Args,
    ) -> anyhow::Result<Self> {
        let address = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("failed to find a free loopback port")?;
        let config = format!(
            "listen = \"{address}\"\nmode = \"production\"\ndefault_freshness = \"strict\"\n\
             state = \"sqlite://state.db\"\n\
             [tokens]\n\
             data = [{{ token = {{ value = \"{DATA_TOKEN}\" }} }}]\n\
             observability = [{{ token = {{ value = \"{OBS_TOKEN}\" }} }}]\n\
             admin = [{{ token = {{ value = \"{ADMIN_TOKEN}\" }} }}]\n\
             [[stores]]\nid = \"pg\"\nplugin = \"{}\"\nownership_mode = \"event_feed\"\nnamespaces = [\"*\"]\n\
             [stores.config]\ndsn = {{ env = \"KYRO_TEST_DATABASE_URL\" }}\ntable = \"public.{}\"\n\
             dimension = {}\ndistance = \"cosine\"\nfilterable_keys = [\"lang\"]\nownership_mode = \"event_feed\"\n\
             pool_size = {}\nhnsw_ef_search = {EF_SEARCH}\nhnsw_iterative_scan = \"{ITERATIVE_SCAN}\"\nmax_top_k = 100\n",
            plugin.display(),
            args.table,
            args.dimension,
            args.pool_size,
        );
        let config_path = dir.join("kyro.toml");
        std::fs::write(&config_path, config)
            .with_context(|| format!("failed to write {}", config_path.display()))?;
        let mut child = Command::new(kyro_binary)
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("KYRO_LOG", "warn")
            .env("KYRO_TEST_DATABASE_URL", database_url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("failed to start {}", kyro_binary.display()))?;
        let stderr = child.stderr.take().context("kyro serve has no stderr")?;
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut output = String::new();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(wait) {
                Ok(line) => {
                    output.push_str(&line);
                    output.push('\n');
                    if line.starts_with("kyro listening on") {
                        // Keep draining stderr so the server never blocks on a full pipe.
                        std::thread::spawn(move || while receiver.recv().is_ok() {});
                        return Ok(Self { child, address });
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("kyro serve did not start; it printed:\n{output}");
                }
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rows of the final table, in the order they were measured per arm.
#[derive(Default)]
struct Report {
    rows: Vec<ReportRow>,
}

struct ReportRow {
    arm: Arm,
    load: String,
    summary: Summary,
    first_error: Option<String>,
}

impl Report {
    fn add(&mut self, arm: Arm, load: &str, sample: Sample) -> Summary {
        let first_error = sample.first_error.clone();
        let summary = sample.summarize();
        self.rows.push(ReportRow {
            arm,
            load: load.to_owned(),
            summary: summary.clone(),
            first_error,
        });
        summary
    }

    fn find(&self, arm: Arm, load_prefix: &str) -> Option<&Summary> {
        self.rows
            .iter()
            .find(|row| row.arm == arm && row.load.starts_with(load_prefix))
            .map(|row| &row.summary)
    }

    fn best(&self, arm: Arm) -> Option<&Summary> {
        self.rows
            .iter()
            .filter(|row| row.arm == arm && row.load.starts_with("closed"))
            .map(|row| &row.summary)
            .max_by(|left, right| left.throughput.total_cmp(&right.throughput))
    }

    /// The issue's targets against what this run measured.
    fn targets(&self, args: &Args) -> Value {
        let mut targets = Vec::new();
        let direct_open = self.find(Arm::Direct, "open");
        for arm in [Arm::FetchEventual, Arm::FetchStrict] {
            if let (Some(direct), Some(fetch)) = (direct_open, self.find(arm, "open")) {
                let added_p50 = fetch.p50_ms - direct.p50_ms;
                let added_p99 = fetch.p99_ms - direct.p99_ms;
                targets.push(json!({
                    "target": format!("{} adds <= 0.3 ms p50 over direct at {:.0}% of direct's max",
                                      arm.name(), args.open_fractions.first().copied().unwrap_or(0.5) * 100.0),
                    "measured_ms": added_p50, "met": added_p50 <= 0.3 }));
                targets.push(json!({
                    "target": format!("{} adds <= 1 ms p99 over direct at that rate", arm.name()),
                    "measured_ms": added_p99, "met": added_p99 <= 1.0 }));
            }
        }
        if let (Some(direct), Some(reuse)) =
            (self.find(Arm::Direct, "closed 1"), self.find(Arm::ReuseStrict, "closed 1"))
        {
            targets.push(json!({
                "target": "strict reuse hit faster than the direct query (p50, 1 in flight)",
                "measured_ms": reuse.p50_ms, "direct_ms": direct.p50_ms, "met": reuse.p50_ms < direct.p50_ms }));
        }
        if let Some(reuse) = self.best(Arm::ReuseStrict) {
            targets.push(json!({
                "target": "strict reuse hit >= 20,000 req/s over HTTP on loopback",
                "measured_per_s": reuse.throughput, "met": reuse.throughput >= 20_000.0 }));
        }
        if let Some(events) = self.best(Arm::ChangeEvent) {
            targets.push(json!({
                "target": "change events >= 5,000 durable ACKs/s",
                "measured_per_s": events.throughput, "met": events.throughput >= 5_000.0 }));
            targets.push(json!({
                "target": "change event ACK p99 < 5 ms (at the best-throughput concurrency)",
                "measured_ms": events.p99_ms, "met": events.p99_ms < 5.0 }));
        }
        Value::Array(targets)
    }

    fn print(&self, targets: &Value) {
        println!();
        println!(
            "{:<15} {:<18} {:>7} {:>9} {:>8} {:>8} {:>8} {:>10} {:>10} {:>6}",
            "arm",
            "load",
            "n",
            "req/s",
            "p50 ms",
            "p99 ms",
            "p99.9",
            "kyro us/r",
            "gen us/r",
            "errors"
        );
        for row in &self.rows {
            let summary = &row.summary;
            println!(
                "{:<15} {:<18} {:>7} {:>9.1} {:>8.3} {:>8.3} {:>8.3} {:>10.1} {:>10.1} {:>6}",
                row.arm.name(),
                row.load,
                summary.n_requests,
                summary.throughput,
                summary.p50_ms,
                summary.p99_ms,
                summary.p999_ms,
                summary.server_cpu_us_per_request,
                summary.client_cpu_us_per_request,
                summary.n_errors + summary.n_wrong_path + summary.n_dropped,
            );
            if let Some(error) = &row.first_error {
                println!("    first error: {error}");
            }
        }
        println!();
        if let Value::Array(targets) = targets {
            for target in targets {
                let met = if target["met"] == json!(true) { "met   " } else { "MISSED" };
                println!("{met} {} : {}", target["target"].as_str().unwrap_or(""), target);
            }
        }
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_default()
}
