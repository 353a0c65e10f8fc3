//! Access tokens (SPEC 11.1): what a token looks like, made and checked
//! without the database. `smt_` (a prefix secret scanners can match), 30
//! random base-62 characters (178 bits from the operating system), and 6
//! of checksum, so that a typo or a truncated copy is told apart from a
//! wrong token before any lookup. Only the SHA-256 of a token is stored.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "smt_";
const BODY: usize = 30;
const CHECK: usize = 6;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new token.
pub fn generate() -> Result<String> {
    let mut body = String::with_capacity(BODY);
    let mut bytes = [0u8; 64];
    while body.len() < BODY {
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::Database(format!("no random numbers from the system: {e}")))?;
        // 248 = 4 × 62: taking only bytes below it keeps every character
        // equally likely.
        for b in bytes.iter().filter(|b| **b < 248) {
            if body.len() == BODY {
                break;
            }
            body.push(ALPHABET[(*b % 62) as usize] as char);
        }
    }
    let check = checksum(&body);
    Ok(format!("{PREFIX}{body}{check}"))
}

/// Whether `s` is shaped as a token with a right checksum (it may still
/// be one nobody made).
pub fn well_formed(s: &str) -> bool {
    let Some(rest) = s.strip_prefix(PREFIX) else {
        return false;
    };
    if rest.len() != BODY + CHECK || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (body, check) = rest.split_at(BODY);
    checksum(body) == check
}

/// The stored form: the hex SHA-256 of the whole token.
pub fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `90d`, `12h`, `2w`, `30m`, or `never`: the expiry time (UTC), if any.
pub fn expiry(text: &str) -> Result<Option<String>> {
    let t = text.trim();
    if t == "never" {
        return Ok(None);
    }
    let bad = || {
        Error::bad(format!(
            "--expires: a duration like 90d, 12h, 2w or 30m (at most 10 years), or never; not {text:?}"
        ))
    };
    // The unit is the last character, whatever its width.
    let Some(unit_at) = t.char_indices().last().map(|(i, _)| i) else {
        return Err(bad());
    };
    let (n, unit) = t.split_at(unit_at);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let minutes = match unit {
        "m" => n,
        "h" => n.checked_mul(60).ok_or_else(bad)?,
        "d" => n.checked_mul(24 * 60).ok_or_else(bad)?,
        "w" => n.checked_mul(7 * 24 * 60).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if minutes <= 0 || minutes > 10 * 366 * 24 * 60 {
        return Err(bad());
    }
    Ok(Some(
        (chrono::Utc::now() + chrono::Duration::minutes(minutes))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
    ))
}

/// The first four bytes of the body's SHA-256, in six base-62 characters.
fn checksum(body: &str) -> String {
    let d = Sha256::digest(body.as_bytes());
    let mut n = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as u64;
    let mut out = [b'0'; CHECK];
    for c in out.iter_mut().rev() {
        *c = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed_distinct_and_checked() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), PREFIX.len() + BODY + CHECK);
        assert!(well_formed(&a) && well_formed(&b));
        // One character changed, one cut off, one added: refused by the checksum or length.
        let mut typo = a.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert!(!well_formed(std::str::from_utf8(&typo).unwrap()));
        assert!(!well_formed(&a[..a.len() - 1]));
        assert!(!well_formed(&format!("{a}x")));
        assert!(!well_formed("smt_"));
        assert_eq!(digest(&a).len(), 64);
        assert_ne!(digest(&a), digest(&b));
    }

    #[test]
    fn expiry_durations() {
        assert_eq!(expiry("never").unwrap(), None);
        assert!(expiry("90d").unwrap().unwrap() > crate::record::timefmt::now());
        for bad in ["", "d", "0d", "-3d", "90", "90y", "99999999999w"] {
            assert!(expiry(bad).is_err(), "{bad}");
        }
    }

    /// Regression: a last character wider than a byte (`9é`) panicked
    /// (the unit was cut one byte from the end), a 500 on the tokens page.
    #[test]
    fn an_expiry_ending_in_a_wide_character_is_refused_not_a_panic() {
        for bad in ["9é", "é", "90日", "1\u{1F600}"] {
            assert!(expiry(bad).is_err(), "{bad}");
        }
    }
}
