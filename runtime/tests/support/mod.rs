//! In-process harness: a hand-written [`Gateway`], an echo upstream and small clients, all on
//! `127.0.0.1:0`.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Request as HttpRequest, Response as HttpResponse, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kiln_runtime::{
    ctx::MatchInfo,
    proxy::{no_service, proxy, Upstream},
    router::RouteRequest,
    BuildInfo, Ctx, Gateway, Request, Response, RouteSpec, ServerOptions, ServiceSpec,
    StartupError, TargetSpec,
};
use serde_json::Value;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot, Semaphore},
    task::JoinHandle,
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs a whole test under one deadline, so every await in it is bounded.
pub async fn within<T>(fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(60), fut).await {
        Ok(v) => v,
        Err(_) => panic!("test timed out"),
    }
}

// ---------------------------------------------------------------- gateway

/// One hand-written routing rule: optional exact host, optional path prefix.
#[derive(Clone, Debug)]
pub struct Rule {
    pub host: Option<&'static str>,
    pub prefix: Option<&'static str>,
    pub route: RouteSpec,
}

pub fn route_spec(service: Option<u32>) -> RouteSpec {
    RouteSpec {
        id: "00000000-0000-0000-0000-000000000001",
        name: None,
        service,
        strip_path: true,
        preserve_host: false,
        https_only: false,
        https_redirect_status_code: 426,
        request_buffering: true,
        response_buffering: true,
    }
}

pub fn service_spec(path: Option<&'static str>, targets: Vec<(u16, u32)>) -> ServiceSpec {
    let targets: Vec<TargetSpec> = targets
        .into_iter()
        .map(|(port, weight)| TargetSpec {
            host: "127.0.0.1",
            port,
            weight,
        })
        .collect();
    ServiceSpec {
        id: "00000000-0000-0000-0000-0000000000aa",
        name: Some("echo"),
        protocol: "http",
        host: "127.0.0.1",
        port: 80,
        path,
        retries: 0,
        connect_timeout_ms: 2_000,
        write_timeout_ms: 10_000,
        read_timeout_ms: 10_000,
        targets: Box::leak(targets.into_boxed_slice()),
        host_header: None,
    }
}

pub struct TestGateway {
    rules: Vec<(Option<&'static str>, Option<&'static str>)>,
    routes: &'static [RouteSpec],
    services: &'static [ServiceSpec],
    upstreams: Vec<Upstream>,
}

impl TestGateway {
    pub fn new(rules: Vec<Rule>, services: Vec<ServiceSpec>) -> TestGateway {
        let services: &'static [ServiceSpec] = Box::leak(services.into_boxed_slice());
        let upstreams = services
            .iter()
            .map(|s| Upstream::new(s).expect("valid test service"))
            .collect();
        TestGateway {
            rules: rules.iter().map(|r| (r.host, r.prefix)).collect(),
            routes: Box::leak(
                rules
                    .into_iter()
                    .map(|r| r.route)
                    .collect::<Vec<_>>()
                    .into_boxed_slice(),
            ),
            services,
            upstreams,
        }
    }
}

impl Gateway for TestGateway {
    const INFO: BuildInfo = BuildInfo {
        source: "tests/kong.yml",
        config_sha256: "0123456789abcdef",
        kiln_version: "0.0.0-test",
    };

    fn init() -> Result<Self, StartupError> {
        Err(StartupError(
            "the test gateway is built by each test".into(),
        ))
    }

    fn route(&self, req: &RouteRequest<'_>) -> Option<MatchInfo> {
        self.rules
            .iter()
            .enumerate()
            .find_map(|(i, (host, prefix))| {
                let host_ok = host.is_none_or(|h| h == req.host);
                let path_ok = prefix.is_none_or(|p| req.path.starts_with(p));
                (host_ok && path_ok).then(|| MatchInfo {
                    route: i as u32,
                    sub_route: i as u32,
                    matched_len: prefix.map(str::len),
                    captures: Vec::new(),
                })
            })
    }

    fn routes(&self) -> &'static [RouteSpec] {
        self.routes
    }

    fn services(&self) -> &'static [ServiceSpec] {
        self.services
    }

    async fn handle(&self, route: u32, cx: &mut Ctx, req: &mut Request) -> Response {
        if self.routes.get(route as usize).and_then(|r| r.name) == Some("panic") {
            tokio::task::yield_now().await;
            panic!("a plugin bug");
        }
        let service = self.routes.get(route as usize).and_then(|r| r.service);
        match service {
            Some(s) => proxy(&self.upstreams[s as usize], cx, req).await,
            None => no_service(cx, req.headers()),
        }
    }
}

/// A running gateway.
pub struct Running {
    pub addr: SocketAddr,
    pub status: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn start(gw: TestGateway, opts: ServerOptions) -> Running {
    let proxy = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let status = TcpListener::bind("127.0.0.1:0").await.expect("bind status");
    let addr = proxy.local_addr().expect("addr");
    let status_addr = status.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(kiln_runtime::run(
        Arc::new(gw),
        proxy,
        status,
        async move {
            let _ = rx.await;
        },
        opts,
    ));
    Running {
        addr,
        status: status_addr,
        stop: Some(tx),
        task,
    }
}

// ---------------------------------------------------------------- echo upstream

/// An upstream that answers with what it received, as JSON. Request headers steer it:
/// `x-echo-hang` never answers; `x-echo-bytes: N` streams N bytes; `x-echo-sink` counts the
/// request body; `x-echo-partial` sends 10 bytes of body then stalls; `x-echo-hold` reports
/// arrival on `arrived` and waits for a permit of `release`; `x-echo-header: name=value`
/// adds a response header.
pub struct Echo {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub release: Arc<Semaphore>,
    pub arrived: mpsc::UnboundedReceiver<()>,
}

pub async fn echo() -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Semaphore::new(0));
    let (arrived_tx, arrived) = mpsc::unbounded_channel();
    let conns = connections.clone();
    let rel = release.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let n = conns.fetch_add(1, Ordering::SeqCst);
            let rel = rel.clone();
            let arrived_tx = arrived_tx.clone();
            tokio::spawn(async move {
                let svc =
                    service_fn(move |req| echo_answer(req, n, rel.clone(), arrived_tx.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Echo {
        addr,
        connections,
        release,
        arrived,
    }
}

type EchoBody = http_body_util::combinators::BoxBody<Bytes, Error>;

async fn echo_answer(
    req: HttpRequest<Incoming>,
    conn: usize,
    release: Arc<Semaphore>,
    arrived: mpsc::UnboundedSender<()>,
) -> Result<HttpResponse<EchoBody>, Infallible> {
    let h = req.headers().clone();
    if h.contains_key("x-echo-hang") {
        std::future::pending::<()>().await;
    }
    if h.contains_key("x-echo-hold") {
        let _ = arrived.send(());
        if let Ok(p) = release.acquire().await {
            p.forget();
        }
    }
    let mut builder = HttpResponse::builder();
    if let Some(v) = h.get("x-echo-header").and_then(|v| v.to_str().ok()) {
        if let Some((name, value)) = v.split_once('=') {
            builder = builder.header(name, value);
        }
    }
    if let Some(n) = h
        .get("x-echo-bytes")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        return Ok(builder.body(Repeat::new(n).boxed()).unwrap_or_default());
    }
    if h.contains_key("x-echo-partial") {
        return Ok(builder
            .header("content-length", "100")
            .body(Partial(false).boxed())
            .unwrap_or_default());
    }
    let mut received = 0u64;
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let version = format!("{:?}", req.version());
    let mut body = req.into_body();
    if h.contains_key("x-echo-sink") {
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => received += f.data_ref().map_or(0, |d| d.len() as u64),
                Err(_) => break,
            }
        }
    }
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &h {
        headers
            .entry(k.to_string())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    let json = serde_json::json!({
        "method": method, "uri": uri, "version": version, "headers": headers,
        "connection": conn, "received": received,
    });
    let body = Full::new(Bytes::from(json.to_string()))
        .map_err(|never| match never {})
        .boxed();
    Ok(builder
        .header("content-type", "application/json")
        .body(body)
        .unwrap_or_default())
}

/// A streamed body of `remaining` bytes in 64 KiB chunks, with an exact size.
pub struct Repeat {
    remaining: u64,
    chunk: Bytes,
}

impl Repeat {
    pub fn new(n: u64) -> Repeat {
        Repeat {
            remaining: n,
            chunk: Bytes::from(vec![b'k'; 64 * 1024]),
        }
    }
}

impl HttpBody for Repeat {
    type Data = Bytes;
    type Error = Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = this.remaining.min(this.chunk.len() as u64) as usize;
        this.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(this.chunk.slice(..n)))))
    }
    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// 10 bytes, then nothing ever again.
struct Partial(bool);

impl HttpBody for Partial {
    type Data = Bytes;
    type Error = Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        if this.0 {
            return Poll::Pending;
        }
        this.0 = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"0123456789")))))
    }
}

// ---------------------------------------------------------------- clients

pub type ClientBody = http_body_util::combinators::BoxBody<Bytes, Error>;

pub fn empty() -> ClientBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

/// An HTTP/1.1 client connection to `addr`.
pub async fn h1(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<ClientBody> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    tx
}

/// An HTTP/2 (h2c, prior knowledge) client connection to `addr`.
pub async fn h2(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<ClientBody> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (tx, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    tx
}

/// A response read to the end.
#[derive(Debug)]
pub struct Got {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Got {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Values of a request header as the echo upstream saw them.
    pub fn upstream_header(&self, name: &str) -> Vec<String> {
        self.json()["headers"][name]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
    pub fn upstream_one(&self, name: &str) -> Option<String> {
        let v = self.upstream_header(name);
        assert!(v.len() <= 1, "{name} sent {} times: {v:?}", v.len());
        v.into_iter().next()
    }
}

pub async fn read(resp: HttpResponse<Incoming>) -> Got {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// `GET path` with `Host: host` and extra headers, over a fresh HTTP/1.1 connection.
pub async fn get(addr: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut tx = h1(addr).await;
    send(&mut tx, host, path, headers).await
}

pub async fn send(
    tx: &mut hyper::client::conn::http1::SendRequest<ClientBody>,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Got {
    let mut b = HttpRequest::builder().uri(path).header("host", host);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(empty()).expect("request");
    read(tx.send_request(req).await.expect("response")).await
}

/// `GET uri` (absolute: its authority is the request's host) on an HTTP/2 connection.
pub async fn send_h2(
    tx: &mut hyper::client::conn::http2::SendRequest<ClientBody>,
    uri: &str,
) -> Got {
    let req = HttpRequest::builder()
        .uri(uri)
        .body(empty())
        .expect("request");
    read(tx.send_request(req).await.expect("response")).await
}

/// A port nobody listens on (bound, then released).
pub async fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr").port()
}
