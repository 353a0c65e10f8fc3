//! HTTP Basic authentication: parsing, a cache of verified credentials,
//! a bound on concurrent hash verifications, and failed-login throttling.
//!
//! Verifying bcrypt (cost 12) or Django's PBKDF2 takes hundreds of
//! milliseconds, and the Python client sends credentials with every request.
//! A verified `Authorization` header is cached under its SHA-256, together
//! with the password hash it was verified against; each request still reads
//! the user's current hash (one indexed query), so `passwd` and `userdel`
//! invalidate the cache at once, from any process.

use crate::error::{Error, Result};
use crate::password;
use crate::store::{Level, TokenRow, Tx, UserAuth};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Entries kept in the verified-credentials cache.
const CACHE_SIZE: usize = 10_000;
/// Hash verifications running at once: one, so that a flood of wrong
/// passwords leaves the other core to everything else.
const MAX_VERIFYING: usize = 1;
/// Seconds a login refused for a full verification queue is told to wait.
const BUSY_RETRY_AFTER: u64 = 1;

/// Failed logins allowed per window, per user name at one client address
/// and per client address.
#[derive(Debug, Clone)]
pub struct ThrottlePolicy {
    pub per_user: u32,
    pub per_address: u32,
    pub window: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            per_user: 10,
            per_address: 50,
            window: Duration::from_secs(300),
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No credentials, or credentials that did not verify (treated alike).
    Anonymous {
        attempted: bool,
    },
    User(UserAuth),
    /// A user through one of their tokens (SPEC 11.1): on the token's
    /// project at most its level and what the user holds; elsewhere what
    /// anyone may; never administering.
    Token(UserAuth, Box<TokenRow>),
}

impl Caller {
    pub fn user(&self) -> Option<&UserAuth> {
        match self {
            Caller::User(u) | Caller::Token(u, _) => Some(u),
            Caller::Anonymous { .. } => None,
        }
    }
    pub fn token(&self) -> Option<&TokenRow> {
        match self {
            Caller::Token(_, t) => Some(t),
            _ => None,
        }
    }
    pub fn name(&self) -> &str {
        self.user()
            .map_or(crate::store::ANONYMOUS, |u| u.username.as_str())
    }
    /// Whether this caller counts as signed in on a project (user names
    /// are shown to signed-in callers only): a token only on its own.
    pub fn named_on(&self, project: &str) -> bool {
        match self {
            Caller::User(_) => true,
            Caller::Token(_, t) => t.project == project,
            Caller::Anonymous { .. } => false,
        }
    }

    /// Who the history says made a change: the user, or which token of theirs.
    pub fn actor_name(&self) -> String {
        match self {
            Caller::Token(_, t) => t.actor_name(),
            _ => self.name().to_string(),
        }
    }

    /// The level this caller holds, from what one question read.
    pub fn level_in(&self, access: &crate::store::Access) -> Option<Level> {
        match self {
            Caller::Anonymous { .. } => access.level_of(None),
            Caller::User(u) => access.level_of(Some(u.id)),
            Caller::Token(u, t) if t.project == access.project.id => {
                access.level_of(Some(u.id)).map(|held| held.min(t.level))
            }
            Caller::Token(..) => access.level_of(None),
        }
    }

    /// The projects this caller may read (lineage across projects).
    pub fn readable_projects(&self, tx: &Tx<'_>) -> Result<Vec<String>> {
        match self {
            Caller::Token(u, t) => {
                let mut list = tx.readable_projects(None)?;
                let own = tx.readable_projects(Some(u.id))?;
                if own.contains(&t.project) && !list.contains(&t.project) {
                    list.push(t.project.clone());
                    list.sort();
                }
                Ok(list)
            }
            _ => tx.readable_projects(self.user().map(|u| u.id)),
        }
    }
}

struct Failures {
    count: u32,
    since: Instant,
}

/// Requests holding a password check: the one verifying and those waiting.
#[derive(Default)]
struct Checks {
    queued: usize,
    running: usize,
}

pub struct Authenticator {
    cache: Mutex<HashMap<[u8; 32], (String, String)>>,
    checks: Mutex<Checks>,
    verified: Condvar,
    /// Requests that may hold a password check at once (running or
    /// waiting); each holds a handler thread, so this stays a small part of
    /// the pool and requests that need no check always find a thread.
    max_queued: usize,
    failures: Mutex<HashMap<String, Failures>>,
    policy: ThrottlePolicy,
    /// Headers being verified now, for requests with the same header to wait on.
    flights: Mutex<HashMap<[u8; 32], Arc<Flight>>>,
    /// Tokens used: when each was last noted, and the use not yet written.
    uses: Mutex<HashMap<i64, TokenUse>>,
}

/// A token's last use, for its row (written at most once a minute).
struct TokenUse {
    noted: Instant,
    pending: Option<(String, String)>,
}

/// How often a token's last use is written at most.
const USE_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
enum Verdict {
    Verified,
    Wrong,
    /// Throttled or queue full: those waiting check for themselves.
    Refused,
}

/// One check of one header, and the requests waiting for its verdict.
#[derive(Default)]
struct Flight {
    verdict: Mutex<Option<Verdict>>,
    ready: Condvar,
}

impl Flight {
    fn wait(&self) -> Verdict {
        let mut v = lock(&self.verdict);
        loop {
            if let Some(verdict) = *v {
                return verdict;
            }
            v = self.ready.wait(v).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The check of a header this request runs: its verdict is published (and
/// the header's flight ended) however the check ends.
struct Landing<'a> {
    auth: &'a Authenticator,
    key: [u8; 32],
    flight: Arc<Flight>,
    verdict: Verdict,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        lock(&self.auth.flights).remove(&self.key);
        *lock(&self.flight.verdict) = Some(self.verdict);
        self.flight.ready.notify_all();
    }
}

/// A place in the password-check queue, given back on drop.
struct Slot<'a>(&'a Authenticator);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut checks = lock(&self.0.checks);
        checks.queued -= 1;
        crate::metrics::get()
            .password_checks_waiting
            .set(checks.queued as i64);
    }
}

impl Authenticator {
    /// `workers`: handler threads; at most a quarter of them (at least
    /// one) wait for password checks at once.
    pub fn new(policy: ThrottlePolicy, workers: usize) -> Authenticator {
        Authenticator {
            cache: Mutex::new(HashMap::new()),
            checks: Mutex::new(Checks::default()),
            verified: Condvar::new(),
            max_queued: (workers / 4).max(1),
            failures: Mutex::new(HashMap::new()),
            policy,
            flights: Mutex::new(HashMap::new()),
            uses: Mutex::new(HashMap::new()),
        }
    }

    /// The token uses to write: (id, when, from where), each token at most
    /// once a minute.
    pub fn take_token_uses(&self) -> Vec<(i64, String, String)> {
        let mut uses = lock(&self.uses);
        let now = Instant::now();
        uses.retain(|_, u| u.pending.is_some() || now.duration_since(u.noted) < USE_EVERY);
        uses.iter_mut()
            .filter_map(|(id, u)| u.pending.take().map(|(at, a)| (*id, at, a)))
            .collect()
    }

    /// Uses [`take_token_uses`](Self::take_token_uses) gave that could not
    /// be written (the database away): kept for the next try, unless a
    /// newer use of the token is waiting already.
    pub fn give_back_token_uses(&self, back: Vec<(i64, String, String)>) {
        let mut uses = lock(&self.uses);
        for (id, at, address) in back {
            let u = uses.entry(id).or_insert(TokenUse {
                noted: Instant::now(),
                pending: None,
            });
            if u.pending.is_none() {
                u.pending = Some((at, address));
            }
        }
    }

    fn note_use(&self, id: i64, peer: IpAddr) {
        let mut uses = lock(&self.uses);
        let now = Instant::now();
        let fresh = uses
            .get(&id)
            .is_some_and(|u| now.duration_since(u.noted) < USE_EVERY);
        if !fresh {
            if uses.len() > 100_000 {
                uses.clear();
            }
            uses.insert(
                id,
                TokenUse {
                    noted: now,
                    pending: Some((crate::record::timefmt::now(), peer.to_string())),
                },
            );
        }
    }

    /// A token given as the Basic password (SPEC 11.1): one indexed lookup
    /// of its SHA-256, compared in constant time; no slow hash. Wrong,
    /// expired and revoked tokens count as failed logins.
    fn token_caller(
        &self,
        tx: &Tx<'_>,
        user: Option<UserAuth>,
        username: &str,
        token: &str,
        peer: IpAddr,
    ) -> Result<Caller> {
        use subtle::ConstantTimeEq;
        // Over the limit: refused before any lookup. Otherwise a failure is
        // counted only when the token does not verify (a cluster's many
        // jobs with one good token never add up to a refusal).
        self.check_throttle(&lock(&self.failures), username, peer)?;
        let digest = crate::token::digest(token);
        let found = tx.token_by_digest(&digest)?;
        let now = crate::record::timefmt::now();
        let valid = found.filter(|t| {
            bool::from(t.digest.as_bytes().ct_eq(digest.as_bytes()))
                && t.username == username
                && !t.expired(&now)
        });
        let failed = || {
            self.record_failure(&mut lock(&self.failures), username, peer);
            Ok(Caller::Anonymous { attempted: true })
        };
        let (Some(t), Some(user)) = (valid, user) else {
            return failed();
        };
        if t.user_id != user.id {
            return failed();
        }
        self.note_use(t.id, peer);
        Ok(Caller::Token(user, Box::new(t)))
    }

    /// Resolves the caller from an `Authorization` header, with the user
    /// the header names already read (`Some`: with the project, in one
    /// question) or to be read (`None`).
    pub fn caller_known(
        &self,
        tx: &Tx<'_>,
        header: Option<&str>,
        peer: IpAddr,
        known: Option<Option<UserAuth>>,
    ) -> Result<Caller> {
        let Some(header) = header else {
            return Ok(Caller::Anonymous { attempted: false });
        };
        let Some((username, password)) = parse_basic(header) else {
            return Ok(Caller::Anonymous { attempted: true });
        };
        // The user the header names: read with the project already, or now.
        let user = match known {
            Some(u) => u,
            None => tx.user(&username)?,
        };
        // A token is the exact shape of one (prefix, length, checksum); a
        // password that merely starts as one does (a user loaded from
        // Django, say) is checked as the password it is.
        if crate::token::well_formed(&password) {
            return self.token_caller(tx, user, &username, &password, peer);
        }
        let key: [u8; 32] = Sha256::digest(header.as_bytes()).into();
        if let Some(user) = self.cached(&key, user.as_ref()) {
            return Ok(Caller::User(user));
        }
        // The same header being checked already (a burst of one client's
        // requests, or a cluster's jobs starting together): wait for that
        // check instead of queueing another.
        let flight = {
            let mut flights = lock(&self.flights);
            match flights.get(&key) {
                Some(f) => Err(f.clone()),
                None => {
                    let f = Arc::new(Flight::default());
                    flights.insert(key, f.clone());
                    Ok(f)
                }
            }
        };
        let mut landing = match flight {
            Err(theirs) => {
                return match theirs.wait() {
                    Verdict::Verified => Ok(self
                        .cached(&key, user.as_ref())
                        .map_or(Caller::Anonymous { attempted: true }, Caller::User)),
                    Verdict::Wrong => Ok(Caller::Anonymous { attempted: true }),
                    // Refused for its own address or a full queue: this
                    // request (perhaps from elsewhere) gets a check of its own.
                    Verdict::Refused => self.check(&username, &password, user, peer, &key),
                };
            }
            Ok(mine) => Landing {
                auth: self,
                key,
                flight: mine,
                verdict: Verdict::Wrong,
            },
        };
        let result = self.check(&username, &password, user, peer, &key);
        landing.verdict = match &result {
            Ok(Caller::User(_) | Caller::Token(..)) => Verdict::Verified,
            Ok(Caller::Anonymous { .. }) => Verdict::Wrong,
            Err(Error::TooManyRequests(_) | Error::Busy(_)) => Verdict::Refused,
            Err(_) => Verdict::Wrong,
        };
        result
    }

    /// The name under which this header was last verified, for the header
    /// of an error page (no database at hand: never an authorization).
    pub fn verified_name(&self, header: Option<&str>) -> Option<String> {
        let key: [u8; 32] = Sha256::digest(header?.as_bytes()).into();
        lock(&self.cache).get(&key).map(|(name, _)| name.clone())
    }

    /// The user, if this header was verified against their current hash.
    fn cached(&self, key: &[u8; 32], user: Option<&UserAuth>) -> Option<UserAuth> {
        let user = user?;
        let cache = lock(&self.cache);
        let (name, hash) = cache.get(key)?;
        (*name == user.username && *hash == user.password_hash).then(|| user.clone())
    }

    /// Throttle, queue and verify one password.
    fn check(
        &self,
        username: &str,
        password: &str,
        user: Option<UserAuth>,
        peer: IpAddr,
        key: &[u8; 32],
    ) -> Result<Caller> {
        // Counted as a failure before verifying, so that concurrent guesses
        // cannot all pass the check before any of them is recorded.
        self.begin_attempt(username, peer)?;
        // A full queue answers at once (503); that attempt does not count.
        let slot = self
            .reserve()
            .inspect_err(|_| self.undo_attempt(username, peer))?;
        let ok = match &user {
            Some(u) if u.username != crate::store::ANONYMOUS => {
                self.verify(&slot, password, &u.password_hash)
            }
            _ => {
                // Same work for an unknown user, so timing does not tell.
                self.verify(&slot, password, dummy_hash());
                false
            }
        };
        drop(slot);
        match (ok, user) {
            (true, Some(user)) => {
                let mut cache = lock(&self.cache);
                if cache.len() >= CACHE_SIZE {
                    cache.clear();
                }
                cache.insert(*key, (user.username.clone(), user.password_hash.clone()));
                drop(cache);
                self.undo_attempt(username, peer);
                Ok(Caller::User(user))
            }
            _ => Ok(Caller::Anonymous { attempted: true }),
        }
    }

    /// A place in the password-check queue, or 503 when it is full.
    fn reserve(&self) -> Result<Slot<'_>> {
        let mut checks = lock(&self.checks);
        if checks.queued >= self.max_queued {
            crate::metrics::get().password_checks_refused.inc();
            return Err(Error::Busy(BUSY_RETRY_AFTER));
        }
        checks.queued += 1;
        crate::metrics::get()
            .password_checks_waiting
            .set(checks.queued as i64);
        Ok(Slot(self))
    }

    /// Verifies once it is this slot's turn (one verification at a time).
    fn verify(&self, _slot: &Slot<'_>, password: &str, hash: &str) -> bool {
        {
            let mut checks = lock(&self.checks);
            while checks.running >= MAX_VERIFYING {
                checks = self
                    .verified
                    .wait(checks)
                    .unwrap_or_else(|p| p.into_inner());
            }
            checks.running += 1;
        }
        /// Gives the turn back however the verification ends.
        struct Turn<'a>(&'a Authenticator);
        impl Drop for Turn<'_> {
            fn drop(&mut self) {
                lock(&self.0.checks).running -= 1;
                self.0.verified.notify_one();
            }
        }
        let _turn = Turn(self);
        password::verify(password, hash)
    }

    /// What failures are counted against: the user name at this address,
    /// and the address (SPEC 2.7). Never the user name alone: guesses from
    /// one address never refuse the right password at another.
    fn keys(username: &str, peer: IpAddr) -> [(String, u32); 2] {
        [
            (format!("user:{peer} {username}"), 0),
            (format!("addr:{peer}"), 1),
        ]
    }

    /// Refuses (429) a user name or address over its limit; otherwise
    /// counts this attempt as a failure until it succeeds.
    fn begin_attempt(&self, username: &str, peer: IpAddr) -> Result<()> {
        let mut failures = lock(&self.failures);
        self.check_throttle(&failures, username, peer)?;
        self.record_failure(&mut failures, username, peer);
        Ok(())
    }

    /// A verified attempt is not a failure after all.
    fn undo_attempt(&self, username: &str, peer: IpAddr) {
        let mut failures = lock(&self.failures);
        for (key, _) in Self::keys(username, peer) {
            if let Some(f) = failures.get_mut(&key) {
                f.count = f.count.saturating_sub(1);
            }
        }
    }

    fn check_throttle(
        &self,
        failures: &HashMap<String, Failures>,
        username: &str,
        peer: IpAddr,
    ) -> Result<()> {
        let now = Instant::now();
        for (key, which) in Self::keys(username, peer) {
            let limit = if which == 0 {
                self.policy.per_user
            } else {
                self.policy.per_address
            };
            if let Some(f) = failures.get(&key) {
                let elapsed = now.duration_since(f.since);
                if elapsed < self.policy.window && f.count >= limit {
                    let wait = (self.policy.window - elapsed).as_secs().max(1);
                    crate::metrics::get().login_throttled.inc();
                    return Err(Error::TooManyRequests(wait));
                }
            }
        }
        Ok(())
    }

    fn record_failure(
        &self,
        failures: &mut HashMap<String, Failures>,
        username: &str,
        peer: IpAddr,
    ) {
        let now = Instant::now();
        if failures.len() > 100_000 {
            let window = self.policy.window;
            failures.retain(|_, f| now.duration_since(f.since) < window);
        }
        for (key, _) in Self::keys(username, peer) {
            let f = failures.entry(key).or_insert(Failures {
                count: 0,
                since: now,
            });
            if now.duration_since(f.since) >= self.policy.window {
                *f = Failures {
                    count: 0,
                    since: now,
                };
            }
            f.count += 1;
        }
    }
}

/// A hash of nothing anyone knows, verified against for unknown users.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| password::hash("no user has this password, it only costs time"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `Basic base64(user:password)` → (user, password).
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::parse_basic;

    #[test]
    fn basic_header() {
        assert_eq!(
            parse_basic("Basic dGVzdHVzZXI6YWJjMTIz"),
            Some(("testuser".into(), "abc123".into()))
        );
        assert_eq!(
            parse_basic("basic dTpwOng="),
            Some(("u".into(), "p:x".into()))
        );
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(parse_basic("Basic"), None);
        assert_eq!(parse_basic("Basic bm9jb2xvbg=="), None);
    }

    /// Regression: a last use that could not be written (the database
    /// away) was dropped for good; given back, it is written next time,
    /// unless a newer use of the token waits already.
    #[test]
    fn token_uses_not_written_are_kept_for_the_next_try() {
        let auth = super::Authenticator::new(Default::default(), 8);
        let here: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        auth.note_use(7, here);
        let taken = auth.take_token_uses();
        assert_eq!(taken.len(), 1);
        assert!(auth.take_token_uses().is_empty());
        auth.give_back_token_uses(taken.clone());
        assert_eq!(auth.take_token_uses(), taken);
        // A newer use waiting wins over the one given back.
        let newer = vec![(7, "2999-01-01 00:00:00".to_string(), "10.0.0.2".to_string())];
        auth.give_back_token_uses(newer.clone());
        auth.give_back_token_uses(taken);
        assert_eq!(auth.take_token_uses(), newer);
    }
}
