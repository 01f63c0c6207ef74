//! The status listener (`KILN_STATUS_LISTEN`, default `127.0.0.1:8100`), separate from the
//! proxy port so that probes and operators never compete with traffic:
//!
//! * `GET /health` → 200 `{"status":"ok"}` while serving, 503 `{"status":"draining"}` once a
//!   shutdown started (load balancers stop sending new requests);
//! * `GET /status` → build facts, uptime and requests served, e.g.
//!   `{"version":"0.1.0","kiln_version":"0.1.0","source":"kong.yml","config_sha256":"…",
//!   "uptime_seconds":12,"requests_served":345,"requests_in_flight":2,"draining":false}`;
//! * anything else → 404 `{"message":"Not found"}`.

use std::{
    convert::Infallible,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Instant,
};

use http::{header, HeaderValue, Method};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, task::JoinSet};

use crate::{gateway::BuildInfo, response, Response, VERSION};

/// Counters and flags shared by the proxy listener and the status listener.
#[derive(Debug)]
pub struct Stats {
    info: BuildInfo,
    started: Instant,
    requests: AtomicU64,
    in_flight: Arc<AtomicU64>,
    draining: AtomicBool,
}

/// One request in progress (until its response body has been sent or dropped).
#[derive(Debug)]
pub struct InFlight(Arc<AtomicU64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Stats {
    /// Fresh counters for a gateway built as `info`.
    pub fn new(info: BuildInfo) -> Stats {
        Stats {
            info,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            in_flight: Arc::new(AtomicU64::new(0)),
            draining: AtomicBool::new(false),
        }
    }

    /// Counts a request as in progress while the returned guard lives.
    pub fn start_request(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.in_flight.clone())
    }

    /// Requests received whose response is not finished yet.
    pub fn requests_in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts one answered proxy request.
    pub fn request_served(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered so far.
    pub fn requests_served(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Marks the start of the drain: `/health` answers 503 from now on.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether a drain started.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

/// The answer of the status listener to `method path`.
pub fn answer(stats: &Stats, method: &Method, path: &str) -> Response {
    let get = method == Method::GET || method == Method::HEAD;
    match path {
        "/health" if get => {
            if stats.is_draining() {
                response::with_body(503, JSON, r#"{"status":"draining"}"#)
            } else {
                response::with_body(200, JSON, r#"{"status":"ok"}"#)
            }
        }
        "/status" if get => {
            let body = serde_json::json!({
                "version": VERSION,
                "kiln_version": stats.info.kiln_version,
                "source": stats.info.source,
                "config_sha256": stats.info.config_sha256,
                "uptime_seconds": stats.started.elapsed().as_secs(),
                "requests_served": stats.requests_served(),
                "requests_in_flight": stats.requests_in_flight(),
                "draining": stats.is_draining(),
            });
            response::with_body(200, JSON, body.to_string())
        }
        "/health" | "/status" => {
            let mut resp = response::exit_json(405, "Method not allowed");
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            resp
        }
        _ => response::exit_json(404, "Not found"),
    }
}

/// Serves the status listener until the task is dropped (HTTP/1.1 only; connections are
/// aborted with it).
pub async fn serve_status(listener: TcpListener, stats: Arc<Stats>) {
    let mut conns = JoinSet::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new());
    builder.header_read_timeout(std::time::Duration::from_secs(10));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let stats = stats.clone();
                let builder = builder.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req: http::Request<Incoming>| {
                        let resp = answer(&stats, req.method(), req.uri().path());
                        async move { Ok::<_, Infallible>(resp) }
                    });
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: BuildInfo = BuildInfo {
        source: "kong.yml",
        config_sha256: "ab12",
        kiln_version: "9.9.9",
    };

    #[test]
    fn health_follows_draining_and_status_counts() {
        let stats = Stats::new(INFO);
        assert_eq!(answer(&stats, &Method::GET, "/health").status(), 200);
        stats.request_served();
        stats.request_served();
        assert_eq!(stats.requests_served(), 2);
        assert_eq!(answer(&stats, &Method::GET, "/status").status(), 200);
        assert_eq!(answer(&stats, &Method::GET, "/nope").status(), 404);
        assert_eq!(answer(&stats, &Method::POST, "/health").status(), 405);
        stats.set_draining();
        assert_eq!(answer(&stats, &Method::GET, "/health").status(), 503);
    }
}
