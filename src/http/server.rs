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
//!
//! With `--tls-cert`/`--tls-key` every accepted stream is wrapped in TLS
//! (tokio-rustls, rustls 0.23 on ring). The handshake runs inside the
//! connection's task under the header deadline, so a client that never
//! finishes it costs one task and one connection slot, never the accept loop.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

type Resp = hyper::Response<http_body_util::Either<Full<Bytes>, Streamed>>;

/// A response body that arrives in chunks from a handler's reader; an
/// error breaks the response off (no final chunk), so that the client
/// never takes a cut answer for a whole one.
pub struct Streamed(tokio::sync::mpsc::Receiver<io::Result<Bytes>>);

impl Body for Streamed {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| b.map(hyper::body::Frame::data)))
    }
}

/// What runs each request: rouille's types, on a blocking thread.
pub trait Service: Send + Sync + 'static {
    /// Called with the request's head (an empty body) before a body is
    /// read: `Some` answers at once, and the body is then read and thrown
    /// away (bounded) so that the client, still sending, can read the
    /// answer. Never called for requests without a body.
    fn admit(&self, head: &rouille::Request) -> Option<rouille::Response>;
    /// Answers a request whose body has been read whole.
    fn handle(&self, req: &rouille::Request) -> rouille::Response;
    /// The template of the route a URL names, for metrics and logs (never
    /// the raw path: its project and label are the callers' data).
    fn route(&self, _url: &str) -> String {
        "other".into()
    }
}

pub type Handler = Arc<dyn Service>;

/// A handler that takes every body (tests, and services with no admission).
impl<F> Service for F
where
    F: Fn(&rouille::Request) -> rouille::Response + Send + Sync + 'static,
{
    fn admit(&self, _head: &rouille::Request) -> Option<rouille::Response> {
        None
    }
    fn handle(&self, req: &rouille::Request) -> rouille::Response {
        self(req)
    }
}

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
    /// Deadline for reading a request body; also how long a client may take
    /// nothing of an answer being written to it before its connection closes.
    pub body_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// One JSON object per request in the log (`--log-format json`).
    pub json_log: bool,
    /// Bytes of request bodies held in memory at once, over all
    /// connections; a body waits for its share (at least `max_body`).
    pub body_budget: usize,
    /// Bytes of an unwanted body (refused, or over `max_body`) read and
    /// thrown away so that its client can read the answer; a longer one
    /// has its connection closed.
    pub discard_limit: u64,
    /// How long the work of one request may run (SPEC 7.6).
    pub query_timeout: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
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
            json_log: false,
            body_budget: 64 * 1024 * 1024,
            discard_limit: 256 * 1024 * 1024,
            query_timeout: Duration::from_secs(10),
            trusted_proxies: Vec::new(),
        }
    }
}

/// A server-side TLS configuration (certificate chain and key).
pub type Tls = Arc<rustls::ServerConfig>;

/// The TLS pair being served and where it is read from again on SIGHUP
/// (SPEC 11.3: a certbot renewal without a restart).
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub config: Tls,
}

/// When the first certificate of a PEM chain expires (Unix time).
pub fn not_after(cert: &Path) -> Option<i64> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::pem_file_iter(cert)
        .ok()?
        .next()?
        .ok()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

/// Tells systemd (when it started us with `Type=notify`) how we are; a
/// failure to tell is no reason to stop serving.
fn tell_systemd(state: &[sd_notify::NotifyState<'_>]) {
    let _ = sd_notify::notify(false, state);
}

/// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or
/// SEC1) into a TLS configuration; a clear error names the file at fault.
pub fn tls_config(cert: &Path, key: &Path) -> crate::error::Result<Tls> {
    use crate::error::Error;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| Error::bad(format!("--tls-cert {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(Error::bad(format!(
            "--tls-cert {}: no PEM certificate in the file",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Error::bad(format!("--tls-key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::bad(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::bad(format!("--tls-cert/--tls-key: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Serves until SIGINT or SIGTERM, then finishes in-flight requests and returns.
pub fn serve(
    listener: std::net::TcpListener,
    handler: Handler,
    limits: Limits,
    tls: Option<TlsFiles>,
) -> io::Result<()> {
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
    let served = rt.block_on(accept_loop(listener, handler, limits, tls));
    // Whatever still runs (work whose client went away, or that outlived
    // the grace period) is told to stop, and not waited for long.
    crate::deadline::stop_all();
    rt.shutdown_timeout(Duration::from_secs(2));
    served
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    handler: Handler,
    limits: Limits,
    tls: Option<TlsFiles>,
) -> io::Result<()> {
    use sd_notify::NotifyState;
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    // The watchdog (`WatchdogSec=`): pinged at half its period while the
    // runtime that accepts connections runs.
    let mut watchdog_usec = 0;
    if sd_notify::watchdog_enabled(false, &mut watchdog_usec) && watchdog_usec > 0 {
        let every = Duration::from_micros(watchdog_usec / 2);
        tokio::spawn(async move {
            loop {
                tell_systemd(&[NotifyState::Watchdog]);
                tokio::time::sleep(every).await;
            }
        });
    }
    let (mut acceptor, tls_files) = match tls {
        Some(t) => (
            Some(tokio_rustls::TlsAcceptor::from(t.config)),
            Some((t.cert, t.key)),
        ),
        None => (None, None),
    };
    // SIGHUP: the TLS pair read again; a bad pair leaves the old one serving.
    let reload = |acceptor: &mut Option<tokio_rustls::TlsAcceptor>| {
        let mut state = vec![NotifyState::Reloading];
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            state.push(now);
        }
        tell_systemd(&state);
        match &tls_files {
            None => eprintln!("sumatra-server: SIGHUP: no TLS pair to reload (serving plain HTTP)"),
            Some((cert, key)) => match tls_config(cert, key) {
                Ok(config) => {
                    *acceptor = Some(tokio_rustls::TlsAcceptor::from(config));
                    crate::metrics::get()
                        .tls_not_after
                        .set(not_after(cert).unwrap_or(0));
                    eprintln!(
                        "sumatra-server: SIGHUP: reloaded the TLS certificate {} and key {}; \
                         new connections use them",
                        cert.display(),
                        key.display()
                    );
                }
                Err(e) => eprintln!(
                    "sumatra-server: SIGHUP: the new TLS pair is refused ({e}); the old one keeps serving"
                ),
            },
        }
        tell_systemd(&[NotifyState::Ready]);
    };
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let ctx = Arc::new(Ctx::new(handler, limits));
    let limits = &ctx.limits;
    // Tells TLS handshakes still in progress that we are stopping.
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    tell_systemd(&[NotifyState::Ready]);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => {
                reload(&mut acceptor);
                continue;
            }
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => {
                reload(&mut acceptor);
                continue;
            }
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
        // A client that stops reading its answers frees its slot in time.
        let stream = WriteDeadline::new(stream, limits.body_timeout);
        let ctx = ctx.clone();
        let watcher = graceful.watcher();
        let Some(acceptor) = acceptor.clone() else {
            tokio::spawn(async move {
                connection(stream, peer, ctx, false, watcher).await;
                drop(permit);
            });
            continue;
        };
        let mut stopping = stopping_rx.clone();
        tokio::spawn(async move {
            let handshake = tokio::select! {
                h = tokio::time::timeout(ctx.limits.header_timeout, acceptor.accept(stream)) => h,
                _ = stopping.changed() => return,
            };
            match handshake {
                Ok(Ok(tls_stream)) => connection(tls_stream, peer, ctx, true, watcher).await,
                Ok(Err(e)) => eprintln!("{} TLS handshake failed: {e}", peer.ip()),
                Err(_) => eprintln!("{} TLS handshake timed out", peer.ip()),
            }
            drop(permit);
        });
    }
    drop(listener);
    tell_systemd(&[NotifyState::Stopping]);
    let _ = stopping_tx.send(true);
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

/// Serves HTTP/1.1 on one connection (plain or TLS) until it closes or the
/// server stops (graceful: the request in flight is finished first).
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    ctx: Arc<Ctx>,
    https: bool,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = ctx.limits.header_timeout;
    let svc = service_fn(move |req| handle(req, peer, ctx.clone(), https));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(io), svc);
    let _ = watcher.watch(conn).await;
}

/// A stream whose writes fail once the peer has taken nothing for `limit`
/// (hyper has no write timeout: a client that never reads would hold its
/// connection, and the answer buffered for it, forever).
struct WriteDeadline<I> {
    io: I,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> WriteDeadline<I> {
    fn new(io: I, limit: Duration) -> Self {
        WriteDeadline {
            io,
            limit,
            stalled: None,
        }
    }

    /// After a write made no progress: pending until the deadline, then an error.
    fn stall<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn track<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => self.stall(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteDeadline<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.track(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.track(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_flush(cx);
        this.track(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_shutdown(cx);
        this.track(cx, r)
    }
}

fn plain(code: u16, msg: &'static str) -> Resp {
    let mut r = hyper::Response::new(http_body_util::Either::Left(Full::new(Bytes::from(
        format!("{{\"error\": \"{msg}\"}}"),
    ))));
    *r.status_mut() = hyper::StatusCode::from_u16(code).expect("a valid status");
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    for (k, v) in SECURITY_HEADERS {
        h.insert(*k, hyper::header::HeaderValue::from_static(v));
    }
    r
}

/// Headers on every answer, the transport's own (408, 413, 503) included:
/// no caching (the client keeps an httplib2 disk cache), no sniffing, no
/// framing by other sites, nothing loaded from elsewhere (the pages need
/// only their own stylesheet).
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("cache-control", "no-store"),
    ("vary", "Accept, Authorization"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    ),
];

fn log(client: std::net::IpAddr, method: &str, path: &str, status: &str, start: Instant) {
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    eprintln!("{client} {method} {path} {status} {ms:.1}ms");
}

/// `--log-format json`: one object per request (SPEC 11.3); the route's
/// template, never the raw path.
fn log_json(
    client: std::net::IpAddr,
    method: &str,
    route: &str,
    status: u16,
    start: Instant,
    user: Option<&str>,
    request_id: &str,
) {
    let line = serde_json::json!({
        "time": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "address": client.to_string(), "method": method, "route": route, "status": status,
        "duration_ms": (start.elapsed().as_secs_f64() * 1e4).round() / 10.0,
        "user": user, "request_id": request_id,
    });
    eprintln!("{line}");
}

/// The request's id: the client's (or proxy's) `X-Request-Id` when it is a
/// short token, or one made here.
fn request_id(headers: &hyper::HeaderMap) -> String {
    if let Some(given) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        let ok = !given.is_empty()
            && given.len() <= 64
            && given
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if ok {
            return given.to_string();
        }
    }
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let mut b = [0u8; 8];
        let _ = getrandom::fill(&mut b);
        u64::from_le_bytes(b)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:016x}",
        seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    )
}

/// Who the handler found the caller to be, for the log.
fn note_user(slot: &std::sync::Mutex<Option<String>>) {
    if let Ok(mut u) = slot.lock() {
        *u = super::take_caller_name();
    }
}

/// A request's line in the log and in the metrics, written once: with its
/// answer's status, or as 499 (nginx's "client closed request") when its
/// client went away first; then its work is told to stop. Dropped with the
/// request's future unless [`Pending::answered`] was called.
struct Pending {
    client: std::net::IpAddr,
    head: Arc<Head>,
    /// The route's template (the metrics and the JSON log never carry the
    /// raw path).
    route: String,
    request_id: String,
    json_log: bool,
    /// Who the handler found the caller to be, once it knows.
    user: Arc<std::sync::Mutex<Option<String>>>,
    start: Instant,
    gone: Arc<std::sync::atomic::AtomicBool>,
    answered: bool,
}

impl Pending {
    fn answered(&mut self, status: u16) {
        self.answered = true;
        self.record(status);
    }

    fn record(&self, status: u16) {
        let h = &self.head;
        crate::metrics::get().request(&h.method, &self.route, status, self.start.elapsed());
        if self.json_log {
            let user = self.user.lock().map(|u| u.clone()).unwrap_or_default();
            log_json(
                self.client,
                &h.method,
                &self.route,
                status,
                self.start,
                user.as_deref(),
                &self.request_id,
            );
        } else {
            let shown = match status {
                CLIENT_GONE => format!("{CLIENT_GONE} (client went away)"),
                s => s.to_string(),
            };
            log(self.client, &h.method, &h.url, &shown, self.start);
        }
    }
}

/// The status logged of a request whose client went away (nginx's 499).
const CLIENT_GONE: u16 = 499;

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.answered {
            self.gone.store(true, std::sync::atomic::Ordering::Relaxed);
            self.record(CLIENT_GONE);
        }
    }
}

/// The client's address: the peer, or behind a trusted proxy the last
/// address of `X-Forwarded-For` that is not a trusted proxy (SPEC 2.7).
fn client_address(
    peer: std::net::IpAddr,
    headers: &hyper::HeaderMap,
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    let peer = peer.to_canonical();
    let forwarded = headers.get_all("x-forwarded-for");
    if forwarded.iter().next().is_none() {
        return peer;
    }
    if !trusted.contains(&peer) {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            eprintln!(
                "sumatra-server: requests from {peer} carry X-Forwarded-For: this server seems to be \
                 behind a proxy, and counts every client as the proxy's address (one failed-login \
                 limit for all); if {peer} is your proxy, start serve with --trust-proxy {peer}"
            )
        });
        return peer;
    }
    // Hops are appended left to right; the nearest are last.
    let hops: Vec<&str> = forwarded
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:5678`.
        let ip = hop
            .parse::<std::net::IpAddr>()
            .or_else(|_| hop.parse::<SocketAddr>().map(|a| a.ip()));
        match ip.map(|ip| ip.to_canonical()) {
            Ok(ip) if trusted.contains(&ip) => client = ip,
            Ok(ip) => return ip,
            Err(_) => return client,
        }
    }
    client
}

/// What every connection shares: the handler, the limits and the memory
/// budget of bodies in flight.
struct Ctx {
    handler: Handler,
    limits: Limits,
    budget: Arc<tokio::sync::Semaphore>,
}

impl Ctx {
    fn new(handler: Handler, mut limits: Limits) -> Ctx {
        // Bodies are acquired whole when their length is known: one of the
        // largest allowed must always fit.
        limits.max_body = limits.max_body.min(u32::MAX as usize);
        limits.body_budget = limits
            .body_budget
            .clamp(limits.max_body, tokio::sync::Semaphore::MAX_PERMITS);
        let budget = Arc::new(tokio::sync::Semaphore::new(limits.body_budget));
        Ctx {
            handler,
            limits,
            budget,
        }
    }
}

/// A request's head as rouille's handler sees it.
struct Head {
    peer: SocketAddr,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn request(&self, body: Vec<u8>) -> rouille::Request {
        rouille::Request::fake_http_from(
            self.peer,
            self.method.clone(),
            self.url.clone(),
            self.headers.clone(),
            body,
        )
    }
}

/// A rouille response: read whole on the handler's thread when its size
/// is known, streamed otherwise.
type Answer = (
    u16,
    Vec<(
        std::borrow::Cow<'static, str>,
        std::borrow::Cow<'static, str>,
    )>,
    Payload,
);

enum Payload {
    Whole(Vec<u8>),
    /// Chunks read by a thread of their own from the handler's reader, as
    /// fast as the client takes them (a client that stops reading is cut
    /// off by the write deadline, which ends the reading too).
    Chunks(tokio::sync::mpsc::Receiver<io::Result<Bytes>>),
}

fn read_answer(resp: rouille::Response) -> io::Result<Answer> {
    let (mut data, size) = resp.data.into_reader_and_size();
    if size.is_none() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let chunk = match data.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => Ok(Bytes::copy_from_slice(&buf[..n])),
                    Err(e) => Err(e),
                };
                let failed = chunk.is_err();
                if tx.blocking_send(chunk).is_err() || failed {
                    break;
                }
            }
        });
        return Ok((resp.status_code, resp.headers, Payload::Chunks(rx)));
    }
    let mut buf = Vec::new();
    data.read_to_end(&mut buf)?;
    Ok((resp.status_code, resp.headers, Payload::Whole(buf)))
}

/// Runs `f` on a handler thread (the bounded blocking pool).
async fn on_handler_thread<F>(f: F) -> Option<Answer>
where
    F: FnOnce() -> Option<io::Result<Answer>> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Some(Ok(answer))) => Some(answer),
        Ok(None) => None,
        Ok(Some(Err(_))) | Err(_) => Some(json_error(500, "internal error")),
    }
}

/// Why a body was not read.
enum BodyRefused {
    Status(u16, &'static str),
    /// Over the size limit: the rest is still to be thrown away.
    TooLarge(Incoming),
    /// No share of the budget in time: nothing read, all to throw away.
    Busy(Incoming),
}

/// Reads a body within the size limit, the deadline and the memory budget.
/// The permit holds the body's share of the budget until it is dropped.
/// A body's share of the budget, counted in the metrics while held.
struct BudgetShare(tokio::sync::OwnedSemaphorePermit);

impl BudgetShare {
    fn new(p: tokio::sync::OwnedSemaphorePermit) -> BudgetShare {
        crate::metrics::get()
            .body_budget_in_use
            .inc_by(p.num_permits() as i64);
        BudgetShare(p)
    }
}

impl Drop for BudgetShare {
    fn drop(&mut self) {
        crate::metrics::get()
            .body_budget_in_use
            .dec_by(self.0.num_permits() as i64);
    }
}

async fn read_body(mut body: Incoming, ctx: &Ctx) -> Result<(Vec<u8>, BudgetShare), BodyRefused> {
    let deadline = tokio::time::Instant::now() + ctx.limits.body_timeout;
    let max = ctx.limits.max_body;
    let declared = body.size_hint().exact().map(|n| n as usize);
    // Every body takes its whole share before a byte is read (its length,
    // or the largest allowed when it does not say), so that no upload ever
    // holds part of the budget while it waits for the rest.
    let share = declared.unwrap_or(max) as u32;
    let permit =
        match tokio::time::timeout_at(deadline, ctx.budget.clone().acquire_many_owned(share)).await
        {
            Ok(Ok(p)) => BudgetShare::new(p),
            _ => return Err(BodyRefused::Busy(body)),
        };
    let mut buf = Vec::with_capacity(declared.unwrap_or(0));
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(BodyRefused::Status(
                    408,
                    "the request body took too long to arrive",
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                return Err(BodyRefused::Status(
                    400,
                    "the request body could not be read",
                ))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        // Past a declared length hyper stops; past the limit, we do.
        if buf.len() + data.len() > max {
            return Err(BodyRefused::TooLarge(body));
        }
        buf.extend_from_slice(&data);
    }
    Ok((buf, permit))
}

/// Reads and throws away the rest of a body nobody wants, bounded in bytes
/// and time, so that a client still sending it can read the answer (the
/// Python client sends a whole body before reading: a connection closed
/// under it is a broken pipe, not a 413). A client waiting for
/// `100 Continue` has sent nothing: its body is left unread.
fn discard(mut body: Incoming, ctx: &Ctx, expects_continue: bool) {
    let limit = ctx.limits.discard_limit;
    if expects_continue || body.size_hint().lower() > limit {
        return; // dropped: hyper closes the connection after the answer
    }
    let timeout = ctx.limits.body_timeout;
    tokio::spawn(async move {
        let mut seen = 0u64;
        let _ = tokio::time::timeout(timeout, async {
            while let Some(Ok(frame)) = body.frame().await {
                if let Some(data) = frame.data_ref() {
                    seen += data.len() as u64;
                    if seen > limit {
                        break;
                    }
                }
            }
        })
        .await;
    });
}

async fn handle(
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    ctx: Arc<Ctx>,
    https: bool,
) -> Result<Resp, Infallible> {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let client = client_address(peer.ip(), &parts.headers, &ctx.limits.trusted_proxies);
    let head = Arc::new(Head {
        peer: SocketAddr::new(client, peer.port()),
        method: parts.method.as_str().to_owned(),
        url: parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
        headers: request_headers(&parts.headers, https),
    });
    // Raised if the client goes away; each piece of work's clock starts
    // on its handler thread (a body's upload or a wait for a thread does
    // not count against the query deadline).
    let gone = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let timeout = ctx.limits.query_timeout;
    let user: Arc<std::sync::Mutex<Option<String>>> = Default::default();
    let mut pending = Pending {
        client,
        head: head.clone(),
        route: ctx.handler.route(&head.url),
        request_id: request_id(&parts.headers),
        json_log: ctx.limits.json_log,
        user: user.clone(),
        start,
        gone: gone.clone(),
        answered: false,
    };
    crate::metrics::get().in_flight.inc();
    struct InFlight;
    impl Drop for InFlight {
        fn drop(&mut self) {
            crate::metrics::get().in_flight.dec();
        }
    }
    let _in_flight = InFlight;
    let mut finish = |(status, mut headers, buf): Answer| {
        pending.answered(status);
        headers.push(("X-Request-Id".into(), pending.request_id.clone().into()));
        Ok(response(status, &headers, buf, https))
    };
    let expects_continue = parts
        .headers
        .get(hyper::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if body.size_hint().lower() > ctx.limits.max_body as u64 {
        discard(body, &ctx, expects_continue);
        return finish(json_error(413, "the request body is too large"));
    }
    if !body.is_end_stream() {
        // Who is asking, and may they? Before a byte of the body is read.
        let (c, h, g, u) = (ctx.clone(), head.clone(), gone.clone(), user.clone());
        let verdict = on_handler_thread(move || {
            crate::deadline::within(crate::deadline::Budget::sharing(timeout, g), || {
                let _ = super::take_caller_name();
                let resp = c.handler.admit(&h.request(Vec::new()));
                note_user(&u);
                Some(read_answer(resp?))
            })
        })
        .await;
        if let Some(answer) = verdict {
            discard(body, &ctx, expects_continue);
            return finish(answer);
        }
    }
    let (bytes, permit) = match read_body(body, &ctx).await {
        Ok(x) => x,
        Err(BodyRefused::Status(code, msg)) => return finish(json_error(code, msg)),
        Err(BodyRefused::TooLarge(rest)) => {
            discard(rest, &ctx, false);
            return finish(json_error(413, "the request body is too large"));
        }
        Err(BodyRefused::Busy(unread)) => {
            discard(unread, &ctx, expects_continue);
            return finish(json_error(
                503,
                "the server is receiving too many uploads at once; try again",
            ));
        }
    };
    let (c, h, u) = (ctx.clone(), head.clone(), user.clone());
    let answer = on_handler_thread(move || {
        crate::deadline::within(crate::deadline::Budget::sharing(timeout, gone), || {
            let _ = super::take_caller_name();
            let resp = c.handler.handle(&h.request(bytes));
            note_user(&u);
            drop(permit);
            Some(read_answer(resp))
        })
    })
    .await
    .expect("handle always answers");
    finish(answer)
}

/// The request's headers for rouille. Behind our own TLS the scheme is
/// known: a client's X-Forwarded-Proto does not get a say (absolute URLs
/// in responses must say https, and the same-origin check must see it).
fn request_headers(headers: &hyper::HeaderMap, https: bool) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| !(https && k.as_str().eq_ignore_ascii_case("x-forwarded-proto")))
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if https {
        out.push(("X-Forwarded-Proto".to_owned(), "https".to_owned()));
    }
    out
}

/// An answer of the transport's own: `{"error": "..."}`, with the
/// headers every answer carries.
fn json_error(code: u16, msg: &'static str) -> Answer {
    let mut headers: Vec<(
        std::borrow::Cow<'static, str>,
        std::borrow::Cow<'static, str>,
    )> = vec![(
        "Content-Type".into(),
        "application/json; charset=utf-8".into(),
    )];
    headers.extend(
        SECURITY_HEADERS
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into())),
    );
    if code == 503 {
        headers.push(("Retry-After".into(), "1".into()));
    }
    (
        code,
        headers,
        Payload::Whole(format!("{{\"error\": \"{msg}\"}}").into_bytes()),
    )
}

fn response(
    status: u16,
    headers: &[(
        std::borrow::Cow<'static, str>,
        std::borrow::Cow<'static, str>,
    )],
    body: Payload,
    https: bool,
) -> Resp {
    let mut b = hyper::Response::builder().status(status);
    for (k, v) in headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("Content-Length"))
    {
        b = b.header(k.as_ref(), v.as_ref());
    }
    if https {
        // Browsers that reached us over TLS come back over TLS only.
        b = b.header(hyper::header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    let body = match body {
        Payload::Whole(bytes) => http_body_util::Either::Left(Full::new(Bytes::from(bytes))),
        Payload::Chunks(rx) => http_body_util::Either::Right(Streamed(rx)),
    };
    b.body(body)
        .unwrap_or_else(|_| plain(500, "bad response header"))
}
