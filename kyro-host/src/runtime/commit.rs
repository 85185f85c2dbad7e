//! Group commit: items submitted while a batch is being committed share the next commit (one
//! transaction, one fsync), and each submitter waits for the commit that carries its own item.
//! Retrieve traces and ledger changes both go through one of these.

use std::sync::Arc;

use kyro_state::{ApplyOutcome, ChangeInput, StateStore, TraceRow};

type Reply<O> = tokio::sync::oneshot::Sender<Result<O, String>>;

/// One committing task and the queue in front of it.
pub(crate) struct GroupCommit<I, O> {
    sender: tokio::sync::mpsc::Sender<(I, Reply<O>)>,
}

/// The most items one commit carries.
const MAX_BATCH: usize = 512;

/// How many items may wait for a commit before submitters wait for room.
const QUEUE_DEPTH: usize = 4096;

impl<I: Send + 'static, O: Send + 'static> GroupCommit<I, O> {
    /// Starts the committing task on the current tokio runtime. `commit` makes a batch durable
    /// and returns each item's own outcome, in order, or fails the whole batch.
    pub(crate) fn spawn<F, Fut>(commit: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<Result<O, String>>, String>> + Send,
    {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<(I, Reply<O>)>(QUEUE_DEPTH);
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match receiver.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
                let (items, replies): (Vec<I>, Vec<Reply<O>>) = batch.into_iter().unzip();
                match commit(items).await {
                    Ok(outcomes) => {
                        for (reply, outcome) in replies.into_iter().zip(outcomes) {
                            let _ = reply.send(outcome);
                        }
                    }
                    Err(message) => {
                        for reply in replies {
                            let _ = reply.send(Err(message.clone()));
                        }
                    }
                }
            }
        });
        Self { sender }
    }

    /// Submits one item and waits until the commit that carries it is durable.
    ///
    /// # Errors
    ///
    /// The commit failed, the item was refused, or the committing task stopped.
    pub(crate) async fn submit(&self, item: I) -> Result<O, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.sender
            .send((item, reply))
            .await
            .map_err(|_| "the committing task stopped".to_owned())?;
        answer.await.map_err(|_| "the committing task stopped".to_owned())?
    }
}

/// Group-committed retrieve traces.
pub(crate) type TraceWriter = GroupCommit<TraceRow, ()>;

/// Group-committed ledger changes.
pub(crate) type ChangeWriter = GroupCommit<ChangeInput, ApplyOutcome>;

/// The trace writer over `state`.
pub(crate) fn trace_writer(state: Arc<StateStore>) -> TraceWriter {
    GroupCommit::spawn(move |rows: Vec<TraceRow>| {
        let state = Arc::clone(&state);
        async move {
            let outcomes = state.put_traces(&rows).await.map_err(|err| err.to_string())?;
            Ok(outcomes.into_iter().map(|outcome| outcome.map_err(|err| err.to_string())).collect())
        }
    })
}

/// The change writer over `state`.
pub(crate) fn change_writer(state: Arc<StateStore>) -> ChangeWriter {
    GroupCommit::spawn(move |changes: Vec<ChangeInput>| {
        let state = Arc::clone(&state);
        async move {
            let outcomes = state.apply_changes(&changes).await.map_err(|err| err.to_string())?;
            Ok(outcomes.into_iter().map(Ok).collect())
        }
    })
}

#[cfg(test)]
mod tests;
