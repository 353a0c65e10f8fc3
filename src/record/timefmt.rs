//! Timestamps (SPEC 2.4): accepted with or without an offset, stored and
//! served as `YYYY-MM-DD HH:MM:SS` in UTC.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};

/// The one format we store and serve.
pub const FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Parses a timestamp as clients and dumps write it and returns it in UTC,
/// formatted as [`FORMAT`]. A timestamp without offset is taken as UTC.
pub fn normalise(s: &str) -> Result<String, String> {
    parse(s).map(|t| t.format(FORMAT).to_string())
}

pub fn parse(s: &str) -> Result<DateTime<Utc>, String> {
    let bad = || {
        format!("{s:?} is not a timestamp (expected YYYY-MM-DD HH:MM:SS, optionally with an offset such as +0200 or Z)")
    };
    let t = s.trim();
    if t.len() < 19 || !t.is_char_boundary(19) {
        return Err(bad());
    }
    let (main, rest) = t.split_at(19);
    let main = main.replacen('T', " ", 1);
    let naive = NaiveDateTime::parse_from_str(&main, FORMAT).map_err(|_| bad())?;
    // Fractional seconds are tolerated and dropped.
    let rest = match rest.strip_prefix('.') {
        Some(r) => r.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    };
    let rest = rest.trim();
    let offset_secs = if rest.is_empty() || rest == "Z" || rest == "z" {
        0
    } else {
        parse_offset(rest).ok_or_else(bad)?
    };
    let offset = FixedOffset::east_opt(offset_secs).ok_or_else(bad)?;
    let local = offset
        .from_local_datetime(&naive)
        .single()
        .ok_or_else(bad)?;
    Ok(local.with_timezone(&Utc))
}

fn parse_offset(s: &str) -> Option<i32> {
    let (sign, digits) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// ISO 8601 with `Z`, as the project list serves `last_updated`.
pub fn iso_utc(stored: &str) -> String {
    match NaiveDateTime::parse_from_str(stored, FORMAT) {
        Ok(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => stored.to_string(),
    }
}

pub fn now() -> String {
    Utc::now().format(FORMAT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        for (input, want) in [
            ("2026-11-26 05:07:39", "2026-11-26 05:07:39"),
            ("2026-11-26 05:07:39+0000", "2026-11-26 05:07:39"),
            ("2026-11-26T05:07:39Z", "2026-11-26 05:07:39"),
            ("2026-11-26 07:07:39+0200", "2026-11-26 05:07:39"),
            ("2026-11-26 07:07:39+02:00", "2026-11-26 05:07:39"),
            ("2026-11-26 00:07:39-05", "2026-11-26 05:07:39"),
            ("2026-11-26 05:07:39.123456", "2026-11-26 05:07:39"),
            ("2026-11-26 05:07:39.5+01:00", "2026-11-26 04:07:39"),
        ] {
            assert_eq!(normalise(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejected_forms() {
        for input in [
            "",
            "yesterday",
            "2026-13-01 00:00:00",
            "2026-11-26 05:07:39+99",
            "2026-11-26 05:07:39 garbage",
            "2026-11-26 05:07:3é",
        ] {
            assert!(normalise(input).is_err(), "{input}");
        }
    }

    #[test]
    fn iso() {
        assert_eq!(iso_utc("2014-10-13 17:25:04"), "2014-10-13T17:25:04Z");
    }
}
