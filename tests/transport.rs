//! Regression tests for the transport traps measured in notes-rouille.md
//! (issue 6): each would fail on rouille's own tiny_http server.

use crate::util::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Reads one response (status, body) from a keep-alive connection.
fn read_response(r: &mut BufReader<TcpStream>) -> (u16, Vec<u8>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut len = 0;
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (status, body)
}

fn fixture_server() -> (TestDb, Server) {
    let db = TestDb::new();
    db.ok(&["loaddata", "haggling", "permissions"]);
    let s = Server::start(&db, &[]);
    (db, s)
}

/// tiny_http served a burst of keep-alive connections with a few threads and
/// left the rest unread until others closed (notes §1).
#[test]
fn a_burst_of_keep_alive_connections_is_served() {
    let (_db, s) = fixture_server();
    let req = b"GET /records/TestProject2/20141013-172504/ HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut conns: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(s.addr()).unwrap())
        .collect();
    for c in &mut conns {
        c.write_all(req).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for c in conns {
        c.set_read_timeout(Some(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ))
        .unwrap();
        let mut r = BufReader::new(c);
        let (status, body) = read_response(&mut r);
        assert_eq!(status, 200);
        assert!(body.len() > 1000);
    }
}

/// Without TCP_NODELAY every keep-alive response over ~1 KB waited ~40 ms for
/// a delayed ACK (notes §2): 20 of them took over 800 ms.
#[test]
fn large_keep_alive_responses_do_not_wait_for_delayed_acks() {
    let (_db, s) = fixture_server();
    let auth = basic("testuser", "abc123");
    let c = TcpStream::connect(s.addr()).unwrap();
    c.set_nodelay(true).unwrap();
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    let req = format!(
        "GET /records/TestProject/haggling/ HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\n\r\n"
    );
    // Warm up: verifies the password once (then cached).
    w.write_all(req.as_bytes()).unwrap();
    assert_eq!(read_response(&mut r).0, 200);
    let start = Instant::now();
    for _ in 0..20 {
        w.write_all(req.as_bytes()).unwrap();
        let (status, body) = read_response(&mut r);
        assert_eq!(status, 200);
        assert!(body.len() > 2000, "a record of a few KB");
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(800),
        "20 keep-alive responses took {took:?}"
    );
}

/// tiny_http read headers without a limit (notes §5).
#[test]
fn oversized_headers_are_refused_and_the_server_lives() {
    let (_db, s) = fixture_server();
    let mut c = TcpStream::connect(s.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = c.write_all(b"GET /records/ HTTP/1.1\r\nHost: t\r\n");
    let filler = format!("X-Filler: {}\r\n", "a".repeat(8000));
    for _ in 0..40 {
        if c.write_all(filler.as_bytes()).is_err() {
            break;
        }
    }
    // The 431 arrives before the connection closes (a read after it may
    // then see the reset: the data read before it is kept).
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert!(!buf.is_empty(), "closed without an answer");
    let (status, _, _) = parse_response(&buf);
    assert_eq!(status, 431);
    let r = request("GET", &s.url(""), &[("Accept", "application/json")], None);
    assert_eq!(r.status, 200);
}
