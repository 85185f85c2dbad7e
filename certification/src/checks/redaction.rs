//! `redaction.*`: no part of a secret appears in anything the connector produced during the run,
//! and canary credentials placed in its configuration never come back out.
//!
//! Every part is searched for (see `secrets`), so a message that quotes only the password, or
//! only its percent-encoded form, is caught as surely as one that quotes the whole DSN. What
//! was found is shown scrubbed (`***`), so the witness says where without repeating the secret.

use kyro_connector_sdk::{Connector, Embedding, FilterKey, RuntimeFilter, SearchRequest};

use super::{CheckResult, Run, abbreviate, exact, fail, to_ids};
use crate::report::CheckStatus;
use crate::space::unit_vector;

pub(super) fn canary(run: &mut Run<'_>) -> CheckResult {
    if run.canaries.is_empty() {
        return Err(CheckStatus::NotApplicable {
            reason: "the configuration holds no secret in the SDK's SecretSource shape".to_owned(),
        });
    }
    for canary in run.canaries.clone() {
        let log_mark = run.subject.log_lines.lock().map_or(0, |lines| lines.len());
        let mut observed = Vec::new();
        match (run.subject.open_canary)(&canary.config) {
            Err(err) => observed.push(("opening it".to_owned(), format!("{err} / {err:?}"))),
            Ok(connector) => provoke(run, connector.as_ref(), &mut observed),
        }
        if let Ok(lines) = run.subject.log_lines.lock() {
            observed.extend(
                lines.iter().skip(log_mark).map(|line| ("a log line".to_owned(), line.clone())),
            );
        }
        for (place, text) in &observed {
            if canary.parts.found_in(text) {
                return Err(fail(
                    format!(
                        "open the connector with a {} in its configuration, then provoke errors",
                        canary.label
                    ),
                    format!(
                        "a canary part appeared in {place}: {}",
                        abbreviate(&canary.parts.scrub(text))
                    ),
                    "no part of the canary anywhere",
                ));
            }
        }
    }
    Ok(())
}

/// The calls a connector is most likely to decorate with its configuration: wrong dimensions,
/// undeclared keys, missing ids, large `top_k`, health.
fn provoke(run: &Run<'_>, connector: &dyn Connector, observed: &mut Vec<(String, String)>) {
    let home = run.space.home.clone();
    let dimension = run.manifest.vector.map_or(8, |vector| vector.dimension as usize);
    let mut record =
        |place: &str, text: String| observed.push((format!("the answer to {place}"), text));
    if let Ok(embedding) = Embedding::new(unit_vector(dimension + 1, 9)) {
        let request = SearchRequest { embedding, top_k: 1, filter: None, include_content: false };
        record(
            "a search of the wrong dimension",
            format!("{:?}", connector.search(&home, &request)),
        );
    }
    if let Ok(key) = FilterKey::new("kyro_cert_undeclared_key")
        && let Ok(filter) = exact(&key, "x").and_then(|filter| {
            RuntimeFilter::new(filter).map_err(|err| CheckStatus::Error { reason: err.to_string() })
        })
        && let Ok(embedding) = Embedding::new(unit_vector(dimension, 9))
    {
        let request =
            SearchRequest { embedding, top_k: 1, filter: Some(filter), include_content: false };
        record("a search on an undeclared key", format!("{:?}", connector.search(&home, &request)));
    }
    if let Ok(embedding) = Embedding::new(unit_vector(dimension, 10)) {
        let request = SearchRequest {
            embedding,
            top_k: run.manifest.caps.max_top_k,
            filter: None,
            include_content: true,
        };
        record("a search at the top_k cap", format!("{:?}", connector.search(&home, &request)));
    }
    record("health", format!("{:?}", connector.health()));
    record("describe", format!("{:?}", connector.describe()));
    record(
        "a fetch of ids that are not there",
        format!("{:?}", connector.fetch(&home, &to_ids(&["doc-1", "kyro-cert-missing"]))),
    );
}

pub(super) fn errors(run: &mut Run<'_>) -> CheckResult {
    let leaked = run.errors_seen.iter().find(|message| run.secrets.found_in(message)).cloned();
    match leaked {
        Some(message) => Err(fail(
            "every request of this run",
            format!(
                "a part of a secret appeared in an error: {}",
                abbreviate(&run.secrets.scrub(&message))
            ),
            "no part of any secret in any error or panic message",
        )),
        None if run.errors_seen.is_empty() => Err(CheckStatus::Error {
            reason: "the run produced no error message to inspect".to_owned(),
        }),
        None => Ok(()),
    }
}

pub(super) fn logs(run: &mut Run<'_>) -> CheckResult {
    let lines = run.subject.log_lines.lock().map(|lines| lines.clone()).unwrap_or_default();
    match lines.iter().find(|line| run.secrets.found_in(line)) {
        Some(line) => Err(fail(
            "every request of this run",
            format!(
                "a part of a secret appeared in a log line: {}",
                abbreviate(&run.secrets.scrub(line))
            ),
            "no part of any secret in any log line",
        )),
        None => Ok(()),
    }
}
