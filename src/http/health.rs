//! `P.health` (SPEC 11.2): for load balancers and container checks, no
//! authentication and no user data. 200 with `{"status": "pass", ...}` when
//! the database answers within a second, 503 with `"fail"` and the reason
//! otherwise. One check runs at a time, and a probe that arrives while it
//! runs waits for its answer (a second at most): probes that overlap (two
//! load balancers) share a check rather than fail. While four wait, more
//! probes are answered at once with the last check's answer if it is less
//! than ten seconds old (a flood of probes while the database hangs holds
//! four handler threads, not all of them).

use super::App;
use rouille::Response;
use serde_json::json;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long the database has to answer.
pub const WITHIN: Duration = Duration::from_secs(1);

/// The check in progress and the last answer, shared by every probe.
#[derive(Default)]
pub struct Checks {
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Default)]
struct State {
    /// The number of the last check started; it runs if `running`.
    started: u64,
    running: bool,
    /// The number of the last check ended and its answer: how long the
    /// database took, or why it failed.
    ended: u64,
    answer: Option<std::result::Result<Duration, String>>,
    /// When the last check ended.
    ended_at: Option<Instant>,
    /// Probes waiting now, each on a handler thread.
    waiting: usize,
}

/// How old the last check's answer may be for a probe that does not wait.
const FRESH: Duration = Duration::from_secs(10);

/// Probes that wait for a check at once before more are answered with
/// the last check's answer.
const MOST_WAITING: usize = 4;

/// Ends a check, whatever happens to it (a panic included: the next probe
/// then starts a new one rather than waiting for one that is gone).
struct Ending {
    checks: Arc<Checks>,
    n: u64,
    answer: Option<std::result::Result<Duration, String>>,
}

impl Drop for Ending {
    fn drop(&mut self) {
        let mut g = self.checks.state.lock().unwrap_or_else(|p| p.into_inner());
        g.running = false;
        g.ended = self.n;
        g.ended_at = Some(Instant::now());
        g.answer = Some(
            self.answer
                .take()
                .unwrap_or_else(|| Err("the check of the database failed".to_string())),
        );
        self.checks.done.notify_all();
    }
}

impl Checks {
    /// The answer of a check started now or already running: how long
    /// the database took, or why it failed (or did not answer in time).
    fn probe(
        self: &Arc<Self>,
        db: &crate::store::Location,
    ) -> std::result::Result<Duration, String> {
        let arrived = Instant::now();
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !g.running {
            g.running = true;
            g.started += 1;
            let (n, db, checks) = (g.started, db.clone(), self.clone());
            std::thread::spawn(move || {
                let mut ending = Ending {
                    checks,
                    n,
                    answer: None,
                };
                let start = Instant::now();
                let answer = crate::store::check(&db)
                    .map(|()| start.elapsed())
                    .map_err(|why| {
                        // The whole reason goes to the log; anyone may ask
                        // P.health, and the database's own words can name
                        // its user or database.
                        eprintln!("sumatra-server: health check failed: {why}");
                        public(&why)
                    });
                ending.answer = Some(answer);
            });
        }
        let wanted = g.started;
        let fresh = g.ended_at.is_some_and(|at| at.elapsed() < FRESH);
        if g.waiting >= MOST_WAITING && fresh {
            if let Some(answer) = &g.answer {
                return answer.clone();
            }
        }
        g.waiting += 1;
        g = self
            .done
            .wait_timeout_while(g, WITHIN.saturating_sub(arrived.elapsed()), |g| {
                g.ended < wanted
            })
            .unwrap_or_else(|p| p.into_inner())
            .0;
        g.waiting -= 1;
        match &g.answer {
            Some(answer) if g.ended >= wanted => answer.clone(),
            _ => Err(format!("no answer within {} ms", WITHIN.as_millis())),
        }
    }
}

/// What P.health says of a failure: the schema's versions, or that the
/// database is not available (the log has the rest).
fn public(why: &str) -> String {
    match why.find("schema version") {
        Some(at) => why[at..].to_string(),
        None => "the database is not available (the server's log says why)".to_string(),
    }
}

pub fn health(app: &App) -> Response {
    let result = app.checks.probe(&app.cfg.db);
    let engine = match app.cfg.db {
        crate::store::Location::File(_) => "sqlite",
        crate::store::Location::Postgres(_) => "postgresql",
    };
    let (status, body) = match result {
        Ok(took) => (
            200,
            json!({"status": "pass", "checks": {"database": {"status": "pass", "engine": engine,
                   "time_ms": (took.as_secs_f64() * 1000.0 * 10.0).round() / 10.0}}}),
        ),
        Err(why) => (
            503,
            json!({"status": "fail", "checks": {"database": {"status": "fail", "engine": engine,
                   "output": why}}}),
        ),
    };
    // Never cached: every answer carries `Cache-Control: no-store`.
    Response::from_data("application/health+json", body.to_string()).with_status_code(status)
}
