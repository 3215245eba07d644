//! Dates and times, UTC, proleptic Gregorian: the one place where Unix seconds become
//! dates and back (a TLS report's date range, the store's report periods, the `Date` of
//! the mail this program writes, the CLI's `--since`, a batch case's `arrival`). No time
//! zone database: reports and the store work in UTC. The store re-exports it as
//! `dmarc_store::time`.

/// Seconds since the Unix epoch, now (0 for a clock set before 1970).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `YYYY-MM-DD HH:MM:SS` for Unix seconds, UTC: how report periods and timestamps are
/// shown everywhere.
pub fn format_utc(ts: i64) -> String {
    let (y, m, d) = civil_from_days(ts.div_euclid(86_400));
    let secs = ts.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// An RFC 5322 date-time (`Wed, 02 Dec 2026 03:04:05 +0000`) for Unix seconds, UTC: the
/// `Date` field of the messages this program writes.
pub fn format_rfc5322(ts: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = ts.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let secs = ts.rem_euclid(86_400);
    let weekday = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month = MONTHS[usize::try_from(m - 1).unwrap_or(0).min(11)];
    format!(
        "{weekday}, {d:02} {month} {y:04} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str, what: &str, whole: &str) -> Result<i64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{whole:?}: the {what} {s:?} is not a number"));
    }
    s.parse()
        .map_err(|_| format!("{whole:?}: the {what} {s:?} is out of range"))
}

/// `YYYY-MM-DD` -> Unix time of its midnight, UTC.
pub fn parse_date(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a date of the form YYYY-MM-DD");
    let mut it = s.trim().splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let y = digits(y, "year", s)?;
    let m = digits(m, "month", s)?;
    let d = digits(d, "day", s)?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(format!("{s:?}: month {m} does not exist")),
    };
    if d < 1 || d > days_in_month {
        return Err(format!("{s:?}: day {d} does not exist in that month"));
    }
    Ok(days_from_civil(y, m, d) * 86_400)
}

/// An RFC 3339 date-time (`2026-12-02T03:04:05Z`, `...+01:00`, fractions of a second
/// allowed and dropped; `t`/`z` and a space for `T` accepted, as RFC 3339 §5.6 permits)
/// -> Unix seconds.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let bad = |why: &str| format!("{s:?} is not an RFC 3339 time ({why})");
    let (date, rest) = match t.find(['T', 't', ' ']) {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => return Err(bad("no 'T' between the date and the time")),
    };
    let midnight = parse_date(date)?;
    // The zone: Z, or +hh:mm / -hh:mm.
    let (clock, offset) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (c, z) = (&rest[..i], &rest[i..]);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let Some((hh, mm)) = z[1..].split_once(':') else {
            return Err(bad("the offset is not +hh:mm or -hh:mm"));
        };
        if hh.len() != 2 || mm.len() != 2 {
            return Err(bad("the offset is not +hh:mm or -hh:mm"));
        }
        let (hh, mm) = (
            digits(hh, "offset hour", s)?,
            digits(mm, "offset minute", s)?,
        );
        if hh > 23 || mm > 59 {
            return Err(bad("the offset is out of range"));
        }
        (c, sign * (hh * 3600 + mm * 60))
    } else {
        return Err(bad("no time zone: end with Z or an offset such as +01:00"));
    };
    let clock = clock.split_once('.').map_or(clock, |(whole, frac)| {
        if !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()) {
            whole
        } else {
            clock
        }
    });
    let mut parts = clock.split(':');
    let (Some(h), Some(m), Some(sec), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("the time is not hh:mm:ss"));
    };
    if h.len() != 2 || m.len() != 2 || sec.len() != 2 {
        return Err(bad("the time is not hh:mm:ss"));
    }
    let (h, m, sec) = (
        digits(h, "hour", s)?,
        digits(m, "minute", s)?,
        digits(sec, "second", s)?,
    );
    // 60 is a leap second (RFC 3339 §5.7); Unix time folds it into the next second.
    if h > 23 || m > 59 || sec > 60 {
        return Err(bad("the time is out of range"));
    }
    Ok(midnight + h * 3600 + m * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2026-12-02T03:04:05Z"), Ok(1_796_180_645));
        assert_eq!(
            parse_rfc3339("2026-12-02T04:04:05.123+01:00"),
            Ok(1_796_180_645)
        );
        assert_eq!(
            parse_rfc3339("2026-12-01 22:04:05-05:00"),
            Ok(1_796_180_645)
        );
        assert_eq!(format_utc(1_796_180_645), "2026-12-02 03:04:05");
        assert_eq!(
            format_rfc5322(1_796_180_645),
            "Wed, 02 Dec 2026 03:04:05 +0000"
        );
        assert_eq!(format_rfc5322(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        for bad in [
            "2026-12-02",
            "2026-12-02T03:04:05",
            "2026-13-02T03:04:05Z",
            "2026-02-30T03:04:05Z",
            "2026-12-02T24:00:00Z",
            "2026-12-02T03:04Z",
            "2026-12-02T03:04:05+0100",
            "2026-12-02T03:04:05.Z",
            "yesterday",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc3339_of_tls_reports() {
        // The date-range of RFC 8460's example report.
        assert_eq!(parse_rfc3339("2016-04-01T00:00:00Z"), Ok(1_459_468_800));
        assert_eq!(
            parse_rfc3339("2016-04-01T02:00:00+02:00"),
            Ok(1_459_468_800)
        );
        assert_eq!(parse_rfc3339("2016-04-01T00:00:00.123Z"), Ok(1_459_468_800));
        assert!(parse_rfc3339("2016-04-01").is_err());
        assert!(parse_rfc3339("2016-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("2024-03-01"), Ok(1_709_251_200));
        assert_eq!(parse_date("2000-02-29"), Ok(951_782_400));
        assert!(parse_date("2001-02-29").is_err());
        assert!(parse_date("2024-13-01").is_err());
        assert!(parse_date("2024-3-1").is_err());
        assert!(parse_date("yesterday").is_err());
        assert_eq!(format_utc(1_709_251_200), "2024-03-01 00:00:00");
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(1_459_468_800), "2016-04-01 00:00:00");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00");
    }

    #[test]
    fn days_round_trip() {
        for days in [-800_000, -1, 0, 1, 11_016, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
