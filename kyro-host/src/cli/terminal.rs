//! Output fit for both a terminal and a log: colours and in-place progress lines only when
//! standard error is a terminal (and `NO_COLOR` is unset), plain lines otherwise.
//!
//! What it deliberately does not do: decide what a command prints. Commands write their results to
//! standard output; this module only decorates standard error while something long runs.

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Whether standard error is a terminal a person watches.
pub(crate) fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Whether log lines on standard error may carry ANSI colours: only on a terminal, and not when
/// `NO_COLOR` is set (<https://no-color.org>).
pub(crate) fn stderr_colors() -> bool {
    stderr_is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// A progress line on standard error: rewritten in place on a terminal; on anything else one line
/// when it starts and one when it ends, so a log holds no carriage returns or escape codes.
pub(crate) struct Progress {
    terminal: bool,
    label: String,
    started: Instant,
}

impl Progress {
    /// Starts a progress line for `label` (`certifying the store`).
    pub(crate) fn start(label: &str) -> Self {
        let progress = Self {
            terminal: stderr_is_terminal(),
            label: label.to_owned(),
            started: Instant::now(),
        };
        if progress.terminal {
            progress.write(&format!("\r\x1b[2K{label}..."));
        } else {
            progress.write(&format!("{label}...\n"));
        }
        progress
    }

    /// Updates the line with `detail` (on a terminal only).
    pub(crate) fn update(&self, detail: &str) {
        if self.terminal {
            let elapsed = self.started.elapsed().as_secs();
            let detail = if detail.is_empty() { String::new() } else { format!("{detail} ") };
            self.write(&format!("\r\x1b[2K{}... {detail}({elapsed}s)", self.label));
        }
    }

    /// Ends the line with `outcome` (`done`, `refused`).
    pub(crate) fn finish(self, outcome: &str) {
        let elapsed = self.started.elapsed().as_secs_f64();
        if self.terminal {
            self.write(&format!("\r\x1b[2K{}... {outcome} ({elapsed:.1}s)\n", self.label));
        } else {
            self.write(&format!("{}: {outcome} ({elapsed:.1}s)\n", self.label));
        }
    }

    fn write(&self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(text.as_bytes());
        let _ = stderr.flush();
    }
}
