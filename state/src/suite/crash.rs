//! Durability: a process killed mid-stream loses no acknowledged change.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use super::{event_change, open};
use crate::ApplyOutcome;

/// Set in the environment of a re-executed test binary: the URL the crash child writes to.
pub(crate) const CRASH_CHILD_URL_VAR: &str = "KYRO_STATE_CRASH_CHILD_URL";

/// How many acknowledgements the crash test reads before it kills the child.
const CRASH_ACKS_BEFORE_KILL: usize = 200;

/// The prefix of the child's acknowledgement lines: `KYRO_ACK <event_idx> <generation>`.
const ACK_PREFIX: &str = "KYRO_ACK ";

/// The child half of [`acknowledged_changes_survive_kill`]: when the crash variable is set,
/// applies events until it is killed, printing each acknowledgement. Otherwise (a normal test
/// run) it does nothing.
pub async fn crash_child_main() {
    let Ok(url) = std::env::var(CRASH_CHILD_URL_VAR) else {
        return;
    };
    let store = open(&url).await;
    let mut stdout = std::io::stdout().lock();
    for event_idx in 0..1_000_000_u64 {
        let change = event_change(&format!("crash-{event_idx}"), "fp", &["all", "tenant:acme"]);
        let outcome = store.apply_change(&change).await.expect("child apply");
        // Flushed per line, so the parent reads every acknowledgement that `apply_change`
        // returned before the kill.
        writeln!(stdout, "{ACK_PREFIX}{event_idx} {}", outcome.generation()).expect("write ack");
        stdout.flush().expect("flush ack");
    }
}

/// Re-executes this test binary running only `child_test` (which must call
/// [`crash_child_main`]), reads its acknowledgements, SIGKILLs it mid-stream, and checks that
/// the reopened store kept every acknowledged change.
pub async fn acknowledged_changes_survive_kill(url: &str, child_test: &str) {
    let url_for_child = url.to_owned();
    let child_test = child_test.to_owned();
    let acks = tokio::task::spawn_blocking(move || {
        let current_exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(current_exe)
            .args([child_test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(CRASH_CHILD_URL_VAR, url_for_child)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the crash child");
        let stdout = child.stdout.take().expect("the child's stdout is piped");
        let mut acks: Vec<(u64, u64)> = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read the child's stdout");
            let Some(ack) = line.strip_prefix(ACK_PREFIX) else {
                continue;
            };
            let (event_idx, generation) = ack.split_once(' ').expect("ack has two fields");
            acks.push((
                event_idx.parse().expect("event index"),
                generation.parse().expect("generation"),
            ));
            if acks.len() == CRASH_ACKS_BEFORE_KILL {
                break;
            }
        }
        // SIGKILL on unix: no destructors, no pool shutdown, possibly mid-transaction.
        child.kill().expect("kill the crash child");
        child.wait().expect("reap the crash child");
        acks
    })
    .await
    .expect("crash child driver");
    assert_eq!(
        acks.len(),
        CRASH_ACKS_BEFORE_KILL,
        "the crash child stopped before acknowledging {CRASH_ACKS_BEFORE_KILL} changes (see its stderr above)"
    );

    let store = open(url).await;
    let &(_, last_acknowledged) = acks.last().expect("at least one ack");
    let current_generation = store.current_generation().await.expect("current generation");
    assert!(
        current_generation >= last_acknowledged,
        "generation went backwards: {current_generation} < acknowledged {last_acknowledged}"
    );
    for (event_idx, generation) in acks {
        let change = event_change(&format!("crash-{event_idx}"), "fp", &["all", "tenant:acme"]);
        assert_eq!(
            store.apply_change(&change).await.expect("replay"),
            ApplyOutcome::Replayed { generation },
            "acknowledged event crash-{event_idx} was lost"
        );
    }
    assert_eq!(store.current_generation().await.expect("current generation"), current_generation);
    store.close().await;
}
