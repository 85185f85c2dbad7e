//! The certification harness; its engine arrives with the certification issue.
