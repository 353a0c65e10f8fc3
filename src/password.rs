//! Password hashes: bcrypt for users made here, Django's
//! `pbkdf2_sha256$iterations$salt$hash` for users loaded from the original.

use base64::Engine;
use subtle::ConstantTimeEq;

/// bcrypt cost for new hashes. 12 costs about 0.3 s on the project machine;
/// verified credentials are cached by the server, so this is paid once.
pub const BCRYPT_COST: u32 = 12;

pub fn hash(password: &str) -> String {
    bcrypt::hash(password, cost()).expect("bcrypt with a valid cost cannot fail")
}

/// The test suite may lower the cost of a debug build (never below
/// bcrypt's minimum); a release binary reads nothing from its environment
/// that weakens it (SPEC 2.7).
#[cfg(debug_assertions)]
fn cost() -> u32 {
    std::env::var("SUMATRA_BCRYPT_COST")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|c| (4..=31).contains(c))
        .unwrap_or(BCRYPT_COST)
}

#[cfg(not(debug_assertions))]
fn cost() -> u32 {
    BCRYPT_COST
}

/// Checks a password against a stored hash. An empty or unknown hash never
/// verifies (the `anonymous` user, users whose login is disabled).
pub fn verify(password: &str, stored: &str) -> bool {
    if stored.starts_with("$2") {
        return bcrypt::verify(password, stored).unwrap_or(false);
    }
    if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
        return verify_django_pbkdf2(password, rest);
    }
    false
}

fn verify_django_pbkdf2(password: &str, rest: &str) -> bool {
    let mut parts = rest.splitn(3, '$');
    let (Some(iter), Some(salt), Some(expected)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(iterations) = iter.parse::<u32>() else {
        return false;
    };
    if iterations == 0 || iterations > 10_000_000 {
        return false;
    }
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(expected) else {
        return false;
    };
    if expected.len() != 32 {
        return false;
    }
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt.as_bytes(), iterations, &mut out);
    out.ct_eq(&expected).into()
}

/// Is this a hash we know how to verify (for loaddata's checks)?
pub fn is_known_format(stored: &str) -> bool {
    stored.is_empty()
        || stored.starts_with("$2")
        || stored.starts_with("pbkdf2_sha256$")
        || stored.starts_with('!')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_fixture_hash_verifies() {
        let h = "pbkdf2_sha256$150000$6NULAzBRXtsZ$jGaw/hF/bxsLzxBMN/IpdoQI7LWSpj7hgatoUJZ+6AE=";
        assert!(verify("abc123", h));
        assert!(!verify("abc124", h));
        assert!(!verify("", h));
    }

    #[test]
    fn bcrypt_round_trip_and_empty_hash() {
        let h = bcrypt::hash("pw", 4).unwrap();
        assert!(verify("pw", &h));
        assert!(!verify("px", &h));
        assert!(!verify("", ""));
        assert!(!verify("x", "pbkdf2_sha256$x$y$z"));
        assert!(!verify("x", "md5$abc"));
    }
}
