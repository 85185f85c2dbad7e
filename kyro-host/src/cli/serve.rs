//! `kyro serve`: load and validate the configuration, open the state store, certify and register
//! every store, then serve until SIGTERM or ctrl-c.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;

use kyro_state::StateStore;

use crate::config::ValidatedConfig;
use crate::runtime::Runtime;
use crate::runtime::session::Session;
use crate::stores::register_all;

/// Builds the runtime from a configuration file: validation first, then IO.
///
/// # Errors
///
/// An invalid configuration (naming the key), an unreachable state store, or, in production
/// mode, any store that was refused.
pub(crate) async fn build_runtime(config_path: &Path) -> anyhow::Result<Arc<Runtime>> {
    let config = ValidatedConfig::load(config_path)?;
    let state = Arc::new(
        StateStore::open(&config.state_url).await.context("failed to open the state store")?,
    );
    let stores = config.stores.clone();
    let registration = tokio::task::spawn_blocking(move || register_all(&stores))
        .await
        .context("store registration stopped unexpectedly")?;
    let mut out = std::io::stderr().lock();
    for store in &registration.stores {
        let _ = writeln!(
            out,
            "store {:<16} certified   {} ({} checks passed, {} not applicable)",
            store.config.id,
            store.report.profile,
            store.report.summary.passed,
            store.report.summary.not_applicable
        );
        tracing::info!(store = %store.config.id, profile = %store.report.profile, "store certified and registered");
    }
    for store in &registration.refused {
        let _ = writeln!(out, "store {:<16} REFUSED     {}", store.id, store.reason);
        tracing::error!(store = %store.id, reason = %store.reason, "store refused; it will not serve");
    }
    if config.production && !registration.refused.is_empty() {
        let reasons: Vec<String> = registration
            .refused
            .iter()
            .map(|store| format!("{}: {}", store.id, store.reason))
            .collect();
        anyhow::bail!(
            "production mode refuses to start with uncertified stores: {}",
            reasons.join("; ")
        );
    }
    let generation =
        state.current_generation().await.context("failed to read the state's generation")?;
    state.bound_capture(config.capture_max_steps);
    let live =
        Session::new(state, config.reuse_cache_entries, config.capture_max_steps > 0, generation);
    Ok(Arc::new(Runtime {
        config,
        stores: registration.stores,
        refused: registration.refused,
        live: Arc::new(live),
        shadows: Mutex::new(HashMap::new()),
    }))
}

/// Serves `runtime` on its configured address until SIGTERM or ctrl-c.
///
/// # Errors
///
/// The address cannot be bound.
pub(crate) async fn serve(runtime: Arc<Runtime>) -> anyhow::Result<()> {
    let listener = bind(&runtime).await?;
    serve_on(listener, runtime).await
}

/// Binds the configured listen address, so a caller can announce it before serving.
///
/// # Errors
///
/// The address cannot be bound.
pub(crate) async fn bind(runtime: &Runtime) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(runtime.config.listen)
        .await
        .with_context(|| format!("failed to listen on {}", runtime.config.listen))
}

/// Serves `runtime` on an already bound listener until SIGTERM or ctrl-c.
///
/// # Errors
///
/// The server failed.
pub(crate) async fn serve_on(
    listener: tokio::net::TcpListener,
    runtime: Arc<Runtime>,
) -> anyhow::Result<()> {
    let address = listener.local_addr().context("failed to read the bound address")?;
    tracing::info!(%address, "kyro serving");
    let _ = writeln!(std::io::stderr().lock(), "kyro listening on http://{address}");
    let retention = Arc::clone(&runtime);
    let pruner = tokio::spawn(async move { prune_evidence_forever(&retention).await });
    let app = crate::http::router(runtime);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server failed")?;
    pruner.abort();
    tracing::info!("kyro stopped");
    Ok(())
}

/// Retention: every ten seconds deletes live evidence past its configured age (and capture
/// steps beyond the configured count, which the writers already keep as they write: see
/// `StateStore::bound_capture`), and drops expired shadow sessions; every ten minutes removes
/// the shadow-session state of stopped hosts.
async fn prune_evidence_forever(runtime: &Runtime) {
    let millis =
        |duration: std::time::Duration| i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    let config = &runtime.config;
    let mut ticks: u64 = 0;
    loop {
        if ticks.is_multiple_of(60) {
            let n_orphans = crate::runtime::shadow::remove_orphaned_shadow_dirs();
            if n_orphans > 0 {
                tracing::info!(n_orphans, "removed shadow-session state of stopped hosts");
            }
        }
        let now = crate::runtime::now_ms();
        let pruned = runtime
            .live
            .state
            .prune_evidence(
                now.saturating_sub(millis(config.trace_retention)),
                now.saturating_sub(millis(config.feedback_retention)),
                now.saturating_sub(millis(config.capture_retention)),
                config.capture_max_steps,
            )
            .await;
        match pruned {
            // `None`: another host sharing the state holds the pruner's lock and runs the pass.
            Ok(Some(pruned)) if pruned.traces + pruned.feedback + pruned.capture_steps > 0 => {
                tracing::info!(
                    traces = pruned.traces,
                    feedback = pruned.feedback,
                    capture_steps = pruned.capture_steps,
                    "retention pass done"
                );
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "retention pass failed"),
        }
        runtime.expire_shadow_sessions();
        ticks = ticks.wrapping_add(1);
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; draining requests");
}
