//! The kinds of evidence the runtime keeps, whose health is tracked per session and whose
//! failures have codes of their own in the contract.

/// Which evidence a failed or successful operation concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Evidence {
    /// Retrieve traces.
    Trace,
    /// Feedback.
    Feedback,
    /// Replay capture.
    Capture,
    /// The freshness ledger.
    PlannerState,
}

impl Evidence {
    /// Every kind, with its health-report name.
    pub(crate) const ALL: [(Self, &'static str); 4] = [
        (Self::Trace, "trace"),
        (Self::Feedback, "feedback"),
        (Self::Capture, "capture"),
        (Self::PlannerState, "planner_state"),
    ];

    pub(crate) fn slot(self) -> usize {
        self as usize
    }
}
