//! Shadow sessions: a private ledger, traces, feedback and capture in a SQLite file of their
//! own, seeded from a replay primer, sharing only the certified stores. Bounded in number and in
//! time; their files go with them, and those of killed hosts are swept.

use std::sync::Arc;

use super::error::{RuntimeError, RuntimeErrorKind, RuntimeResult};
use super::session::Session;
use super::{Runtime, now_ms};
use kyro_state::{Primer, StateStore};

/// Shadow sessions keep their state in `<temp dir>/kyro-shadow-<pid>-<session id>`.
const SHADOW_DIR_PREFIX: &str = "kyro-shadow-";

/// Removes the shadow-session directories of hosts that are no longer running (a host that was
/// killed never dropped its sessions). Returns how many it removed. Linux only: elsewhere a
/// process's liveness is not checked and nothing is removed.
pub(crate) fn remove_orphaned_shadow_dirs() -> usize {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return 0 };
    let mut n_removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(SHADOW_DIR_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = !cfg!(target_os = "linux")
            || std::path::Path::new("/proc").join(pid.to_string()).exists();
        if !alive && std::fs::remove_dir_all(entry.path()).is_ok() {
            n_removed += 1;
        }
    }
    n_removed
}

fn overloaded(n_alive: usize) -> RuntimeError {
    RuntimeError::new(
        RuntimeErrorKind::Overloaded,
        format!(
            "{n_alive} shadow sessions are alive, the configured maximum; retry after one expires"
        ),
    )
}

fn failed(what: &str, err: &dyn std::fmt::Display) -> RuntimeError {
    tracing::error!(error = %err, "shadow session {what} failed");
    RuntimeError::new(
        RuntimeErrorKind::PersistenceFailed(super::evidence::Evidence::PlannerState),
        format!("the shadow session's state could not be {what}"),
    )
}

impl Runtime {
    /// Drops every expired shadow session (its private state goes with it).
    pub(crate) fn expire_shadow_sessions(&self) {
        let now = now_ms();
        if let Ok(mut shadows) = self.shadows.lock() {
            shadows.retain(|_, session| session.expires_at_ms.is_none_or(|expires| expires > now));
        }
    }

    /// How many shadow sessions are alive.
    pub(crate) fn n_shadow_sessions(&self) -> usize {
        self.shadows.lock().map(|shadows| shadows.len()).unwrap_or(0)
    }

    /// Starts a shadow session seeded from `primer`: its own ledger, traces, feedback and
    /// capture in a private SQLite file, its own reuse cache, the live stores for reads.
    /// Returns the session id and when it expires (Unix milliseconds).
    ///
    /// # Errors
    ///
    /// `Overloaded` when the configured number of sessions is alive, or a persistence failure
    /// when its state could not be created.
    pub(crate) async fn create_shadow_session(
        &self,
        primer: &Primer,
        allow_mutations: bool,
    ) -> RuntimeResult<(String, i64)> {
        self.expire_shadow_sessions();
        let n_alive = self.shadows.lock().map(|shadows| shadows.len()).unwrap_or(usize::MAX);
        if n_alive >= self.config.max_shadow_sessions {
            return Err(overloaded(n_alive));
        }
        let id = format!("sh_{}", uuid::Uuid::new_v4().simple());
        let directory =
            std::env::temp_dir().join(format!("{SHADOW_DIR_PREFIX}{}-{id}", std::process::id()));
        std::fs::create_dir_all(&directory).map_err(|err| failed("created", &err))?;
        let state = match open_seeded(&directory, primer).await {
            Ok(state) => state,
            Err(err) => {
                let _ = std::fs::remove_dir_all(&directory);
                return Err(err);
            }
        };
        let generation = match state.current_generation().await {
            Ok(generation) => generation,
            Err(err) => {
                let _ = std::fs::remove_dir_all(&directory);
                return Err(failed("read", &err));
            }
        };
        let expires_at_ms = now_ms().saturating_add(
            i64::try_from(self.config.shadow_session_ttl.as_millis()).unwrap_or(i64::MAX),
        );
        let mut session =
            Session::new(Arc::new(state), self.config.reuse_cache_entries, true, generation);
        session.id = Some(id.clone());
        session.allow_mutations = allow_mutations;
        session.expires_at_ms = Some(expires_at_ms);
        session.directory = Some(directory);
        // Another request may have filled the last slot while this one opened its state; the
        // bound is enforced where the session is inserted (dropping the session removes its files).
        let mut shadows = self.shadows.lock().map_err(|_| overloaded(usize::MAX))?;
        if shadows.len() >= self.config.max_shadow_sessions {
            return Err(overloaded(shadows.len()));
        }
        shadows.insert(id.clone(), Arc::new(session));
        Ok((id, expires_at_ms))
    }
}

/// Opens a new state store in `directory` and seeds it from `primer`.
async fn open_seeded(directory: &std::path::Path, primer: &Primer) -> RuntimeResult<StateStore> {
    let url = format!("sqlite://{}", directory.join("state.db").display());
    // sqlx's migrator future is not `Send` (a higher-ranked lifetime), so the open runs to
    // completion on a blocking thread of its own instead of inside the caller's future.
    let handle = tokio::runtime::Handle::current();
    let primer = primer.clone();
    let opened = tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            let state = StateStore::open(&url).await?;
            state.seed(&primer).await?;
            Ok::<_, kyro_state::StateError>(state)
        })
    })
    .await
    .map_err(|err| failed("opened", &err))?;
    opened.map_err(|err| failed("seeded", &err))
}
