//! [`StateStore`]: the public face of the crate. Each method plans its statements (`plan`,
//! `read`) and hands them to the driver that serves it (`pool` or `direct`).

use std::fmt;

use crate::direct::Direct;
use crate::open::{backend_of, open_postgres, open_sqlite, url_scheme};
use crate::plan::{CaptureBound, ChangeBatch, FeedbackInsert, Seed, TraceBatch, Write};
use crate::pool::Pool;
use crate::read::{self, freshness_queries, freshness_view};
use crate::statement::{Query, Row};
use crate::{
    ApplyOutcome, CapturedStep, ChangeInput, DocumentKey, EvidenceCounts, FeedbackRow,
    FreshnessView, OutOfOrderDocument, Primer, ProcessedEvent, Result, StateError, TraceRow,
};

/// The durable state store shared by every request path of the host.
///
/// Cheap to share behind an `Arc`; all methods take `&self`.
pub struct StateStore {
    pub(crate) pool: Pool,
    /// Where the store lives, without credentials: the SQLite file path, or PostgreSQL
    /// `host:port/database`. Used in `Debug`.
    location: String,
    /// How many steps the capture keeps; every write of capture steps trims to it.
    pub(crate) capture_bound: CaptureBound,
    /// SQLite only: the direct connections its serving paths and writes use.
    pub(crate) direct: Option<Direct>,
}

/// Which database a [`StateStore`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StateBackend {
    /// A local SQLite file (WAL, `synchronous = FULL`).
    Sqlite,
    /// A PostgreSQL database, possibly shared by several hosts.
    Postgres,
}

impl StateBackend {
    /// The stable lowercase name used in messages and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for StateBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StateStore {
    /// Opens the store and brings its schema up to date.
    ///
    /// `url` is `sqlite://<path>` (the file is created if missing; WAL, `synchronous = FULL`,
    /// a busy timeout) or `postgres://...` / `postgresql://...`. Concurrent opens of one
    /// database are safe: migrations run under a lock (PostgreSQL advisory lock, SQLite write
    /// lock).
    ///
    /// # Errors
    ///
    /// The URL is unsupported or invalid, the database cannot be reached, SQLite cannot use WAL,
    /// or the migrations fail. No error message contains the URL or its credentials.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        match backend_of(url) {
            Some(StateBackend::Sqlite) => {
                let opened = open_sqlite(url).await?;
                let direct = Direct::open(&opened.path).map_err(|source| StateError::Sqlite {
                    operation: "open the direct connections",
                    source,
                })?;
                let pool = Pool { pool: opened.pool, backend: StateBackend::Sqlite };
                Ok(Self::with_pool(pool, opened.location, Some(direct)))
            }
            Some(StateBackend::Postgres) => {
                let (pool, location) = open_postgres(url).await?;
                let pool = Pool { pool, backend: StateBackend::Postgres };
                Ok(Self::with_pool(pool, location, None))
            }
            None => Err(StateError::UnsupportedUrl { scheme: url_scheme(url).map(str::to_owned) }),
        }
    }

    fn with_pool(pool: Pool, location: String, direct: Option<Direct>) -> Self {
        Self { pool, location, capture_bound: CaptureBound::default(), direct }
    }

    #[cfg(any(test, feature = "test-suite"))]
    /// Applies one change in a single durable transaction: dedupes its event id, allocates the
    /// next generation, and records its scopes and documents. Returns only after the commit.
    ///
    /// A replayed event id returns the original generation ([`ApplyOutcome::Replayed`] with
    /// the same fingerprint, [`ApplyOutcome::Conflict`] with a different one) and changes
    /// nothing, not even the current generation.
    ///
    /// # Errors
    ///
    /// A watermark above `i64::MAX` ([`StateError::OutOfRange`], checked before anything is
    /// written), or the database failed; then nothing was applied.
    pub(crate) async fn apply_change(&self, change: &ChangeInput) -> Result<ApplyOutcome> {
        let outcomes = self.apply_changes(std::slice::from_ref(change)).await?;
        outcomes.first().copied().ok_or(StateError::Closed)
    }

    /// Applies several changes in one durable transaction (group commit), in order: each gets
    /// its own generation, and replays (also of an earlier change in the same batch) are
    /// recognized as in [`StateStore::apply_change`]. Returns after the commit.
    ///
    /// # Errors
    ///
    /// As [`StateStore::apply_change`]; nothing of the batch was applied.
    pub async fn apply_changes(&self, changes: &[ChangeInput]) -> Result<Vec<ApplyOutcome>> {
        self.write(ChangeBatch::new(changes.to_vec(), self.capture_bound.max_steps())).await
    }

    /// Reads what a strict retrieve checks, from one consistent snapshot: the current
    /// generation, the generations of the given scope keys and the state of the given
    /// documents. Every generation returned is at most `current_generation`.
    ///
    /// # Errors
    ///
    /// The database failed or holds corrupt values.
    pub async fn read_freshness(
        &self,
        scope_keys: &[String],
        documents: &[DocumentKey],
    ) -> Result<FreshnessView> {
        const OPERATION: &str = "read freshness";
        let scope_keys = unique_in_order(scope_keys);
        let documents = unique_in_order(documents);
        let queries = freshness_queries(&scope_keys, &documents);
        let rows = match &self.direct {
            Some(direct) => direct.read(OPERATION, queries)?,
            None => self.pool.read(OPERATION, queries).await?,
        };
        freshness_view(&scope_keys, &documents, rows)
    }

    /// The current runtime generation: 0 for a fresh store, then the generation of the latest
    /// applied change.
    ///
    /// # Errors
    ///
    /// The database failed or holds a corrupt value.
    pub async fn current_generation(&self) -> Result<u64> {
        let rows = self.read("read the current generation", vec![read::generation_query()]).await?;
        read::decode_generation(rows)
    }

    #[cfg(any(test, feature = "test-suite"))]
    /// Reads everything needed to prime a replay or shadow session, from one consistent
    /// snapshot: the current generation, every scope generation, and the `limit` most recently
    /// processed change events, newest first.
    ///
    /// # Errors
    ///
    /// The database failed or holds corrupt values.
    pub(crate) async fn primer(&self, limit: usize) -> Result<Primer> {
        read::decode_primer(self.read("read the primer", read::primer_queries(limit)).await?)
    }

    /// The `limit` newest change events processed at or before `generation`, newest first.
    ///
    /// # Errors
    ///
    /// The database failed or holds corrupt values.
    pub async fn processed_events_upto(
        &self,
        generation: u64,
        limit: usize,
    ) -> Result<Vec<ProcessedEvent>> {
        let generation = crate::error::to_i64("generation", generation)?;
        let query = read::events_upto_query(generation, limit);
        read::decode_events(self.read_one("read processed events", query).await?)
    }

    /// Seeds a fresh store from a primer: the runtime generation, scope generations and
    /// processed change events, in one transaction. Used for shadow sessions.
    ///
    /// # Errors
    ///
    /// The store already holds changes, or the database failed; then nothing was written.
    pub async fn seed(&self, primer: &Primer) -> Result<()> {
        self.write(Seed { primer: primer.clone() }).await
    }

    /// Stores a trace.
    ///
    /// # Errors
    ///
    /// [`StateError::DuplicateTrace`] when the id is already stored (the stored trace is left
    /// unchanged), or the database failed.
    pub async fn put_trace(&self, trace: &TraceRow) -> Result<()> {
        let mut outcomes = self.put_traces(std::slice::from_ref(trace)).await?;
        outcomes.pop().unwrap_or(Err(StateError::Closed))
    }

    /// Stores several traces in one durable transaction (group commit): one fsync for the batch
    /// instead of one per trace. Each trace's own outcome is returned in order; a duplicate id
    /// fails only that trace. When the transaction itself fails, every trace fails.
    ///
    /// # Errors
    ///
    /// The database failed; nothing of the batch was stored.
    pub async fn put_traces(&self, traces: &[TraceRow]) -> Result<Vec<Result<()>>> {
        self.write(TraceBatch::new(traces.to_vec(), self.capture_bound.max_steps())).await
    }

    /// Reads one trace by id.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn get_trace(&self, trace_id: &str) -> Result<Option<TraceRow>> {
        let rows = self.read_one("read a trace", read::trace_query(trace_id)).await?;
        Ok(read::decode_traces(rows)?.pop())
    }

    /// The `limit` most recent traces, newest first (ties broken by id, descending).
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn recent_traces(&self, limit: usize) -> Result<Vec<TraceRow>> {
        let query = read::recent_traces_query(limit);
        read::decode_traces(self.read_one("list recent traces", query).await?)
    }

    /// Stores one feedback entry durably.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn put_feedback(&self, feedback: &FeedbackRow) -> Result<()> {
        self.write(FeedbackInsert::new(feedback.clone())).await
    }

    /// Every feedback entry for a trace, oldest first.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn feedback_for(&self, trace_id: &str) -> Result<Vec<FeedbackRow>> {
        let rows = self.read_one("read feedback", read::feedback_query(trace_id)).await?;
        read::decode_feedback(rows)
    }

    /// Every feedback entry received at or after `since_ms`, oldest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn feedback_since(&self, since_ms: i64, limit: usize) -> Result<Vec<FeedbackRow>> {
        let query = read::feedback_since_query(since_ms, limit);
        read::decode_feedback(self.read_one("read recent feedback", query).await?)
    }

    /// The `limit` most recent capture steps, oldest first.
    ///
    /// # Errors
    ///
    /// The database failed or holds corrupt values.
    pub async fn recent_capture(&self, limit: usize) -> Result<Vec<CapturedStep>> {
        let query = read::recent_capture_query(limit);
        read::decode_capture(self.read_one("read the replay capture", query).await?)
    }

    /// The `limit` most recent documents whose facts a change carried out of order, newest
    /// change first.
    ///
    /// # Errors
    ///
    /// The database failed or holds corrupt values.
    pub async fn out_of_order_documents(&self, limit: usize) -> Result<Vec<OutOfOrderDocument>> {
        let query = read::out_of_order_query(limit);
        read::decode_out_of_order(self.read_one("read out-of-order documents", query).await?)
    }

    /// How much evidence is stored.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn evidence_counts(&self) -> Result<EvidenceCounts> {
        let query = read::evidence_counts_query();
        read::decode_evidence_counts(self.read_one("count evidence", query).await?)
    }

    /// Checks that the database answers, for health reporting.
    ///
    /// # Errors
    ///
    /// No connection could be acquired or the database did not answer.
    pub async fn ping(&self) -> Result<()> {
        let db_error = |source| self.pool.error("ping", source);
        let mut conn = self.pool.pool.acquire().await.map_err(db_error)?;
        sqlx::Connection::ping(&mut *conn).await.map_err(db_error)
    }

    /// Closes every connection, waiting for in-flight calls to finish. Later calls fail.
    pub async fn close(&self) {
        if let Some(direct) = &self.direct {
            direct.close();
        }
        self.pool.pool.close().await;
    }

    /// Runs a planned write: on SQLite's writer thread, or as a pooled transaction.
    pub(crate) async fn write<W>(&self, write: W) -> Result<W::Output>
    where
        W: Write + Send + 'static,
        W::Output: Send + 'static,
    {
        match &self.direct {
            Some(direct) => direct.write(write).await,
            None => self.pool.write(&write).await,
        }
    }

    /// Runs reads no request waits on, on the pool.
    async fn read(
        &self,
        operation: &'static str,
        queries: Vec<Query<'_>>,
    ) -> Result<Vec<Vec<Row>>> {
        self.pool.read(operation, queries).await
    }

    async fn read_one(&self, operation: &'static str, query: Query<'_>) -> Result<Vec<Row>> {
        Ok(self.read(operation, vec![query]).await?.pop().unwrap_or_default())
    }
}

impl fmt::Debug for StateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateStore")
            .field("backend", &self.pool.backend)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

fn unique_in_order<T: Ord>(items: &[T]) -> Vec<&T> {
    let mut seen = std::collections::BTreeSet::new();
    let mut unique = Vec::with_capacity(items.len());
    for item in items {
        if seen.insert(item) {
            unique.push(item);
        }
    }
    unique
}
