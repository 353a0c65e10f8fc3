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
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
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
    /// Deadline for reading a request body; also how long a client may take
    /// nothing of an answer being written to it before its connection closes.
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

/// A server-side TLS configuration (certificate chain and key).
pub type Tls = Arc<rustls::ServerConfig>;

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
    tls: Option<Tls>,
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
    rt.block_on(accept_loop(listener, handler, limits, tls))
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    handler: Handler,
    limits: Limits,
    tls: Option<Tls>,
) -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let limits = Arc::new(limits);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    // Tells TLS handshakes still in progress that we are stopping.
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
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
        // A client that stops reading its answers frees its slot in time.
        let stream = WriteDeadline::new(stream, limits.body_timeout);
        let handler = handler.clone();
        let limits = limits.clone();
        let watcher = graceful.watcher();
        let Some(acceptor) = acceptor.clone() else {
            tokio::spawn(async move {
                connection(stream, peer, handler, limits, false, watcher).await;
                drop(permit);
            });
            continue;
        };
        let mut stopping = stopping_rx.clone();
        tokio::spawn(async move {
            let handshake = tokio::select! {
                h = tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)) => h,
                _ = stopping.changed() => return,
            };
            match handshake {
                Ok(Ok(tls_stream)) => {
                    connection(tls_stream, peer, handler, limits, true, watcher).await
                }
                Ok(Err(e)) => eprintln!("{} TLS handshake failed: {e}", peer.ip()),
                Err(_) => eprintln!("{} TLS handshake timed out", peer.ip()),
            }
            drop(permit);
        });
    }
    drop(listener);
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
    handler: Handler,
    limits: Arc<Limits>,
    https: bool,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = limits.header_timeout;
    let svc = service_fn(move |req| handle(req, peer, handler.clone(), limits.clone(), https));
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
    https: bool,
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
    // Behind our own TLS the scheme is known: a client's X-Forwarded-Proto
    // does not get a say (absolute URLs in responses must say https).
    let mut headers: Vec<(String, String)> = parts
        .headers
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
        headers.push(("X-Forwarded-Proto".to_owned(), "https".to_owned()));
    }
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
