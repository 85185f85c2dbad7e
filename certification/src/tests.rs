//! Unit tests of the harness's pure parts: report rendering, dates, secrets and their parts,
//! the oracle's filter semantics, the generator's determinism, scope names.

use std::time::{Duration, UNIX_EPOCH};

use crate::report::rfc3339;
use crate::secrets::SecretSet;

#[test]
fn rfc3339_formats_utc_dates() {
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_651_199)), "2026-11-25T23:59:59Z");
}

#[test]
fn every_part_of_a_url_secret_is_scrubbed() {
    let config = serde_json::json!({
        "dsn": { "value": "postgres://kyro:p%40ss%2Fw0rd@db.internal:5432/kyro" },
        "nested": [{ "token": { "value": "tok-123456" } }],
        "not_a_secret": { "value": 5 },
    });
    let secrets = SecretSet::from_config(&config);
    let text = "dsn postgres://kyro:p%40ss%2Fw0rd@db.internal:5432/kyro, password p%40ss%2Fw0rd, \
                decoded p@ss/w0rd, token tok-123456, user kyro, host db.internal";
    assert_eq!(
        secrets.scrub(text),
        "dsn ***, password ***, decoded ***, token ***, user kyro, host db.internal"
    );
    assert!(secrets.found_in("it said p@ss/w0rd"));
    assert!(!secrets.found_in("nothing here"));
}

#[test]
fn a_short_password_is_searched_for_only_within_the_whole_value() {
    let mut secrets = SecretSet::default();
    secrets.add_secret("postgres://kyro:kyro@h/db");
    assert_eq!(
        secrets.scrub("table kyro_it, dsn postgres://kyro:kyro@h/db"),
        "table kyro_it, dsn ***"
    );
}
