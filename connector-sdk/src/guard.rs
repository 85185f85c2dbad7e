//! Bounding and isolating connector calls: a timeout on every call, and quarantine for a
//! connector that panicked or timed out.
//!
//! A call cannot be cancelled once a connector's code is running, so each call runs on one of the
//! guard's own worker threads while the caller waits with a deadline. A timed-out call keeps its
//! worker; the connector is quarantined, so no further call reaches it and the host keeps serving
//! everything else. Panics in in-process connectors are caught here too; loaded plugins already
//! return theirs as errors.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::abi::panic_error;
use crate::connector::{Connector, ConnectorHealth, SearchRequest, SearchResponse};
use crate::manifest::CapabilityManifest;
use crate::{
    ConnectorError, Document, DocumentId, ErrorKind, MutationAck, Result, Scope, SnapshotVersion,
    StoredDocument, Watermark,
};

/// How calls are bounded.
#[derive(Debug, Clone, Copy)]
pub struct GuardConfig {
    /// The longest one call may take, queueing included.
    pub call_timeout: Duration,
    /// How many calls may run at once.
    pub workers: usize,
}

type Job = Box<dyn FnOnce(&dyn Connector) + Send>;

/// A connector behind a timeout and a quarantine switch; itself a [`Connector`].
pub struct GuardedConnector {
    name: String,
    manifest: CapabilityManifest,
    call_timeout: Duration,
    jobs: Mutex<Option<Sender<Job>>>,
    quarantine: Arc<OnceLock<String>>,
}

impl GuardedConnector {
    /// Wraps `connector`, starting `config.workers` worker threads named after `name`.
    ///
    /// # Errors
    ///
    /// `Internal` when the OS refuses to start a thread.
    pub fn new(name: &str, connector: Arc<dyn Connector>, config: GuardConfig) -> Result<Self> {
        let manifest = connector.describe();
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for worker_idx in 0..config.workers.max(1) {
            let receiver = Arc::clone(&receiver);
            let connector = Arc::clone(&connector);
            std::thread::Builder::new()
                .name(format!("kyro-connector-{name}-{worker_idx}"))
                .spawn(move || work(&receiver, connector.as_ref()))
                .map_err(|err| {
                    ConnectorError::internal(format!("failed to start connector worker: {err}"))
                })?;
        }
        Ok(Self {
            name: name.to_owned(),
            manifest,
            call_timeout: config.call_timeout,
            jobs: Mutex::new(Some(sender)),
            quarantine: Arc::new(OnceLock::new()),
        })
    }

    /// The name given at construction.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Why the connector was quarantined, if it was.
    pub fn quarantine_reason(&self) -> Option<&str> {
        self.quarantine.get().map(String::as_str)
    }

    /// Quarantines the connector: every later call fails with `Quarantined` without reaching it.
    /// The first reason sticks.
    pub fn quarantine(&self, reason: impl Into<String>) {
        let _ = self.quarantine.set(reason.into());
    }

    /// Runs `call` on a worker and waits at most the call timeout. A panic or timeout quarantines
    /// the connector.
    ///
    /// # Errors
    ///
    /// `Quarantined` without running when already quarantined; `Timeout`; `Panicked`; whatever
    /// the connector answered.
    pub fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        call: impl FnOnce(&dyn Connector) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(call, move |result| {
            let _ = reply.send(result);
        })?;
        let result = match answer.recv_timeout(self.call_timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(ConnectorError::new(
                ErrorKind::Timeout,
                format!(
                    "connector {} did not answer {operation} within {:?}",
                    self.name, self.call_timeout
                ),
            )),
            Err(RecvTimeoutError::Disconnected) => Err(ConnectorError::internal(format!(
                "connector {} worker stopped during {operation}",
                self.name
            ))),
        };
        self.observe(operation, result)
    }

    /// Queues `call` on a worker; `reply` receives its result (panics already turned into errors).
    /// For callers with their own way to wait, such as an async host; they pass the result through
    /// [`GuardedConnector::observe`] afterwards.
    ///
    /// # Errors
    ///
    /// `Quarantined` when the connector is quarantined or the guard was shut down.
    pub fn submit<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn Connector) -> Result<T> + Send + 'static,
        reply: impl FnOnce(Result<T>) + Send + 'static,
    ) -> Result<()> {
        if let Some(reason) = self.quarantine.get() {
            return Err(self.quarantined_error(reason));
        }
        let job: Job = Box::new(move |connector: &dyn Connector| {
            let result = catch_unwind(AssertUnwindSafe(|| call(connector)))
                .unwrap_or_else(|payload| Err(panic_error(payload.as_ref())));
            reply(result);
        });
        let jobs = self
            .jobs
            .lock()
            .map_err(|_| ConnectorError::internal("connector job queue lock poisoned"))?;
        match jobs.as_ref() {
            Some(sender) => {
                sender.send(job).map_err(|_| self.quarantined_error("its workers stopped"))
            }
            None => Err(self.quarantined_error("it was shut down")),
        }
    }

    /// Applies the quarantine rule to a finished call's result: a panic or a timeout quarantines.
    ///
    /// # Errors
    ///
    /// Returns `result` unchanged.
    pub fn observe<T>(&self, operation: &'static str, result: Result<T>) -> Result<T> {
        if let Err(err) = &result
            && matches!(err.kind(), ErrorKind::Panicked | ErrorKind::Timeout)
        {
            self.quarantine(format!("{} during {operation}: {}", err.kind(), err.message()));
        }
        result
    }

    fn quarantined_error(&self, reason: &str) -> ConnectorError {
        ConnectorError::new(
            ErrorKind::Quarantined,
            format!("connector {} is quarantined: {reason}", self.name),
        )
    }
}

impl Drop for GuardedConnector {
    fn drop(&mut self) {
        // Dropping the sender lets idle workers exit; a worker stuck in a hung call stays.
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
    }
}

fn work(receiver: &Mutex<Receiver<Job>>, connector: &dyn Connector) {
    loop {
        let job = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(connector),
            Err(_) => return,
        }
    }
}

impl Connector for GuardedConnector {
    fn describe(&self) -> CapabilityManifest {
        self.manifest.clone()
    }

    fn search(&self, scope: &Scope, request: &SearchRequest) -> Result<SearchResponse> {
        let (scope, request) = (scope.clone(), request.clone());
        self.run("search", move |connector| connector.search(&scope, &request))
    }

    fn fetch(&self, scope: &Scope, ids: &[DocumentId]) -> Result<Vec<StoredDocument>> {
        let (scope, ids) = (scope.clone(), ids.to_vec());
        self.run("fetch", move |connector| connector.fetch(&scope, &ids))
    }

    fn upsert(&self, scope: &Scope, document: &Document) -> Result<MutationAck> {
        let (scope, document) = (scope.clone(), document.clone());
        self.run("upsert", move |connector| connector.upsert(&scope, &document))
    }

    fn delete(&self, scope: &Scope, id: &DocumentId) -> Result<MutationAck> {
        let (scope, id) = (scope.clone(), id.clone());
        self.run("delete", move |connector| connector.delete(&scope, &id))
    }

    fn watermark(&self, scope: &Scope) -> Result<Watermark> {
        let scope = scope.clone();
        self.run("watermark", move |connector| connector.watermark(&scope))
    }

    fn snapshot_version(&self, scope: &Scope) -> Result<SnapshotVersion> {
        let scope = scope.clone();
        self.run("snapshot_version", move |connector| connector.snapshot_version(&scope))
    }

    fn health(&self) -> Result<ConnectorHealth> {
        self.run("health", |connector| connector.health())
    }

    fn certification_seed(&self, scope: &Scope, documents: &[Document]) -> Result<()> {
        let (scope, documents) = (scope.clone(), documents.to_vec());
        self.run("certification_seed", move |connector| {
            connector.certification_seed(&scope, &documents)
        })
    }

    fn certification_purge(&self, scope: &Scope) -> Result<()> {
        let scope = scope.clone();
        self.run("certification_purge", move |connector| connector.certification_purge(&scope))
    }
}
