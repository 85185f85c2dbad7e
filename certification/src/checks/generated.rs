//! The generated program's checks: `abi.generated_requests_answered` runs the program (see
//! `conformance`), and each property check after it reports what the program found for its
//! property, with the shrunk witness, or marks its failure as following from the property that
//! broke first in the same answer.

use super::{CheckResult, Run};
use crate::conformance::{Property, Violation, Writes};
use crate::report::{CheckStatus, Witness};

/// Runs the generated program and reports whether every request was answered.
pub(super) fn answered(run: &mut Run<'_>) -> CheckResult {
    let Some(mut generated) = run.generated.take() else {
        return Err(CheckStatus::Error { reason: "the generated data was not seeded".to_owned() });
    };
    let writes = Writes::for_manifest(&run.manifest);
    let outcome = generated.run(run, writes);
    run.generated = Some(generated);
    run.outcome = Some(outcome);
    property(run, Property::Answered)
}

fn witness(violation: &Violation) -> Witness {
    let mut witness = Witness::new(
        violation.sent.clone(),
        violation.received.clone(),
        violation.expected.clone(),
    );
    witness.shrunk_from.clone_from(&violation.shrunk_from);
    witness
}

/// Reports one property from the program's outcome.
fn property(run: &mut Run<'_>, property: Property) -> CheckResult {
    let Some(outcome) = &run.outcome else {
        run.follows_from = Some(Property::Answered.check_id());
        return Err(CheckStatus::Error { reason: "the generated program did not run".to_owned() });
    };
    let result = outcome.properties.get(&property).cloned().unwrap_or_default();
    if let Some(root) = &result.root {
        let mut witness = witness(root);
        if result.n_root > 1 {
            witness.received =
                format!("{} ({} more answers broke this too)", witness.received, result.n_root - 1);
        }
        return Err(CheckStatus::Failed { witness });
    }
    if let Some((violation, root)) = &result.follows {
        run.follows_from = Some(root.check_id());
        return Err(CheckStatus::Failed { witness: witness(violation) });
    }
    if let Some(stopped) = &outcome.stopped {
        if property != Property::Answered
            && outcome
                .properties
                .get(&Property::Answered)
                .is_some_and(|answered| answered.root.is_some())
        {
            run.follows_from = Some(Property::Answered.check_id());
        }
        return Err(CheckStatus::Error {
            reason: format!(
                "the generated program stopped after {} of {} steps: {stopped}",
                outcome.n_steps, outcome.n_planned
            ),
        });
    }
    Ok(())
}

pub(super) fn search_confined(run: &mut Run<'_>) -> CheckResult {
    property(run, Property::SearchConfined)
}

pub(super) fn fetch_confined(run: &mut Run<'_>) -> CheckResult {
    property(run, Property::FetchConfined)
}

pub(super) fn labels_honest(run: &mut Run<'_>) -> CheckResult {
    property(run, Property::LabelsHonest)
}

pub(super) fn mutations_confined(run: &mut Run<'_>) -> CheckResult {
    property(run, Property::MutationsConfined)
}

pub(super) fn fresh(run: &mut Run<'_>) -> CheckResult {
    property(run, Property::Fresh)
}

pub(super) fn ack_matches(run: &mut Run<'_>) -> CheckResult {
    property(run, Property::AckMatches)
}

pub(super) fn ack_watermark(run: &mut Run<'_>) -> CheckResult {
    property(run, Property::AckWatermark)
}

pub(super) fn filter_exact(run: &mut Run<'_>) -> CheckResult {
    property(run, Property::FilterExact)
}

pub(super) fn no_duplicates(run: &mut Run<'_>) -> CheckResult {
    property(run, Property::NoDuplicates)
}

pub(super) fn fetch_complete(run: &mut Run<'_>) -> CheckResult {
    property(run, Property::FetchComplete)
}

pub(super) fn sorted(run: &mut Run<'_>) -> CheckResult {
    property(run, Property::Sorted)
}

pub(super) fn result_size(run: &mut Run<'_>) -> CheckResult {
    property(run, Property::ResultSize)
}
