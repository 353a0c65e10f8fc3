//! The transport: hyper 1 on tokio, carrying rouille's `Request` and
//! `Response` to and from a blocking handler.
//!
//! rouille's own server (tiny_http underneath) starves keep-alive connections,
//! stalls large responses on delayed ACKs, has no timeouts or header limits and
//! dies when it runs out of file descriptors (`notes-rouille.md`). This front
//! end keeps rouille's request/response types and replaces the transport:
//! every connection is a task, TCP_NODELAY is set, headers have a size limit
//! and a deadline, bodies a size limit and a deadline, handlers run on a
//! bounded pool of blocking threads, and SIGINT/SIGTERM stop accepting, finish
//! what is in flight and return.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Resp = hyper::Response<Full<Bytes>>;

/// What runs each request: rouille's types, on a blocking thread.
pub type Handler = Arc<dyn Fn(&rouille::Request) -> rouille::Response + Send + Sync>;

#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body in bytes (larger: 413).
    pub max_body: usize,
    /// Threads that run handlers at once.
    pub workers: usize,
    /// Connections open at once; the accept loop waits for a free slot.
    pub max_connections: usize,
    /// Deadline for a request's header block (also closes idle keep-alive connections).
    pub header_timeout: Duration,
    /// Deadline for reading a request body.
    pub body_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 16 * 1024 * 1024,
            workers: 16,
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Serves until SIGINT or SIGTERM, then finishes in-flight requests and returns.
pub fn serve(listener: std::net::TcpListener, handler: Handler, limits: Limits) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(limits.workers.max(1))
        .enable_all()
        .build()?;
    listener.set_nonblocking(true)?;
    let listener = {
        let _guard = rt.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    rt.block_on(accept_loop(listener, handler, limits))
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    handler: Handler,
    limits: Limits,
) -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let limits = Arc::new(limits);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: say so, breathe, go on accepting.
                eprintln!("sumatra-server: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let limits2 = limits.clone();
        let svc = service_fn(move |req| handle(req, peer, handler.clone(), limits2.clone()));
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    eprintln!("sumatra-server: shutting down, finishing requests in flight");
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!("sumatra-server: some connections did not finish in time");
    }
    eprintln!("sumatra-server: stopped");
    Ok(())
}

fn plain(code: u16, msg: &'static str) -> Resp {
    let mut r = hyper::Response::new(Full::new(Bytes::from(format!("{{\"error\": \"{msg}\"}}"))));
    *r.status_mut() = hyper::StatusCode::from_u16(code).expect("a valid status");
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

fn log(peer: SocketAddr, method: &str, path: &str, status: u16, start: Instant) {
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    eprintln!("{} {method} {path} {status} {ms:.1}ms", peer.ip());
}

async fn handle(
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    handler: Handler,
    limits: Arc<Limits>,
) -> Result<Resp, Infallible> {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let url = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let early = |code, msg| {
        log(peer, &method, &url, code, start);
        Ok(plain(code, msg))
    };
    if req.body().size_hint().lower() > limits.max_body as u64 {
        return early(413, "the request body is too large");
    }
    let (parts, body) = req.into_parts();
    let collected = tokio::time::timeout(
        limits.body_timeout,
        Limited::new(body, limits.max_body).collect(),
    )
    .await;
    let body = match collected {
        Err(_) => return early(408, "the request body took too long to arrive"),
        Ok(Ok(c)) => c.to_bytes().to_vec(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            return early(413, "the request body is too large")
        }
        Ok(Err(_)) => return early(400, "the request body could not be read"),
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let (m2, u2) = (method.clone(), url.clone());
    let out = tokio::task::spawn_blocking(move || {
        let rq = rouille::Request::fake_http_from(peer, m2, u2, headers, body);
        let resp = handler(&rq);
        let (mut data, _) = resp.data.into_reader_and_size();
        let mut buf = Vec::new();
        data.read_to_end(&mut buf)
            .map(|_| (resp.status_code, resp.headers, buf))
    })
    .await;
    let Ok(Ok((status, headers, buf))) = out else {
        return early(500, "internal error");
    };
    log(peer, &method, &url, status, start);
    let mut b = hyper::Response::builder().status(status);
    for (k, v) in headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("Content-Length"))
    {
        b = b.header(k.as_ref(), v.as_ref());
    }
    Ok(b.body(Full::new(Bytes::from(buf)))
        .unwrap_or_else(|_| plain(500, "bad response header")))
}
