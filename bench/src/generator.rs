//! The load generator: one kind of request per arm, closed-loop sweeps (a fixed number of
//! requests in flight) and an open loop at a fixed offered rate, each phase timed, counted and
//! charged with the CPU time of the `kyro` process and of this process.
//!
//! The query vector and tenant of request `seq` depend only on the phase's stream and on `seq`,
//! so two arms given the same stream send the same queries in the same order whatever thread
//! sends them, which is what lets `direct` and `fetch-eventual` be compared query by query.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::client::{self, Connection};
use crate::dataset::NAMESPACE;
use crate::random::Random;
use crate::server::DATA_TOKEN;
use crate::stats::{Sample, cpu_time, paired_differences};
use crate::{TOP_K, pg_store, qdrant_store};

/// One kind of request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arm {
    Direct,
    FetchEventual,
    FetchStrict,
    ReuseStrict,
    ChangeEvent,
}

impl Arm {
    pub(crate) fn name(self) -> &'static str {
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
pub(crate) fn pair_round(
    paired: &mut Vec<(String, Vec<f64>)>,
    load: &str,
    round_samples: &[(Arm, Sample)],
) {
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
pub(crate) fn pairing(arm: Arm) -> usize {
    usize::from(arm == Arm::FetchStrict)
}

pub(crate) fn stream_id(phase_idx: usize, key: usize, pairing: usize) -> u64 {
    let mut random = Random(
        0xC0FF_EE00_D15E_A5E5 ^ ((phase_idx as u64) << 40) ^ ((key as u64) << 8) ^ pairing as u64,
    );
    random.next_u64()
}

pub(crate) fn merge_into(
    samples: &mut Vec<(Arm, usize, Sample)>,
    arm: Arm,
    key: usize,
    sample: Sample,
) {
    match samples
        .iter_mut()
        .find(|(other_arm, other_key, _)| *other_arm == arm && *other_key == key)
    {
        Some((_, _, existing)) => existing.merge(sample),
        None => samples.push((arm, key, sample)),
    }
}

/// The direct arm: the same scoped top-10 query, straight to the store.
#[expect(clippy::large_enum_variant, reason = "one value per run, never moved in a hot path")]
pub(crate) enum Direct {
    Pgvector(pg_store::DirectSearch),
    QdrantEmbedded(qdrant_store::DirectSearch),
}

impl Direct {
    /// Returns the number of hits.
    fn search(&self, tenant: &str, vector: Vec<f32>) -> anyhow::Result<usize> {
        match self {
            Direct::Pgvector(direct) => direct.search(tenant, vector),
            Direct::QdrantEmbedded(direct) => direct.search(tenant, vector),
        }
    }

    /// Closes the direct arm's connections.
    pub(crate) fn close(&self) {
        if let Direct::Pgvector(direct) = self {
            direct.runtime.block_on(direct.pool.close());
        }
    }
}

/// Everything the load generator shares between threads.
pub(crate) struct Bench {
    pub(crate) direct: Direct,
    pub(crate) address: SocketAddr,
    pub(crate) server_pid: String,
    pub(crate) ticks: f64,
    pub(crate) tenants: Vec<String>,
    pub(crate) dimension: usize,
    pub(crate) reuse_bodies: Vec<Vec<u8>>,
    pub(crate) run_id: String,
    /// Advanced per phase; part of every change event's `source_event_id`.
    pub(crate) phase_seed: u64,
    pub(crate) max_requests: usize,
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
                let n_hits = self.direct.search(tenant, vector)?;
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
    pub(crate) fn closed_loop(
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
        let after = this.cpu()?;
        merge_phase(results, elapsed, (server_before, client_before), after)
    }

    /// Requests at a fixed offered rate, each timed from when it was scheduled to start; the
    /// phase gives up (and counts the rest as dropped) at three times its planned duration.
    pub(crate) fn open_loop(
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
        let after = this.cpu()?;
        let last = last_done.into_inner().map_err(|_| anyhow::anyhow!("a poisoned lock"))?;
        let elapsed = last.saturating_duration_since(start);
        merge_phase(results, elapsed, (server_before, client_before), after)
    }

    /// Builds the reuse arm's queries, sends each once (a backend fetch that fills the cache),
    /// and checks that a second send is a reuse hit.
    pub(crate) fn prepare_reuse(&mut self, n_queries: usize) -> anyhow::Result<()> {
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

    fn cpu(&self) -> anyhow::Result<(Duration, Duration)> {
        Ok((cpu_time(&self.server_pid, self.ticks)?, cpu_time("self", self.ticks)?))
    }
}

pub(crate) fn empty_sample() -> Sample {
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

pub(crate) fn write_retrieve(
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

/// One phase's sample: the generator threads' partial samples merged, with the phase's
/// duration and the CPU time the server and this process spent in it.
fn merge_phase(
    results: Vec<std::thread::Result<Sample>>,
    elapsed: Duration,
    (server_before, client_before): (Duration, Duration),
    (server_after, client_after): (Duration, Duration),
) -> anyhow::Result<Sample> {
    let mut sample = empty_sample();
    for result in results {
        let partial = result.map_err(|_| anyhow::anyhow!("a load-generator thread panicked"))?;
        sample.merge(partial);
    }
    sample.elapsed = elapsed;
    sample.server_cpu = server_after.saturating_sub(server_before);
    sample.client_cpu = client_after.saturating_sub(client_before);
    Ok(sample)
}
