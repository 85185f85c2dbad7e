//! `kyro serve`: load and validate the configuration, open the state store, certify and register
//! every store, then serve until SIGTERM or ctrl-c.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use kyro_core::planner::ReuseCache;

use crate::config::ValidatedConfig;
use crate::runtime::Runtime;
use crate::state::StateStore;
use crate::stores::register_all;

/// Builds the runtime from a configuration file: validation first, then IO.
///
/// # Errors
///
/// An invalid configuration (naming the key), an unreachable state store, or, in production
/// mode, any store that was refused.
pub async fn build_runtime(config_path: &Path) -> anyhow::Result<Arc<Runtime>> {
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
    let cache = Mutex::new(ReuseCache::new(config.reuse_cache_entries));
    Ok(Arc::new(Runtime {
        config,
        stores: registration.stores,
        refused: registration.refused,
        traces: crate::runtime::trace_writer(Arc::clone(&state)),
        changes: crate::runtime::change_writer(Arc::clone(&state)),
        state,
        cache,
        state_unhealthy: AtomicBool::new(false),
    }))
}

/// Serves `runtime` on its configured address until SIGTERM or ctrl-c.
///
/// # Errors
///
/// The address cannot be bound.
pub async fn serve(runtime: Arc<Runtime>) -> anyhow::Result<()> {
    let listener = bind(&runtime).await?;
    serve_on(listener, runtime).await
}

/// Binds the configured listen address, so a caller can announce it before serving.
///
/// # Errors
///
/// The address cannot be bound.
pub async fn bind(runtime: &Runtime) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(runtime.config.listen)
        .await
        .with_context(|| format!("failed to listen on {}", runtime.config.listen))
}

/// Serves `runtime` on an already bound listener until SIGTERM or ctrl-c.
///
/// # Errors
///
/// The server failed.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    runtime: Arc<Runtime>,
) -> anyhow::Result<()> {
    let address = listener.local_addr().context("failed to read the bound address")?;
    tracing::info!(%address, "kyro serving");
    let _ = writeln!(std::io::stderr().lock(), "kyro listening on http://{address}");
    let retention = Arc::clone(&runtime);
    let pruner = tokio::spawn(async move { prune_traces_forever(&retention).await });
    let app = crate::server::router(runtime);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server failed")?;
    pruner.abort();
    tracing::info!("kyro stopped");
    Ok(())
}

async fn prune_traces_forever(runtime: &Runtime) {
    let retention_ms =
        i64::try_from(runtime.config.trace_retention.as_millis()).unwrap_or(i64::MAX);
    loop {
        let cutoff = crate::runtime::now_ms().saturating_sub(retention_ms);
        match runtime.state.prune_traces(cutoff).await {
            Ok(n_pruned) if n_pruned > 0 => {
                tracing::info!(n_pruned, "pruned traces past retention")
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "trace retention pass failed"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(600)).await;
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
