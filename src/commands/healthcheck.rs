//! `healthcheck [--url]` (SPEC 11.2): exit 0 when healthy, 1 when not, with
//! one line saying which; for container images without curl.

use crate::error::{Error, Result};
use crate::store::Location;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long a probe waits in all.
const WAIT: Duration = Duration::from_secs(3);

pub fn run(db: &Location, url: Option<&str>) -> Result<()> {
    let verdict = match url {
        Some(url) => probe(url),
        None => crate::store::health(db, Duration::from_secs(1))
            .map(|took| format!("database {db} answered in {} ms", took.as_millis())),
    };
    match verdict {
        Ok(line) => {
            println!("healthy: {line}");
            Ok(())
        }
        Err(why) => Err(Error::Unavailable(format!("unhealthy: {why}"))),
    }
}

/// GET `url` over plain HTTP: healthy on 200.
fn probe(url: &str) -> std::result::Result<String, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("--url {url:?}: an http:// URL (a TLS server: probe a plain listener, or use curl)")
    })?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("{hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("{hostport} names no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, WAIT).map_err(|e| format!("{url}: {e}"))?;
    s.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nAccept: application/health+json, application/json;q=0.9\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{url}: {e}"))?;
    let mut answer = Vec::new();
    s.take(64 * 1024)
        .read_to_end(&mut answer)
        .map_err(|e| format!("{url}: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    let status = text.split_whitespace().nth(1).unwrap_or("");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).trim();
    match status {
        "200" => Ok(format!("{url} answered 200 {body}")),
        "" => Err(format!("{url}: no HTTP answer")),
        other => Err(format!("{url} answered {other} {body}")),
    }
}
