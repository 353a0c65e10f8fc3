//! How long a request's work may run, and whether anyone still wants it
//! (SPEC 7.6).
//!
//! The transport gives each request a [`Budget`]: a deadline
//! (`--query-timeout`) and a flag it raises when the client goes away. The
//! handler's thread carries the budget while it works ([`within`]); the
//! store asks [`check`] as its statements run (SQLite's progress handler,
//! and before each statement on PostgreSQL, whose own `statement_timeout`
//! bounds each one), and stops with
//! [`Error::Stopped`](crate::error::Error::Stopped) when the deadline has
//! passed, the client is gone, or the server was told to stop and its
//! grace period is over ([`stop_all`]). Work on a thread without a budget
//! (the shell's commands) is never stopped, except by [`stop_all`].

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The limits of one request's work.
#[derive(Debug, Clone)]
pub struct Budget {
    started: Instant,
    limit: Duration,
    gone: Arc<AtomicBool>,
    /// Milliseconds after `started` of the last progress of a stream (a
    /// chunk handed to the client): a stream's deadline is the time it
    /// may go without progress, so a download of a million rows that a
    /// client keeps reading is not cut, and one that stalls is.
    progress: Arc<AtomicU64>,
}

impl Budget {
    /// Work that may run for `limit` from now.
    #[cfg(test)]
    pub fn new(limit: Duration) -> Budget {
        Budget::sharing(limit, Arc::new(AtomicBool::new(false)))
    }

    /// Work that may run for `limit` from now, stopped when `gone` is
    /// raised (the transport keeps the flag from the request's arrival;
    /// the clock starts when the work does, not while the body arrives).
    pub fn sharing(limit: Duration, gone: Arc<AtomicBool>) -> Budget {
        Budget {
            started: Instant::now(),
            limit,
            gone,
            progress: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Raised by whoever notices that the answer is no longer wanted.
    #[cfg(test)]
    pub fn abandon_flag(&self) -> Arc<AtomicBool> {
        self.gone.clone()
    }

    fn check(&self) -> Option<Stop> {
        if STOPPING.load(Ordering::Relaxed) {
            Some(Stop::ServerStopping)
        } else if self.gone.load(Ordering::Relaxed) {
            Some(Stop::ClientGone)
        } else if self
            .started
            .elapsed()
            .saturating_sub(Duration::from_millis(self.progress.load(Ordering::Relaxed)))
            > self.limit
        {
            Some(Stop::Late(self.limit))
        } else {
            None
        }
    }
}

/// Why work was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Past the deadline.
    Late(Duration),
    /// The client closed its connection.
    ClientGone,
    /// The server is shutting down and its grace period is over.
    ServerStopping,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Late(limit) if limit.is_zero() => {
                f.write_str("the database stopped a statement that took too long")
            }
            Stop::Late(limit) => write!(
                f,
                "the question took longer than {} s and was stopped; narrow it \
                 (a tag, a condition on a parameter, fewer values in \"in (...)\", \
                 fewer sort keys or columns, or a limit)",
                limit.as_secs_f64()
            ),
            Stop::ClientGone => f.write_str("the client went away; the work was stopped"),
            Stop::ServerStopping => {
                f.write_str("the server is stopping; try again in a few seconds")
            }
        }
    }
}

static STOPPING: AtomicBool = AtomicBool::new(false);

thread_local! {
    static CURRENT: RefCell<Option<Budget>> = const { RefCell::new(None) };
}

/// Runs `f` with no budget (work that must finish once started, such as
/// indexing what was written: a request's deadline would roll it back
/// every time); only the end of the grace period stops it.
pub fn unbounded<T>(f: impl FnOnce() -> T) -> T {
    let before = CURRENT.with(|c| c.borrow_mut().take());
    struct Restore(Option<Budget>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = before);
        }
    }
    let _restore = Restore(before);
    f()
}

/// Runs `f` with `budget` as this thread's budget (the one before is
/// restored after, however `f` ends).
pub fn within<T>(budget: Budget, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Budget>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = before);
        }
    }
    let before = CURRENT.with(|c| c.borrow_mut().replace(budget));
    let _restore = Restore(before);
    f()
}

/// This thread's budget, to carry to a thread that continues its work (a
/// streamed answer).
pub fn current() -> Option<Budget> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Whether the work of `budget` should stop now, and why (for a thread
/// that watches others' work).
pub fn check_of(budget: &Budget) -> Option<Stop> {
    budget.check()
}

/// A stream on this thread made progress (a chunk went to the client):
/// its deadline starts again from now.
pub fn progressed() {
    CURRENT.with(|c| {
        if let Some(b) = &*c.borrow() {
            let ms = b.started.elapsed().as_millis().min(u64::MAX as u128) as u64;
            b.progress.store(ms, Ordering::Relaxed);
        }
    })
}

/// Whether this thread's work should stop now, and why.
pub fn check() -> Option<Stop> {
    CURRENT.with(|c| match &*c.borrow() {
        Some(b) => b.check(),
        None if STOPPING.load(Ordering::Relaxed) => Some(Stop::ServerStopping),
        None => None,
    })
}

/// The reason to give for work a database reports as interrupted or
/// timed out (its own clock may run a little ahead of ours).
pub fn reason() -> Stop {
    check().unwrap_or_else(|| {
        CURRENT.with(|c| match &*c.borrow() {
            Some(b) => Stop::Late(b.limit),
            // No request's budget: a statement stopped by the database's
            // own timeout, or the server stopping.
            None if STOPPING.load(Ordering::Relaxed) => Stop::ServerStopping,
            None => Stop::Late(Duration::ZERO),
        })
    })
}

/// Whether the server's grace period is over and all work is to stop.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::Relaxed)
}

/// Stops all work still running in this process (the server's grace
/// period is over).
pub fn stop_all() {
    STOPPING.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_stops_work_late_or_abandoned_and_only_on_its_thread() {
        assert_eq!(check(), None);
        let b = Budget::new(Duration::from_millis(30));
        let flag = b.abandon_flag();
        within(b.clone(), || {
            assert_eq!(check(), None);
            std::thread::sleep(Duration::from_millis(40));
            assert_eq!(check(), Some(Stop::Late(Duration::from_millis(30))));
            // Another thread has no budget unless it is given one.
            std::thread::spawn(|| assert_eq!(check(), None))
                .join()
                .unwrap();
        });
        assert_eq!(check(), None, "restored after");
        let fresh = Budget::new(Duration::from_secs(60));
        let gone = fresh.abandon_flag();
        within(fresh, || {
            gone.store(true, Ordering::Relaxed);
            assert_eq!(check(), Some(Stop::ClientGone));
        });
        drop(flag);
    }

    /// Regression (SPEC 9.5): a CSV of a million records, read as fast as
    /// it was made, was cut at the 10 s deadline after 730 000 rows.
    #[test]
    fn a_stream_that_makes_progress_runs_past_its_deadline() {
        let b = Budget::new(Duration::from_millis(40));
        within(b, || {
            for _ in 0..4 {
                std::thread::sleep(Duration::from_millis(25));
                assert_eq!(check(), None);
                progressed();
            }
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(check(), Some(Stop::Late(Duration::from_millis(40))));
        });
    }
}
