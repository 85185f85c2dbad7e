//! RFC 3339 formatting of instants given as milliseconds since the Unix epoch. Pure: callers
//! read the clock and pass the value in.

/// `(year, month, day)` of a day number counted from 1970-01-01 (Howard Hinnant's
/// civil-from-days, valid for the proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn parts(ms: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let (year, month, day) = civil_from_days(ms.div_euclid(86_400_000));
    let rem = ms.rem_euclid(86_400_000);
    (year, month, day, rem / 3_600_000, rem % 3_600_000 / 60_000, rem % 60_000 / 1000, rem % 1000)
}

/// `2026-11-26T10:04:40Z`: UTC, whole seconds.
pub fn rfc3339_seconds(ms: i64) -> String {
    let (year, month, day, hour, minute, second, _) = parts(ms);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// `2026-11-26T10:04:40.123Z`: UTC, milliseconds.
pub fn rfc3339_millis(ms: i64) -> String {
    let (year, month, day, hour, minute, second, millis) = parts(ms);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}
