//! The trace writer's group commit: concurrent traces all become durable, and one bad trace
//! fails alone.

use std::sync::Arc;

use super::trace_writer;
use kyro_state::{StateStore, TraceRow};

fn trace(trace_id: &str) -> TraceRow {
    TraceRow {
        trace_id: trace_id.to_owned(),
        tenant_id: "acme".to_owned(),
        created_at_ms: 1,
        body: "{}".to_owned(),
        capture: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_traces_are_all_durable_and_a_duplicate_fails_alone() {
    let dir = std::env::temp_dir().join(format!("kyro-trace-writer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = Arc::new(
        StateStore::open(&format!("sqlite://{}", dir.join("state.db").display())).await.unwrap(),
    );
    state.put_trace(&trace("taken")).await.unwrap();
    let writer = Arc::new(trace_writer(Arc::clone(&state)));
    let mut tasks = Vec::new();
    for idx in 0..64 {
        let writer = Arc::clone(&writer);
        tasks.push(tokio::spawn(async move { writer.submit(trace(&format!("t-{idx}"))).await }));
    }
    let duplicate = writer.submit(trace("taken")).await;
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert!(duplicate.is_err_and(|err| err.contains("taken")));
    assert_eq!(state.recent_traces(100).await.unwrap().len(), 65);
    std::fs::remove_dir_all(&dir).unwrap();
}
