//! `P.health` (SPEC 11.2): for load balancers and container checks, no
//! authentication and no user data. 200 with `{"status": "pass", ...}` when
//! the database answers within a second, 503 with `"fail"` and the reason
//! otherwise. One check runs at a time: while a database hangs, further
//! probes are answered at once with the check still waiting.

use super::App;
use rouille::Response;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long the database has to answer.
pub const WITHIN: Duration = Duration::from_secs(1);

pub fn health(app: &App) -> Response {
    let result = if app.checking.swap(true, Ordering::AcqRel) {
        Err("the previous check of the database has not answered yet".to_string())
    } else {
        let flag = app.checking.clone();
        crate::store::health_then(&app.cfg.db, WITHIN, move || {
            flag.store(false, Ordering::Release)
        })
    };
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
