//! Running gateways in-process and talking to them.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::echo;

/// Every await in a test is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Bounds `fut` by [`TIMEOUT`]; a timeout fails the test with `what`.
pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// The shared upstreams of one test process: an echo server on its own runtime thread (so
/// it outlives every test's runtime), and the address overrides that send fixture hosts
/// to it.
pub struct Upstreams {
    pub echo: SocketAddr,
    pub echo_stats: Arc<echo::Stats>,
    /// A port nothing listens on.
    pub dead: SocketAddr,
}

pub fn upstreams() -> &'static Upstreams {
    static U: OnceLock<Upstreams> = OnceLock::new();
    U.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("echo runtime");
            rt.block_on(async move {
                let (addr, stats) = echo::spawn("127.0.0.1:0").await.expect("bind echo");
                let _ = tx.send((addr, stats));
                std::future::pending::<()>().await;
            });
        });
        let (echo, echo_stats) = rx.recv_timeout(TIMEOUT).expect("echo upstream started");
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        kiln_runtime::resolve::set_override("echo.test", 80, echo);
        kiln_runtime::resolve::set_override("dead.test", 9, dead);
        Upstreams {
            echo,
            echo_stats,
            dead,
        }
    })
}

/// A gateway serving in-process on 127.0.0.1:0.
pub struct Running {
    pub addr: SocketAddr,
    pub status: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Starts the drain and waits for the server to return.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = &mut self.task;
        within("gateway shutdown", task)
            .await
            .expect("server task")
            .expect("server io");
    }
}

/// Builds gateway `G` and serves it.
pub async fn start<G: kiln_runtime::Gateway>() -> Running {
    let _ = upstreams();
    start_built(G::init().expect("gateway init")).await
}

/// Serves a gateway the test built itself (e.g. inside a test hook such as
/// `kiln_runtime::plugins::rate_limiting::clock::during_init`).
pub async fn start_built<G: kiln_runtime::Gateway>(gw: G) -> Running {
    let _ = upstreams();
    let gw = Arc::new(gw);
    let proxy = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let status = TcpListener::bind("127.0.0.1:0").await.expect("bind status");
    let (addr, status_addr) = (
        proxy.local_addr().expect("addr"),
        status.local_addr().expect("addr"),
    );
    let (tx, rx) = oneshot::channel::<()>();
    let opts = kiln_runtime::server::ServerOptions::default();
    let task = tokio::spawn(kiln_runtime::server::run(
        gw,
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
        shutdown: Some(tx),
        task,
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// For echo replies: the header the upstream received.
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        self.json()["headers"][name].as_str().map(str::to_owned)
    }
}

/// Sends one request on a new HTTP/1.1 connection to `addr`.
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Reply {
    within("request", async {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        read_reply(sender.send_request(req).await.expect("response")).await
    })
    .await
}

/// Sends one request on a new HTTP/2 connection with prior knowledge (h2c) to `addr`.
pub async fn send_h2c(addr: SocketAddr, req: Request<Full<Bytes>>) -> Reply {
    within("h2c request", async {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(stream),
        )
        .await
        .expect("h2 handshake");
        tokio::spawn(conn);
        read_reply(sender.send_request(req).await.expect("response")).await
    })
    .await
}

async fn read_reply(resp: http::Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Reply {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    }
}

/// `GET path` with `Host: host` and extra headers.
pub async fn get(addr: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    request(addr, "GET", host, path, headers).await
}

pub async fn request(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(addr, b.body(Full::new(Bytes::new())).expect("request")).await
}
