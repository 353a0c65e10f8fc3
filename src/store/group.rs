//! Group commit: concurrent writes from many handler threads share one
//! transaction and one fsync.
//!
//! With `synchronous=FULL` every commit waits for the disk, and SQLite has
//! one writer at a time, so eight clients PUTting at once would each wait
//! for seven fsyncs. Here a writer queues its job; the first writer to find
//! no leader becomes the leader and runs the queued jobs in one transaction
//! (at most [`MAX_BATCH`] of them), each under its own savepoint (a failing
//! job is rolled back alone), commits once, then hands each job its result.
//! Nothing is acknowledged before the commit that holds it.
//!
//! A leader leads only until its own job has committed: it then hands the
//! lead to the first writer still waiting (or, with nobody waiting, clears
//! the lead), under the same lock that writers queue under, so that no
//! writer ever waits behind a leader that has gone (a lost wake-up), and
//! no leader's own client waits while others keep arriving. Each database
//! has a queue of its own ([`Shared`]).

use super::{Engine, LiteDb, Shared, Store, Tx};
use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// Jobs in one transaction at most.
pub const MAX_BATCH: usize = 64;

type Job = Box<dyn FnOnce(&Tx<'_>) -> Result<()> + Send>;

/// What a waiting writer is told.
enum Msg {
    /// Its job ran; committed if `Ok`.
    Done(Result<()>),
    /// Its job is still queued and it leads now.
    Lead,
}

struct Pending {
    id: u64,
    job: Job,
    done: mpsc::Sender<Msg>,
}

/// The write queue of one database.
#[derive(Default)]
pub struct Queue {
    jobs: VecDeque<Pending>,
    leading: bool,
    next_id: u64,
    /// Runs after a leader has stepped down (tests force interleavings).
    #[cfg(test)]
    after_step_down: Option<Box<dyn FnOnce() + Send>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Steps down however the leader leaves, even by a panic in a job.
struct Leading<'a>(&'a Shared);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        step_down(self.0);
    }
}

/// Hands the lead to the first writer still waiting, or clears it: one
/// decision under the queue's lock.
fn step_down(shared: &Shared) {
    let mut q = lock(&shared.queue);
    loop {
        match q.jobs.front() {
            None => {
                q.leading = false;
                break;
            }
            Some(first) if first.done.send(Msg::Lead).is_ok() => break,
            // Its writer is gone (its thread died): nobody waits for it.
            Some(_) => drop(q.jobs.pop_front()),
        }
    }
    #[cfg(test)]
    let hook = q.after_step_down.take();
    drop(q);
    #[cfg(test)]
    if let Some(hook) = hook {
        hook();
    }
}

impl Store {
    /// Runs `f` in a write transaction shared with other threads' writes;
    /// returns once the transaction holding it has committed. `f`'s error
    /// undoes `f` alone.
    pub fn write_grouped<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        // PostgreSQL commits each write on its own connection: several
        // run at once, and the database groups their flushes itself.
        let Engine::Lite(lite) = &mut self.engine else {
            return self.write(f);
        };
        let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let (done, result) = mpsc::channel();
        let job: Job = Box::new(move |tx| {
            let value = f(tx)?;
            *lock(&out) = Some(value);
            Ok(())
        });
        let shared = lite.shared.clone();
        let (id, lead) = {
            let mut q = lock(&shared.queue);
            let id = q.next_id;
            q.next_id += 1;
            q.jobs.push_back(Pending { id, job, done });
            (id, !std::mem::replace(&mut q.leading, true))
        };
        if lead {
            lite.lead(&shared, id);
        }
        let outcome = loop {
            match result.recv() {
                Ok(Msg::Done(r)) => break r,
                Ok(Msg::Lead) => lite.lead(&shared, id),
                Err(_) => break Err(Error::Database("the write was interrupted".into())),
            }
        };
        outcome?;
        let value = lock(&slot).take();
        value.ok_or_else(|| Error::Database("the write produced no result".into()))
    }
}

impl LiteDb {
    /// Runs batches from the front of the queue until the one holding job
    /// `mine` has committed, then steps down.
    fn lead(&mut self, shared: &Shared, mine: u64) {
        let _leading = Leading(shared);
        loop {
            let batch: Vec<Pending> = {
                let mut q = lock(&shared.queue);
                let n = q.jobs.len().min(MAX_BATCH);
                q.jobs.drain(..n).collect()
            };
            let done = batch.iter().any(|p| p.id == mine) || batch.is_empty();
            self.run_batch(batch);
            if done {
                return;
            }
        }
    }

    fn run_batch(&mut self, batch: Vec<Pending>) {
        let _guard = lock(&self.shared.write_lock);
        crate::metrics::get()
            .group_commit_batch
            .observe(batch.len() as f64);
        let path = self.path.display().to_string();
        let db_error = |e: rusqlite::Error| Error::Database(format!("database {path}: {e}"));
        let began = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_error)
            // A newer `init` migrated the file under us: no write.
            .and_then(|tx| super::lite_still_current(&tx).map(|()| tx));
        let mut tx = match began {
            Ok(tx) => tx,
            Err(e) => {
                let msg = e.to_string();
                let again = matches!(e, Error::Unavailable(_));
                for p in batch {
                    let e = match again {
                        true => Error::Unavailable(msg.clone()),
                        false => Error::Database(msg.clone()),
                    };
                    let _ = p.done.send(Msg::Done(Err(e)));
                }
                return;
            }
        };
        let mut results = Vec::with_capacity(batch.len());
        for Pending { job, done, .. } in batch {
            let outcome = match tx.savepoint() {
                Ok(mut sp) => {
                    let r = job(&Tx::on(&super::sql::Lite(&sp)));
                    if r.is_ok() {
                        sp.commit().map_err(db_error)
                    } else {
                        let _ = sp.rollback();
                        r
                    }
                }
                Err(e) => Err(db_error(e)),
            };
            results.push((done, outcome));
        }
        match tx.commit() {
            Ok(()) => {
                for (done, outcome) in results {
                    let _ = done.send(Msg::Done(outcome));
                }
            }
            Err(e) => {
                let msg = db_error(e).to_string();
                for (done, outcome) in results {
                    let _ = done.send(Msg::Done(outcome.and(Err(Error::Database(msg.clone())))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lock;
    use crate::error::Error;
    use crate::store::{OpenMode, Store};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc, Barrier, Condvar, Mutex};
    use std::time::{Duration, Instant};

    /// A gate jobs wait at (for at most ten seconds, so that a failing
    /// test fails instead of hanging).
    #[derive(Clone, Default)]
    struct Gate(Arc<(Mutex<bool>, Condvar)>);

    impl Gate {
        fn open(&self) {
            *self.0 .0.lock().unwrap() = true;
            self.0 .1.notify_all();
        }
        fn wait(&self) {
            let (m, c) = &*self.0;
            let _ = c
                .wait_timeout_while(m.lock().unwrap(), Duration::from_secs(10), |open| !*open)
                .unwrap();
        }
    }

    /// Polls `done` every millisecond until it holds or five seconds pass.
    fn eventually(done: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        done()
    }

    /// A writer on its own thread whose job creates `project` once `gate` opens.
    fn gated_writer(
        path: &Path,
        gate: &Gate,
        project: &'static str,
    ) -> std::thread::JoinHandle<crate::error::Result<()>> {
        let (p, g) = (path.to_path_buf(), gate.clone());
        std::thread::spawn(move || {
            let mut s = Store::open(&crate::store::Location::from(&p), OpenMode::Existing).unwrap();
            s.write_grouped(move |tx| {
                g.wait();
                tx.create_project(project, "", "")
            })
        })
    }

    fn project_ids(path: &Path) -> Vec<String> {
        let store = Store::open(&crate::store::Location::from(path), OpenMode::Existing).unwrap();
        let mut ids: Vec<String> = store
            .read()
            .list_projects(None)
            .unwrap()
            .into_iter()
            .map(|p| p.project.id)
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn lost_wakeup_a_writer_queued_as_the_leader_steps_down_is_served() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let mut leader =
            Store::open(&crate::store::Location::from(&path), OpenMode::Create).unwrap();
        let (served_tx, served) = mpsc::channel();
        let shared = leader.shared().clone();
        let late_path = path.clone();
        // The moment the leader has decided to stop leading, a late writer
        // queues; the leader only leaves once the late job is queued or done.
        lock(&leader.shared().queue).after_step_down = Some(Box::new(move || {
            let finished = Arc::new(AtomicBool::new(false));
            let f = finished.clone();
            std::thread::spawn(move || {
                let mut late = Store::open(
                    &crate::store::Location::from(&late_path),
                    OpenMode::Existing,
                )
                .unwrap();
                let r = late.write_grouped(|tx| tx.create_project("Late", "", ""));
                f.store(true, Ordering::SeqCst);
                let _ = served_tx.send(r.map_err(|e| e.to_string()));
            });
            assert!(eventually(
                || finished.load(Ordering::SeqCst) || !lock(&shared.queue).jobs.is_empty()
            ));
        }));
        leader
            .write_grouped(|tx| tx.create_project("First", "", ""))
            .unwrap();
        assert_eq!(
            served.recv_timeout(Duration::from_secs(10)),
            Ok(Ok(())),
            "the late writer waited for a leader that had gone"
        );
        assert_eq!(project_ids(&path), ["First", "Late"]);
    }

    #[test]
    fn unbounded_leader_returns_once_its_own_job_has_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let store = Store::open(&crate::store::Location::from(&path), OpenMode::Create).unwrap();
        let shared = store.shared().clone();
        let (first_gate, others_gate) = (Gate::default(), Gate::default());
        let (leader_done, leader_returned) = mpsc::channel();
        let (p, g) = (path.clone(), first_gate.clone());
        std::thread::spawn(move || {
            let mut s = Store::open(&crate::store::Location::from(&p), OpenMode::Existing).unwrap();
            let r = s.write_grouped(move |tx| {
                g.wait();
                tx.create_project("Leader", "", "")
            });
            let _ = leader_done.send(r.is_ok());
        });
        // The leader runs its own job (taken from the queue, lead held)...
        assert!(eventually(|| {
            let q = lock(&shared.queue);
            q.leading && q.jobs.is_empty()
        }));
        // ...while three more writers queue behind it.
        let others: Vec<_> = (0..3)
            .map(|i| {
                let (p, g) = (path.clone(), others_gate.clone());
                std::thread::spawn(move || {
                    let mut s =
                        Store::open(&crate::store::Location::from(&p), OpenMode::Existing).unwrap();
                    s.write_grouped(move |tx| {
                        g.wait();
                        tx.create_project(&format!("Other{i}"), "", "")
                    })
                })
            })
            .collect();
        assert!(eventually(|| lock(&shared.queue).jobs.len() == 3));
        first_gate.open();
        // The leader's client is answered while the others' jobs still run.
        assert_eq!(
            leader_returned.recv_timeout(Duration::from_secs(5)),
            Ok(true),
            "the leader kept running later writers' jobs before answering its own client"
        );
        others_gate.open();
        for h in others {
            h.join().unwrap().unwrap();
        }
        assert_eq!(project_ids(&path), ["Leader", "Other0", "Other1", "Other2"]);
    }

    #[test]
    fn process_global_queue_each_database_has_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (dir.path().join("1.db"), dir.path().join("2.db"));
        Store::open(&crate::store::Location::from(&one), OpenMode::Create).unwrap();
        Store::open(&crate::store::Location::from(&two), OpenMode::Create).unwrap();
        let gate = Gate::default();
        let blocked = gated_writer(&one, &gate, "InOne");
        let shared_one = Store::open(&crate::store::Location::from(&one), OpenMode::Existing)
            .unwrap()
            .shared()
            .clone();
        assert!(eventually(|| lock(&shared_one.queue).leading));
        // A write to the other database neither waits for the first one's
        // leader nor runs on its connection.
        let (done_tx, done) = mpsc::channel();
        let p = two.clone();
        std::thread::spawn(move || {
            let mut s = Store::open(&crate::store::Location::from(&p), OpenMode::Existing).unwrap();
            let _ = done_tx.send(
                s.write_grouped(|tx| tx.create_project("InTwo", "", ""))
                    .is_ok(),
            );
        });
        assert_eq!(done.recv_timeout(Duration::from_secs(5)), Ok(true));
        gate.open();
        blocked.join().unwrap().unwrap();
        assert_eq!(project_ids(&one), ["InOne"]);
        assert_eq!(project_ids(&two), ["InTwo"]);
    }

    #[test]
    fn a_batch_holds_at_most_max_batch_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let store = Store::open(&crate::store::Location::from(&path), OpenMode::Create).unwrap();
        let shared = store.shared().clone();
        let gate = Gate::default();
        let first = gated_writer(&path, &gate, "P");
        assert!(eventually(|| lock(&shared.queue).leading));
        let n = super::MAX_BATCH + 10;
        // Each job says which thread ran it: a leader runs one batch here
        // (its own job is at the front of the queue when it takes the lead).
        let writers: Vec<_> = (0..n)
            .map(|i| {
                let p = path.clone();
                std::thread::spawn(move || {
                    let mut s =
                        Store::open(&crate::store::Location::from(&p), OpenMode::Existing).unwrap();
                    s.write_grouped(move |tx| {
                        tx.create_project(&format!("Q{i:03}"), "", "")?;
                        Ok(std::thread::current().id())
                    })
                })
            })
            .collect();
        assert!(eventually(|| lock(&shared.queue).jobs.len() == n));
        gate.open();
        first.join().unwrap().unwrap();
        let mut per_runner: std::collections::HashMap<_, usize> = Default::default();
        for h in writers {
            *per_runner.entry(h.join().unwrap().unwrap()).or_default() += 1;
        }
        assert!(
            per_runner.values().all(|&k| k <= super::MAX_BATCH),
            "{per_runner:?}"
        );
        assert_eq!(project_ids(&path).len(), n + 1);
    }

    #[test]
    fn concurrent_writes_commit_together_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        Store::open(&crate::store::Location::from(&path), OpenMode::Create).unwrap();
        let n = 12;
        let barrier = Arc::new(Barrier::new(n));
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let mut store =
                        Store::open(&crate::store::Location::from(&path), OpenMode::Existing)
                            .unwrap();
                    barrier.wait();
                    store.write_grouped(move |tx| {
                        tx.create_project(&format!("P{i}"), "", "")?;
                        if i % 3 == 0 {
                            return Err(Error::bad("refused"));
                        }
                        Ok(i)
                    })
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for (i, r) in results.iter().enumerate() {
            match r {
                Ok(v) => assert_eq!(*v, i),
                Err(e) => assert!(i % 3 == 0 && e.to_string() == "refused", "{i}: {e}"),
            }
        }
        let store = Store::open(&crate::store::Location::from(&path), OpenMode::Existing).unwrap();
        let ids: Vec<String> = store
            .read()
            .list_projects(None)
            .unwrap()
            .into_iter()
            .map(|p| p.project.id)
            .collect();
        assert_eq!(ids.len(), 8, "the refused writes left nothing: {ids:?}");
        assert!(ids
            .iter()
            .all(|id| id[1..].parse::<usize>().unwrap() % 3 != 0));
    }
}
