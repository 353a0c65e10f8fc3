//! `serve --metrics-bind` (SPEC 11.2): the Prometheus exposition on a
//! listener of its own, off by default (behind a reverse proxy an address
//! check would see only the proxy), and the figures read on a timer rather
//! than per scrape: records in the store, the PostgreSQL pool.

use crate::store::{Durability, Location, OpenMode, Store};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Scrapes answered at once at most (each on a thread of its own).
const MOST_AT_ONCE: usize = 4;

/// Serves the exposition on `listener` and keeps the timed figures fresh.
pub fn start(listener: TcpListener, db: Location, durability: Durability) {
    std::thread::spawn(move || refresh(db, durability));
    static BUSY: AtomicUsize = AtomicUsize::new(0);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            if BUSY.fetch_add(1, Ordering::AcqRel) >= MOST_AT_ONCE {
                BUSY.fetch_sub(1, Ordering::AcqRel);
                continue; // dropped: a scraper tries again
            }
            std::thread::spawn(move || {
                let _ = answer(stream);
                BUSY.fetch_sub(1, Ordering::AcqRel);
            });
        }
    });
}

/// One request: `GET /metrics` gets the text; anything else 404 or 405.
fn answer(mut s: TcpStream) -> std::io::Result<()> {
    // Five seconds for the whole request head, however it trickles in.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        s.set_read_timeout(Some(left))?;
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, body) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", crate::metrics::get().encode()),
        ("GET" | "HEAD", _) => ("404 Not Found", "metrics are at /metrics\n".to_string()),
        _ => ("405 Method Not Allowed", "GET /metrics\n".to_string()),
    };
    // prometheus-client writes OpenMetrics text (which Prometheus reads).
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        s.write_all(body.as_bytes())?;
    }
    s.flush()
}

/// Records in the store every minute, the pool every five seconds.
fn refresh(db: Location, durability: Durability) {
    let m = crate::metrics::get();
    let mut tick = 0u64;
    loop {
        if let Some((open, idle)) = crate::store::pool_state(&db) {
            for (state, n) in [("idle", idle), ("in_use", open.saturating_sub(idle))] {
                m.pool_connections
                    .get_or_create(&crate::metrics::PoolLabels {
                        state: state.into(),
                    })
                    .set(n as i64);
            }
        }
        if tick.is_multiple_of(12) {
            let count = Store::open_with(&db, OpenMode::Existing, durability).and_then(|mut s| {
                let n = s.read().record_count();
                s.release();
                n
            });
            if let Ok(n) = count {
                m.records.set(n);
            }
        }
        tick += 1;
        std::thread::sleep(Duration::from_secs(5));
    }
}
