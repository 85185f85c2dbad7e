//! Unit tests of the harness's pure parts: report rendering and dates.

use std::time::{Duration, UNIX_EPOCH};

use crate::report::{redact, rfc3339};

#[test]
fn rfc3339_formats_utc_dates() {
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_651_199)), "2026-11-25T23:59:59Z");
}

#[test]
fn redaction_replaces_every_secret() {
    let secrets = vec!["hunter2".to_owned(), String::new()];
    assert_eq!(redact("pw hunter2 and hunter2", &secrets), "pw *** and ***");
}
