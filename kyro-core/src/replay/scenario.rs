//! Counterfactual scenarios: interventions on a capture's steps (drop one, move one before or
//! after another), applied in order, and the scenario's stable key.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::SimStep;
use crate::planner::Fingerprinter;

/// A counterfactual change to a capture's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Intervention {
    /// Leave a step out.
    DropStep {
        /// The step.
        step_index: u64,
    },
    /// Run a step just before another.
    MoveStepBefore {
        /// The step to move.
        step_index: u64,
        /// The step it runs before.
        before_step_index: u64,
    },
    /// Run a step just after another.
    MoveStepAfter {
        /// The step to move.
        step_index: u64,
        /// The step it runs after.
        after_step_index: u64,
    },
}

/// Applies interventions, in order, to a sequence of steps.
///
/// # Errors
///
/// An intervention names a step that is not (or no longer) in the sequence, or moves a step
/// relative to itself.
pub fn intervene(
    mut steps: Vec<SimStep>,
    interventions: &[Intervention],
) -> Result<Vec<SimStep>, String> {
    let position = |steps: &[SimStep], index: u64| {
        steps
            .iter()
            .position(|step| step.step_index == index)
            .ok_or_else(|| format!("step {index} is not in the capture (or was already dropped)"))
    };
    for intervention in interventions {
        match *intervention {
            Intervention::DropStep { step_index } => {
                let at = position(&steps, step_index)?;
                steps.remove(at);
            }
            Intervention::MoveStepBefore { step_index, before_step_index: anchor }
            | Intervention::MoveStepAfter { step_index, after_step_index: anchor } => {
                if step_index == anchor {
                    return Err(format!("step {step_index} cannot move relative to itself"));
                }
                let step = steps.remove(position(&steps, step_index)?);
                let anchor_at = position(&steps, anchor)?;
                let at = if matches!(intervention, Intervention::MoveStepBefore { .. }) {
                    anchor_at
                } else {
                    anchor_at + 1
                };
                steps.insert(at, step);
            }
        }
    }
    Ok(steps)
}

/// How many distinct steps the interventions drop or move.
pub fn transformed_steps(interventions: &[Intervention]) -> usize {
    let moved: BTreeSet<u64> = interventions
        .iter()
        .map(|intervention| match *intervention {
            Intervention::DropStep { step_index }
            | Intervention::MoveStepBefore { step_index, .. }
            | Intervention::MoveStepAfter { step_index, .. } => step_index,
        })
        .collect();
    moved.len()
}

/// A stable key for a scenario: its name and interventions, fingerprinted, so reports can name
/// a scenario without quoting the caller's text.
pub fn scenario_key(name: &str, interventions: &[Intervention]) -> String {
    let mut fingerprinter = Fingerprinter::default();
    fingerprinter.field(name).number(interventions.len() as u64);
    for intervention in interventions {
        match *intervention {
            Intervention::DropStep { step_index } => {
                fingerprinter.field("drop_step").number(step_index);
            }
            Intervention::MoveStepBefore { step_index, before_step_index } => {
                fingerprinter
                    .field("move_step_before")
                    .number(step_index)
                    .number(before_step_index);
            }
            Intervention::MoveStepAfter { step_index, after_step_index } => {
                fingerprinter.field("move_step_after").number(step_index).number(after_step_index);
            }
        }
    }
    format!("counterfactual_scenario_{}", fingerprinter.finish())
}
