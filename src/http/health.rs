//! `P.health` (SPEC 11.2): for load balancers and container checks, no
//! authentication and no user data. 200 with `{"status": "pass", ...}` when
//! the database answers within a second, 503 with `"fail"` and the reason
//! otherwise. One check runs at a time, and every probe that arrives while
//! it runs waits for its answer (a second at most): a database that hangs
//! holds one thread, and probes that overlap (two load balancers) share a
//! check rather than fail.

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
                let start = Instant::now();
                let answer = crate::store::check(&db).map(|()| start.elapsed());
                let mut g = checks.state.lock().unwrap_or_else(|p| p.into_inner());
                g.running = false;
                g.ended = n;
                g.answer = Some(answer);
                checks.done.notify_all();
            });
        }
        let wanted = g.started;
        let (g, _) = self
            .done
            .wait_timeout_while(g, WITHIN.saturating_sub(arrived.elapsed()), |g| {
                g.ended < wanted
            })
            .unwrap_or_else(|p| p.into_inner());
        match &g.answer {
            Some(answer) if g.ended >= wanted => answer.clone(),
            _ => Err(format!("no answer within {} ms", WITHIN.as_millis())),
        }
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
