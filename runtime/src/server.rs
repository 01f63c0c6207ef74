//! The proxy listener: accepts connections, speaks HTTP/1.1 and HTTP/2 (h2c with prior
//! knowledge), routes each request through the generated [`Gateway`], adds Kong's downstream
//! headers, and drains gracefully on shutdown.
//!
//! [`serve`] is the binary's entry point (env contract in DESIGN.md); [`run`] is the same
//! server on listeners the caller bound, stopped by a future — what tests use:
//!
//! ```no_run
//! # async fn demo<G: kiln_runtime::Gateway>(gw: std::sync::Arc<G>) -> std::io::Result<()> {
//! use kiln_runtime::{run, ServerOptions};
//! let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let status = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(run(gw, proxy, status, async { let _ = stopped.await; }, ServerOptions::default()));
//! // … send requests …
//! let _ = stop.send(());
//! server.await??; // returns once in-flight requests finished (or the drain timeout passed)
//! # Ok(()) }
//! ```
//!
//! Per request: the host comes from `Host` (HTTP/2: `:authority`) split as Kong does; the path
//! is normalised (400 when nginx would refuse it); no route → 404; an https-only route over
//! plain http → 426 or the configured redirect; otherwise [`Gateway::handle`] runs with a
//! fresh [`Ctx`]. Every answer carries `X-Kong-Request-Id`; proxied answers get `Via`,
//! `X-Kong-Upstream-Latency`, `X-Kong-Proxy-Latency` and `Server` when the upstream sent
//! none; gateway-generated ones get `Server` and `X-Kong-Response-Latency`.

use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    panic::AssertUnwindSafe,
    pin::Pin,
    process::ExitCode,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use http::{header, HeaderValue, Version};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::{body::Incoming, server::conn::http2, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinSet,
};

use crate::{
    ctx::{Buffers, Ctx},
    path,
    proxy::X_KONG_REQUEST_ID,
    request_id::{self, RequestId},
    response,
    router::RouteRequest,
    status::{serve_status, Stats},
    upstream_head::UpstreamHead,
    Body, BoxError, Gateway, Request, Response, VERSION,
};

mod h1;

/// Limits and timeouts of the proxy listener.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Longest wait for in-flight requests after shutdown starts; connections still open then
    /// are cut. `KILN_DRAIN_TIMEOUT_MS`, default 30 s.
    pub drain_timeout: Duration,
    /// Largest request head: the HTTP/1 read buffer (`max_buf_size`, at least 8 KiB; larger
    /// heads get 431) and the HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE`. Default 64 KiB.
    pub max_header_bytes: usize,
    /// HTTP/1: time allowed to receive a whole request head (slowloris). The timer also runs
    /// while a keep-alive connection waits for its next request. Default 60 s (nginx
    /// `client_header_timeout`).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed gracefully (both
    /// HTTP versions). Default 60 s (Kong's `keepalive_timeout`).
    pub idle_timeout: Duration,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`. Default 128.
    pub h2_max_concurrent_streams: u32,
    /// `http` (the TLS listener is not written yet).
    pub scheme: &'static str,
    /// Longest a write to a client may stay blocked (nginx `send_timeout`); then the
    /// connection is closed. Default 60 s.
    pub send_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            drain_timeout: Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            h2_max_concurrent_streams: 128,
            scheme: "http",
            send_timeout: Duration::from_secs(60),
        }
    }
}

pub(crate) static X_KONG_UPSTREAM_LATENCY: header::HeaderName =
    header::HeaderName::from_static("x-kong-upstream-latency");
pub(crate) static X_KONG_PROXY_LATENCY: header::HeaderName =
    header::HeaderName::from_static("x-kong-proxy-latency");
static X_KONG_RESPONSE_LATENCY: header::HeaderName =
    header::HeaderName::from_static("x-kong-response-latency");
const SERVER: HeaderValue = HeaderValue::from_static(concat!("kiln/", env!("CARGO_PKG_VERSION")));
const RESPONSE_VIA: &str = concat!("1.1 kiln/", env!("CARGO_PKG_VERSION"));

/// Starts the gateway: reads the env contract, builds `G`, serves until SIGTERM or SIGINT,
/// drains, and exits 0. Start-up failures print one line on stderr and exit 1.
pub fn serve<G: Gateway>() -> ExitCode {
    match serve_env::<G>() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("kiln: {msg}");
            ExitCode::from(1)
        }
    }
}

/// The env contract of the gateway binary (DESIGN.md).
#[derive(Debug, Clone, PartialEq, Eq)]
struct EnvConfig {
    proxy: SocketAddr,
    status: SocketAddr,
    workers: usize,
    drain: Duration,
}

impl EnvConfig {
    /// Reads the contract through `get` (the process environment in [`serve`]).
    fn read(get: impl Fn(&str) -> Result<Option<String>, String>) -> Result<EnvConfig, String> {
        fn parse<T: std::str::FromStr>(
            get: &impl Fn(&str) -> Result<Option<String>, String>,
            name: &str,
            default: T,
        ) -> Result<T, String> {
            match get(name)? {
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name}={v:?} is not valid")),
                None => Ok(default),
            }
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cfg = EnvConfig {
            proxy: parse(
                &get,
                "KILN_PROXY_LISTEN",
                SocketAddr::from(([0, 0, 0, 0], 8000)),
            )?,
            status: parse(
                &get,
                "KILN_STATUS_LISTEN",
                SocketAddr::from(([127, 0, 0, 1], 8100)),
            )?,
            workers: parse(&get, "KILN_WORKERS", cores)?,
            drain: Duration::from_millis(parse(&get, "KILN_DRAIN_TIMEOUT_MS", 30_000u64)?),
        };
        if cfg.workers == 0 {
            return Err("KILN_WORKERS must be at least 1".into());
        }
        Ok(cfg)
    }
}

fn process_env(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

fn serve_env<G: Gateway>() -> Result<(), String> {
    let cfg = EnvConfig::read(process_env)?;
    crate::resolve::from_env()?;
    let opts = ServerOptions {
        drain_timeout: cfg.drain,
        ..ServerOptions::default()
    };
    crate::pool::set_workers(cfg.workers);
    let rt = worker_runtime()?;
    let gw = {
        let _enter = rt.enter();
        G::init().map_err(|e| format!("start-up failed: {e}"))?
    };
    // Every worker's listener is bound before anything is served: a port that is taken
    // fails the start, not one worker later.
    let mut proxies = Vec::with_capacity(cfg.workers);
    let first = bind_proxy(cfg.proxy, cfg.workers > 1)
        .map_err(|e| format!("cannot listen on {} (KILN_PROXY_LISTEN): {e}", cfg.proxy))?;
    // The bound address: the configured one may have port 0.
    let proxy_addr = first.local_addr().map_or(cfg.proxy, |a| a);
    proxies.push(first);
    for _ in 1..cfg.workers {
        proxies.push(
            bind_proxy(proxy_addr, true)
                .map_err(|e| format!("cannot listen on {proxy_addr} (KILN_PROXY_LISTEN): {e}"))?,
        );
    }
    let server = Arc::new(Server::new(Arc::new(gw), proxy_addr.port(), opts));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut others = Vec::new();
    let mut listeners = proxies.into_iter();
    let main_listener = listeners.next();
    for (i, listener) in listeners.enumerate() {
        let (server, stop) = (server.clone(), stop_rx.clone());
        let worker = i + 1;
        let thread = std::thread::Builder::new()
            .name(format!("kiln-worker-{worker}"))
            .spawn(move || -> Result<(), String> {
                crate::pool::set_worker(worker);
                let rt = worker_runtime()?;
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener)
                        .map_err(|e| format!("worker {worker}: {e}"))?;
                    server.serve(listener, stopped(stop)).await;
                    Ok(())
                })
            })
            .map_err(|e| format!("cannot start worker {worker}: {e}"))?;
        others.push(thread);
    }
    let result = rt.block_on(async move {
        let status_addr = cfg.status;
        let proxy = main_listener
            .ok_or("no listener")
            .and_then(|l| TcpListener::from_std(l).map_err(|_| "cannot register the listener"))
            .map_err(|e| format!("cannot listen on {proxy_addr} (KILN_PROXY_LISTEN): {e}"))?;
        let status = TcpListener::bind(status_addr)
            .await
            .map_err(|e| format!("cannot listen on {status_addr} (KILN_STATUS_LISTEN): {e}"))?;
        let shutdown =
            shutdown_signal().map_err(|e| format!("cannot install signal handlers: {e}"))?;
        let status_addr = status.local_addr().map_or(status_addr, |a| a);
        let info = G::INFO;
        eprintln!(
            "kiln {VERSION}: serving {} (sha256 {}) on http://{proxy_addr}, status on http://{status_addr}, {} workers",
            info.source, info.config_sha256, cfg.workers
        );
        let status_task = tokio::spawn(serve_status(status, server.stats.clone()));
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        server.serve(proxy, stopped(stop_rx)).await;
        // The other workers drain in parallel; the status API answers until they are done.
        let joined = tokio::task::spawn_blocking(move || {
            // Every worker is waited for (they drain in parallel); the first failure is kept.
            let mut result = Ok(());
            for t in others {
                let r = t.join().unwrap_or_else(|_| Err("a worker panicked".into()));
                result = result.and(r);
            }
            result
        })
        .await
        .unwrap_or_else(|_| Err("a worker panicked".into()));
        status_task.abort();
        joined
    });
    result?;
    eprintln!("kiln: drained, exiting");
    Ok(())
}

/// One worker's runtime: a current-thread tokio runtime. Each worker owns its listener
/// (`SO_REUSEPORT`), its connections and its share of the upstream pools, so a request never
/// changes threads and the scheduler needs no cross-thread synchronisation.
fn worker_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// A non-blocking listening socket on `addr`; `shared` sets `SO_REUSEPORT` so that every
/// worker can have its own listener on the same port (the kernel spreads connections).
fn bind_proxy(addr: SocketAddr, shared: bool) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if shared {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Resolves on the first SIGTERM or SIGINT.
fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// What every worker shares: the gateway, the counters, the HTTP settings.
struct Server<G> {
    gw: Arc<G>,
    stats: Arc<Stats>,
    h2: http2::Builder<crate::clock::Spawner>,
    listener_port: u16,
    opts: ServerOptions,
}

impl<G: Gateway> Server<G> {
    fn new(gw: Arc<G>, listener_port: u16, opts: ServerOptions) -> Server<G> {
        let mut h2 = http2::Builder::new(crate::clock::Spawner);
        h2.timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(opts.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(opts.h2_max_concurrent_streams);
        Server {
            gw,
            stats: Arc::new(Stats::new(G::INFO)),
            h2,
            listener_port,
            opts,
        }
    }

    /// Accepts on `proxy` until `shutdown` resolves; then stops accepting (new connections
    /// are refused), lets in-flight requests finish within `opts.drain_timeout`, and cuts
    /// what is left.
    async fn serve(self: &Arc<Self>, proxy: TcpListener, shutdown: impl Future<Output = ()>) {
        let (drain_tx, drain_rx) = watch::channel(false);
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = proxy.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        conns.spawn(crate::clock::scoped(serve_connection(
                            self.clone(),
                            stream,
                            peer,
                            drain_rx.clone(),
                        )));
                    }
                    Err(e) => {
                        // Out of descriptors and the like: back off instead of spinning.
                        eprintln!("kiln: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }

        // Refuse new connections first, then tell probes, then drain.
        drop(proxy);
        self.stats.set_draining();
        let _ = drain_tx.send(true);
        let drained = tokio::time::timeout(self.opts.drain_timeout, async {
            while conns.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        if !drained {
            eprintln!("kiln: drain timeout: closing {} connection(s)", conns.len());
            conns.shutdown().await;
        }
    }
}

/// Serves `proxy` (and the status API on `status`) until `shutdown` resolves; then stops
/// accepting (new connections are refused), lets in-flight requests finish within
/// `opts.drain_timeout`, cuts what is left, and returns.
pub async fn run<G: Gateway>(
    gw: Arc<G>,
    proxy: TcpListener,
    status: TcpListener,
    shutdown: impl Future<Output = ()>,
    opts: ServerOptions,
) -> io::Result<()> {
    let listener_port = proxy.local_addr()?.port();
    let server = Arc::new(Server::new(gw, listener_port, opts));
    let status_task = tokio::spawn(serve_status(status, server.stats.clone()));
    server.serve(proxy, shutdown).await;
    status_task.abort();
    Ok(())
}

/// Requests in flight on one connection, and when the last one ended.
struct Activity {
    active: AtomicUsize,
    /// When the connection was accepted; `last_ns` counts from here.
    origin: Instant,
    last_ns: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            active: AtomicUsize::new(0),
            origin: Instant::now(),
            last_ns: AtomicU64::new(0),
        }
    }

    fn last(&self) -> Instant {
        self.origin + Duration::from_nanos(self.last_ns.load(Ordering::SeqCst))
    }

    fn touch(&self) {
        let since = crate::clock::now().saturating_duration_since(self.origin);
        let ns = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
        self.last_ns.store(ns, Ordering::SeqCst);
    }

    /// Resolves once no request has been in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let deadline = if self.active.load(Ordering::SeqCst) == 0 {
                self.last() + idle
            } else {
                Instant::now() + idle
            };
            tokio::time::sleep_until(deadline.into()).await;
            if self.active.load(Ordering::SeqCst) == 0 && self.last().elapsed() >= idle {
                return;
            }
        }
    }
}

/// Counts a request as in flight until dropped (with the response body, or with the
/// service future if the client went away first).
struct ActiveGuard(Arc<Activity>);

impl ActiveGuard {
    fn new(act: &Arc<Activity>) -> ActiveGuard {
        act.active.fetch_add(1, Ordering::SeqCst);
        ActiveGuard(act.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The response body as sent downstream: the gateway's body plus the in-flight guard.
struct Tracked {
    inner: Body,
    _guard: ActiveGuard,
    _in_flight: crate::status::InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

async fn serve_connection<G: Gateway>(
    sh: Arc<Server<G>>,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut drain: watch::Receiver<bool>,
) {
    if *drain.borrow_and_update() {
        return;
    }
    let wait = sh.opts.idle_timeout.min(sh.opts.header_read_timeout);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    match h1::sniff(&mut stream, &mut buf, wait, &mut drain).await {
        None => {}
        Some(true) => serve_h2(sh, stream, buf.freeze(), peer, drain).await,
        Some(false) => {
            let (read, write) = stream.into_split();
            let limits = h1::Limits {
                max_head: sh.opts.max_header_bytes.max(8192),
                header_read_timeout: sh.opts.header_read_timeout,
                idle_timeout: sh.opts.idle_timeout,
                send_timeout: sh.opts.send_timeout,
            };
            let handler = H1Handler {
                sh: &sh,
                peer,
                scratch: Scratch::default(),
            };
            h1::serve(read, write, buf, &limits, &mut drain, handler).await;
        }
    }
}

/// The gateway's answers on an HTTP/1.1 connection.
struct H1Handler<'s, G> {
    sh: &'s Server<G>,
    peer: SocketAddr,
    scratch: Scratch,
}

/// What of a request's context the next request on the connection reuses (the memory):
/// the normalized path and host strings, and the proxy's buffers.
#[derive(Default)]
struct Scratch {
    normalized: String,
    host: String,
    buffers: Buffers,
}

thread_local! {
    /// The memory of finished HTTP/2 streams, for the next ones on this worker thread (an
    /// HTTP/1.1 connection keeps its own).
    static POOLED: std::cell::RefCell<Vec<Scratch>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Scratch {
    /// Strings longer than this are let go rather than kept for the next request.
    const KEEP: usize = 2048;
    /// Buffers larger than this are let go.
    const KEEP_BUFFER: usize = 16 * 1024;
    /// Most scratch sets a worker thread keeps for HTTP/2 streams: as many streams as
    /// usually run at once on it.
    const POOL_MAX: usize = 64;

    /// A finished stream's memory from this thread's pool, or a new (empty) one.
    fn pooled() -> Scratch {
        POOLED
            .with_borrow_mut(|pool| pool.pop())
            .unwrap_or_default()
    }

    /// Gives this memory to the next stream on this thread (see [`pooled`](Self::pooled)).
    fn pool(self) {
        POOLED.with_borrow_mut(|pool| {
            if pool.len() < Self::POOL_MAX {
                pool.push(self);
            }
        });
    }

    /// Takes the strings and the buffers back from a context whose chain has run (a
    /// proxied response's lines come back later, through [`keep_lines`](Self::keep_lines)).
    fn keep(&mut self, cx: &mut Ctx) {
        for (kept, used) in [
            (&mut self.normalized, &mut cx.normalized_path),
            (&mut self.host, &mut cx.host),
        ] {
            if used.capacity() <= Self::KEEP {
                *kept = std::mem::take(used);
            }
        }
        for (kept, used) in [
            (&mut self.buffers.head, &mut cx.buffers.head),
            (&mut self.buffers.lines, &mut cx.buffers.lines),
        ] {
            if used.capacity() <= Self::KEEP_BUFFER {
                *kept = std::mem::take(used);
            }
        }
    }

    /// Keeps the memory of a response's lines once they were written.
    fn keep_lines(&mut self, head: UpstreamHead) {
        let lines = head.into_buffer();
        if lines.capacity() <= Self::KEEP_BUFFER {
            self.buffers.lines = lines;
        }
    }
}

impl<G: Gateway> h1::Handler for H1Handler<'_, G> {
    type InFlight = crate::status::InFlight;

    async fn handle(
        &mut self,
        req: &mut Request,
        fields: &mut Option<UpstreamHead>,
    ) -> (Response, Self::InFlight) {
        let in_flight = self.sh.stats.start_request();
        let resp = handle(self.sh, self.peer, req, fields, &mut self.scratch).await;
        self.sh.stats.request_served();
        (resp, in_flight)
    }

    fn written(&mut self, fields: UpstreamHead) {
        self.scratch.keep_lines(fields);
    }
}

/// HTTP/2 with prior knowledge (h2c); `prefix` is what was read to tell it apart.
async fn serve_h2<G: Gateway>(
    sh: Arc<Server<G>>,
    stream: TcpStream,
    prefix: Bytes,
    peer: SocketAddr,
    mut drain: watch::Receiver<bool>,
) {
    let act = Arc::new(Activity::new());
    let svc = {
        let sh = sh.clone();
        let act = act.clone();
        service_fn(move |req: http::Request<Incoming>| {
            let guard = ActiveGuard::new(&act);
            let sh = sh.clone();
            // Boxed: hyper moves a stream's future several times before and while spawning
            // it, and this one holds the whole request's state (kilobytes), the box a pointer.
            Box::pin(async move {
                let in_flight = sh.stats.start_request();
                let mut req = req.map(|body| body.map_err(|e| -> BoxError { Box::new(e) }).boxed());
                let mut fields = None;
                let mut scratch = Scratch::pooled();
                let mut resp = handle(&sh, peer, &mut req, &mut fields, &mut scratch).await;
                scratch.pool();
                sh.stats.request_served();
                if let Some(fields) = fields {
                    fields.into_map(resp.headers_mut());
                }
                // Fields whose values repeat from response to response (`Server`,
                // `Content-Type`, `Via`, ...) go into the connection's HPACK table and are
                // sent as an index after the first time. The others go out as literals that
                // are never indexed, as nginx sends every field: a fresh request id, date
                // and latencies in every response would only churn the table.
                for (name, v) in resp.headers_mut().iter_mut() {
                    v.set_sensitive(!repeats(name));
                }
                let (parts, inner) = resp.into_parts();
                Ok::<_, Infallible>(http::Response::from_parts(
                    parts,
                    Tracked {
                        inner,
                        _guard: guard,
                        _in_flight: in_flight,
                    },
                ))
            })
        })
    };
    let io = Prefixed {
        prefix,
        inner: crate::timed_io::TimedIo::new(stream, None, sh.opts.send_timeout),
    };
    let mut conn = std::pin::pin!(sh.h2.serve_connection(TokioIo::new(io), svc));
    // A drain that began while the preface was read.
    let mut closing = false;
    if *drain.borrow_and_update() {
        conn.as_mut().graceful_shutdown();
        closing = true;
    }
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = drain.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = act.idle_for(sh.opts.idle_timeout), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// Response fields whose values usually repeat on a connection: worth an HPACK table entry.
fn repeats(name: &header::HeaderName) -> bool {
    [
        header::SERVER,
        header::CONTENT_TYPE,
        header::VIA,
        header::CACHE_CONTROL,
        header::VARY,
        header::CONTENT_ENCODING,
        header::ACCEPT_RANGES,
        header::X_CONTENT_TYPE_OPTIONS,
        header::X_FRAME_OPTIONS,
        header::STRICT_TRANSPORT_SECURITY,
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
    ]
    .contains(name)
}

/// A connection whose first bytes were already read, given back first.
struct Prefixed<T> {
    prefix: Bytes,
    inner: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.prefix.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let n = this.prefix.len().min(buf.remaining());
        buf.put_slice(&this.prefix.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Headers of a response the gateway produced itself.
fn generated(mut resp: Response, request_id: &RequestId, started: Instant) -> Response {
    let h = resp.headers_mut();
    h.insert(header::SERVER, SERVER);
    h.insert(
        &X_KONG_RESPONSE_LATENCY,
        response::number_value(crate::clock::ms_since(started)),
    );
    h.insert(&X_KONG_REQUEST_ID, request_id.header_value());
    resp
}

/// Headers of a response that came from the upstream. While the upstream's header lines are
/// still lines, the gateway's are added as lines too and they go to `fields`.
fn proxied(mut resp: Response, cx: &mut Ctx, fields: &mut Option<UpstreamHead>) -> Response {
    if let Some(mut head) = cx.upstream_head.take() {
        let set = resp.headers_mut();
        if head
            .add_gateway_fields(set, cx, &SERVER, RESPONSE_VIA)
            .is_some()
        {
            *fields = Some(head);
            return resp;
        }
        head.into_map(set);
    }
    let h = resp.headers_mut();
    if !h.contains_key(header::SERVER) {
        h.insert(header::SERVER, SERVER);
    }
    let via = HeaderValue::from_static(RESPONSE_VIA);
    let via = crate::proxy::appended(h, &header::VIA, &via).unwrap_or(via);
    h.insert(header::VIA, via);
    if let Some(ms) = cx.upstream_latency_ms {
        h.insert(&X_KONG_UPSTREAM_LATENCY, response::number_value(ms));
    }
    if let Some(ms) = cx.proxy_latency_ms {
        h.insert(&X_KONG_PROXY_LATENCY, response::number_value(ms));
    }
    h.insert(&X_KONG_REQUEST_ID, cx.request_id.header_value());
    resp
}

/// One request on the proxy listener. The upstream's header lines of a proxied response may
/// come back in `fields` instead of the response's map ([`crate::upstream_head`]).
async fn handle<G: Gateway>(
    sh: &Server<G>,
    peer: SocketAddr,
    req: &mut Request,
    fields: &mut Option<UpstreamHead>,
    scratch: &mut Scratch,
) -> Response {
    let started = crate::clock::now();
    let request_id = request_id::new();
    // Requests nginx refuses before Kong runs: Kong's error_page handler formats them.
    let bad = || {
        generated(
            response::upstream_error(400, &request_id, req.headers()),
            &request_id,
            started,
        )
    };

    let header_host = match req.headers().get(header::HOST).map(|v| v.to_str()) {
        Some(Ok(h)) => Some(h),
        Some(Err(_)) => return bad(),
        None => None,
    };
    let authority = req.uri().authority().map(|a| a.as_str());
    let raw_host = if req.version() == Version::HTTP_2 {
        authority.or(header_host)
    } else {
        header_host.or(authority)
    };
    let raw_host = match raw_host {
        Some(h) => h,
        None if req.version() == Version::HTTP_11 => return bad(),
        None => "",
    };
    let (host, port) = path::split_host(raw_host);
    let mut normalized = std::mem::take(&mut scratch.normalized);
    if path::normalize_into(req.uri().path(), &mut normalized).is_err() {
        return bad();
    }

    let route_req = RouteRequest {
        method: req.method().as_str(),
        host,
        port: port.unwrap_or(sh.listener_port),
        path: &normalized,
        headers: req.headers(),
    };
    let Some(matched) = sh.gw.route(&route_req) else {
        let resp = response::error(
            404,
            Some("no Route matched with those values"),
            &request_id,
            req.headers(),
        );
        return generated(resp, &request_id, started);
    };
    let Some(route) = sh.gw.routes().get(matched.route as usize) else {
        // A generated-code bug; never a panic on the request path.
        return generated(
            response::error(500, None, &request_id, req.headers()),
            &request_id,
            started,
        );
    };

    if route.https_only && sh.opts.scheme == "http" {
        let resp = match route.https_redirect_status_code {
            code @ (301 | 302 | 307 | 308) => {
                let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
                let location = format!("https://{}{target}", host.to_ascii_lowercase());
                match HeaderValue::from_str(&location) {
                    Ok(loc) => response::redirect(code, loc),
                    Err(_) => response::error(400, None, &request_id, req.headers()),
                }
            }
            _ => {
                let mut resp = response::exit_json(426, "Please use HTTPS protocol");
                let h = resp.headers_mut();
                h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
                h.insert(
                    header::UPGRADE,
                    HeaderValue::from_static("TLS/1.2, HTTP/1.1"),
                );
                resp
            }
        };
        return generated(resp, &request_id, started);
    }

    let route_idx = matched.route;
    let mut cx = Ctx {
        request_id,
        client_addr: peer,
        listener_port: sh.listener_port,
        scheme: sh.opts.scheme,
        normalized_path: normalized,
        route,
        matched,
        started,
        correlation_id: None,
        upstream_latency_ms: None,
        kong_generated: true,
        auth: Default::default(),
        host: {
            let mut owned = std::mem::take(&mut scratch.host);
            owned.clear();
            owned.push_str(host);
            owned
        },
        request_uri: req.uri().clone(),
        http_version: req.version(),
        proxy_latency_ms: None,
        request_origin: req.headers().get(header::ORIGIN).cloned(),
        cors_preflight: false,
        request_body_limit: None,
        token_bucket_headers: None,
        #[cfg(feature = "proxy-cache")]
        proxy_cache: None,
        rate_limiting: None,
        upstream_head: None,
        buffers: std::mem::take(&mut scratch.buffers),
    };

    let resp = {
        // Made where it stays: `let fut = ...; pin!(fut)` would keep two slots of its size
        // in this future, one for the value and one for the pinned move of it.
        let mut fut = std::pin::pin!(sh.gw.handle(route_idx, &mut cx, req));
        // A panicking plugin answers this request with Kong's 500 instead of taking the
        // connection (and every HTTP/2 stream on it) down. The panic hook still reports it.
        std::future::poll_fn(|task| {
            match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(task))) {
                Ok(Poll::Ready(resp)) => Poll::Ready(Some(resp)),
                Ok(Poll::Pending) => Poll::Pending,
                Err(_) => Poll::Ready(None),
            }
        })
        .await
    };
    scratch.keep(&mut cx);
    let Some(resp) = resp else {
        let resp = response::exit_json(500, "An unexpected error occurred");
        return generated(resp, &cx.request_id, cx.started);
    };
    if cx.kong_generated {
        // The gateway's own answer: nothing of an upstream's head belongs on it.
        cx.upstream_head = None;
        generated(resp, &cx.request_id, cx.started)
    } else {
        proxied(resp, &mut cx, fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_repeating_fields_go_into_the_hpack_table() {
        for name in [
            header::SERVER,
            header::CONTENT_TYPE,
            header::VIA,
            header::VARY,
        ] {
            assert!(repeats(&name), "{name}");
        }
        for name in [
            header::DATE,
            header::SET_COOKIE,
            header::CONTENT_LENGTH,
            header::ETAG,
            header::LAST_MODIFIED,
            crate::proxy::X_KONG_REQUEST_ID.clone(),
            X_KONG_UPSTREAM_LATENCY.clone(),
            X_KONG_PROXY_LATENCY.clone(),
            header::HeaderName::from_static("x-ratelimit-remaining-minute"),
        ] {
            assert!(!repeats(&name), "{name}");
        }
    }

    fn env(vars: &[(&str, &str)]) -> Result<EnvConfig, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EnvConfig::read(move |name| {
            Ok(vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        })
    }

    #[test]
    fn env_contract_defaults_and_overrides() {
        let d = env(&[]).expect("defaults");
        assert_eq!(d.proxy, "0.0.0.0:8000".parse().expect("addr"));
        assert_eq!(d.status, "127.0.0.1:8100".parse().expect("addr"));
        assert!(d.workers >= 1);
        assert_eq!(d.drain, Duration::from_millis(30_000));
        let c = env(&[
            ("KILN_PROXY_LISTEN", "127.0.0.1:9000"),
            ("KILN_STATUS_LISTEN", "[::1]:9100"),
            ("KILN_WORKERS", "3"),
            ("KILN_DRAIN_TIMEOUT_MS", "250"),
        ])
        .expect("valid");
        assert_eq!(c.proxy, "127.0.0.1:9000".parse().expect("addr"));
        assert_eq!(c.status, "[::1]:9100".parse().expect("addr"));
        assert_eq!((c.workers, c.drain), (3, Duration::from_millis(250)));
    }

    #[test]
    fn workers_share_the_proxy_port() {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let first = bind_proxy(any, true).expect("bind");
        let addr = first.local_addr().expect("addr");
        let second = bind_proxy(addr, true).expect("a second worker binds the same port");
        assert_eq!(second.local_addr().expect("addr"), addr);
        // Without SO_REUSEPORT the port stays exclusive: a second gateway cannot steal it.
        let alone = bind_proxy(any, false).expect("bind");
        let taken = alone.local_addr().expect("addr");
        assert!(bind_proxy(taken, false).is_err());
        assert!(bind_proxy(taken, true).is_err());
    }

    #[test]
    fn env_contract_rejects_bad_values() {
        for (k, v) in [
            ("KILN_PROXY_LISTEN", "8000"),
            ("KILN_STATUS_LISTEN", "localhost:8100"),
            ("KILN_WORKERS", "0"),
            ("KILN_WORKERS", "-1"),
            ("KILN_DRAIN_TIMEOUT_MS", "30s"),
        ] {
            let err = env(&[(k, v)]).expect_err("invalid value");
            assert!(err.contains("KILN_"), "{err}");
        }
    }
}
