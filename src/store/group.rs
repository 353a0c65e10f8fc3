//! Group commit: concurrent writes from many handler threads share one
//! transaction and one fsync.
//!
//! With `synchronous=FULL` every commit waits for the disk, and SQLite has
//! one writer at a time, so eight clients PUTting at once would each wait
//! for seven fsyncs. Here a writer queues its job; the first writer to find
//! no batch running becomes the leader and runs every queued job in one
//! transaction, each under its own savepoint (a failing job is rolled back
//! alone), commits once, then hands each job its result. Nothing is
//! acknowledged before the commit that holds it.

use super::{Store, Tx, WRITE_LOCK};
use crate::error::{Error, Result};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce(&Tx<'_>) -> Result<()> + Send>;

struct Pending {
    job: Job,
    done: mpsc::Sender<Result<()>>,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Pending>,
    leading: bool,
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    jobs: Vec::new(),
    leading: false,
});

fn queue() -> std::sync::MutexGuard<'static, Queue> {
    QUEUE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Clears the leader flag however the leader leaves (even by a panic), so
/// that the next writer can lead.
struct Leading;

impl Drop for Leading {
    fn drop(&mut self) {
        queue().leading = false;
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
        let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let (done, result) = mpsc::channel();
        let job: Job = Box::new(move |tx| {
            let value = f(tx)?;
            *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
            Ok(())
        });
        let lead = {
            let mut q = queue();
            q.jobs.push(Pending { job, done });
            !std::mem::replace(&mut q.leading, true)
        };
        if lead {
            let _leading = Leading;
            loop {
                let batch = std::mem::take(&mut queue().jobs);
                if batch.is_empty() {
                    break;
                }
                self.run_batch(batch);
            }
        }
        result
            .recv()
            .map_err(|_| Error::Database("the write was interrupted".into()))??;
        let value = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        value.ok_or_else(|| Error::Database("the write produced no result".into()))
    }

    fn run_batch(&mut self, batch: Vec<Pending>) {
        let _guard = WRITE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.path.display().to_string();
        let db_error = |e: rusqlite::Error| Error::Database(format!("database {path}: {e}"));
        let mut tx = match self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                let msg = db_error(e).to_string();
                for p in batch {
                    let _ = p.done.send(Err(Error::Database(msg.clone())));
                }
                return;
            }
        };
        let mut results = Vec::with_capacity(batch.len());
        for Pending { job, done } in batch {
            let outcome = match tx.savepoint() {
                Ok(mut sp) => {
                    let r = job(&Tx(&sp));
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
                    let _ = done.send(outcome);
                }
            }
            Err(e) => {
                let msg = db_error(e).to_string();
                for (done, outcome) in results {
                    let _ = done.send(outcome.and(Err(Error::Database(msg.clone()))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::error::Error;
    use crate::store::{OpenMode, Store};
    use std::sync::{Arc, Barrier};

    #[test]
    fn concurrent_writes_commit_together_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        Store::open(&path, OpenMode::Create).unwrap();
        let n = 12;
        let barrier = Arc::new(Barrier::new(n));
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let mut store = Store::open(&path, OpenMode::Existing).unwrap();
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
        let store = Store::open(&path, OpenMode::Existing).unwrap();
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
