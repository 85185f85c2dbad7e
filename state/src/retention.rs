//! Retention: deleting evidence past its time, and bounding the replay capture.
//!
//! One pruner at a time: a pass runs only while it holds the pruner's lock (a PostgreSQL
//! advisory lock, so hosts sharing the database take turns; on SQLite a lock file next to the
//! database), and a host that does not get it skips the pass.
//!
//! Rows go in chunks of [`PRUNE_CHUNK_ROWS`], each in a transaction of its own, so the serving
//! writer waits for one chunk at most rather than for a whole pass: one transaction deleting
//! ten seconds of evidence (50,000 capture steps at 5,000 retrieves/s) held SQLite's write lock
//! for a quarter of a second.

use crate::error::limit_to_i64;
use crate::plan::{PRUNE_CHUNK_ROWS, PruneChunk, single_int};
use crate::pool::AdvisoryLock;
use crate::sql::{
    DELETE_CAPTURE_BEFORE, DELETE_CAPTURE_THROUGH, DELETE_FEEDBACK_BEFORE, DELETE_TRACES_BEFORE,
    SELECT_LAST_CAPTURE_SEQUENCE,
};
use crate::statement::{Column, Statement};
use crate::{Pruned, Result, StateStore};

/// The PostgreSQL advisory lock key of the pruner: the bytes of `kyroprun`.
const PRUNER_LOCK_KEY: i64 = 0x6b79_726f_7072_756e;

/// The right to run a retention pass, held until released (or dropped).
pub(crate) enum PrunerLease {
    Postgres(AdvisoryLock),
    /// The locked file; closing it unlocks.
    Sqlite(std::fs::File),
}

impl PrunerLease {
    pub(crate) async fn release(self) {
        match self {
            Self::Postgres(lock) => lock.release().await,
            Self::Sqlite(file) => drop(file),
        }
    }
}

impl StateStore {
    /// Deletes evidence past retention: traces and feedback received before their cutoffs,
    /// capture steps before theirs, and capture steps beyond the newest `max_capture_steps`.
    /// Returns `None`, having deleted nothing, when another pruner holds the lock.
    ///
    /// # Errors
    ///
    /// The lock could not be taken, or the database failed; chunks deleted before the failure
    /// stay deleted.
    pub async fn prune_evidence(
        &self,
        trace_cutoff_ms: i64,
        feedback_cutoff_ms: i64,
        capture_cutoff_ms: i64,
        max_capture_steps: usize,
    ) -> Result<Option<Pruned>> {
        let Some(lease) = self.try_lock_pruner().await? else {
            return Ok(None);
        };
        let cutoffs = (trace_cutoff_ms, feedback_cutoff_ms, capture_cutoff_ms);
        let pruned = self.prune_pass(cutoffs, max_capture_steps).await;
        lease.release().await;
        pruned.map(Some)
    }

    /// Takes the pruner's lock, or returns `None` when another pruner holds it.
    pub(crate) async fn try_lock_pruner(&self) -> Result<Option<PrunerLease>> {
        Ok(match &self.direct {
            Some(direct) => direct.try_lock_pruner()?.map(PrunerLease::Sqlite),
            None => self.pool.try_advisory_lock(PRUNER_LOCK_KEY).await?.map(PrunerLease::Postgres),
        })
    }

    /// One retention pass, under the pruner's lock.
    async fn prune_pass(
        &self,
        (trace_cutoff_ms, feedback_cutoff_ms, capture_cutoff_ms): (i64, i64, i64),
        max_capture_steps: usize,
    ) -> Result<Pruned> {
        let traces = self.delete_in_chunks(DELETE_TRACES_BEFORE, trace_cutoff_ms).await?;
        let feedback = self.delete_in_chunks(DELETE_FEEDBACK_BEFORE, feedback_cutoff_ms).await?;
        let mut capture_steps =
            self.delete_in_chunks(DELETE_CAPTURE_BEFORE, capture_cutoff_ms).await?;
        let query =
            Statement::new(SELECT_LAST_CAPTURE_SEQUENCE, Vec::new()).returning(&[Column::Int]);
        let rows = self.pool.read("prune evidence", vec![query]).await?;
        let newest = single_int(rows.into_iter().next(), "capture sequence")?;
        let through = newest.saturating_sub(limit_to_i64(max_capture_steps));
        if through > 0 {
            capture_steps += self.delete_in_chunks(DELETE_CAPTURE_THROUGH, through).await?;
        }
        Ok(Pruned { traces, feedback, capture_steps })
    }

    /// Bounds the replay capture to its newest `max_steps` steps (0: no bound): every write of
    /// capture steps trims the oldest beyond it in its own transaction.
    /// [`StateStore::prune_evidence`] enforces the bound it is given too, and the time-based
    /// retention.
    pub fn bound_capture(&self, max_steps: usize) {
        self.capture_bound.set(max_steps);
    }

    /// Runs a chunked retention `DELETE` (`$1` the cutoff, `$2` the chunk size) until a chunk
    /// deletes less than a full chunk; returns the rows deleted.
    async fn delete_in_chunks(&self, sql: &'static str, cutoff: i64) -> Result<u64> {
        let mut deleted = 0;
        loop {
            let n_deleted = self.write(PruneChunk { sql, cutoff }).await?;
            deleted += n_deleted;
            if n_deleted < PRUNE_CHUNK_ROWS as u64 {
                return Ok(deleted);
            }
            tokio::task::yield_now().await;
        }
    }
}
