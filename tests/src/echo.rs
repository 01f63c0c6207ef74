//! An echo upstream: answers every request with what it received, as JSON.
//!
//! Controlled by request headers (they pass through the gateway):
//! `x-echo-status: N` answers with status N; `x-echo-delay-ms: N` waits N ms before
//! answering; `x-echo-bytes: N` answers with a streamed body of N bytes instead of JSON;
//! each `x-echo-response-header: Name: value` adds that header to the answer.
//! The request body is read and counted, never buffered.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, Infallible>;

/// Counts connections, so tests can see keep-alive reuse.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn handle(req: Request<Incoming>, conn: u64) -> Result<Response<Body>, Infallible> {
    let status = header(&req, "x-echo-status")
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let delay = header(&req, "x-echo-delay-ms").and_then(|s| s.parse::<u64>().ok());
    let stream_bytes = header(&req, "x-echo-bytes").and_then(|s| s.parse::<u64>().ok());
    // `x-echo-response-header: Name: value` (repeatable): added to the answer.
    let extra: Vec<(http::HeaderName, http::HeaderValue)> = req
        .headers()
        .get_all("x-echo-response-header")
        .iter()
        .filter_map(|v| {
            let (name, value) = v.to_str().ok()?.split_once(':')?;
            Some((
                http::HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
                http::HeaderValue::from_str(value.trim()).ok()?,
            ))
        })
        .collect();
    let mut headers = serde_json::Map::new();
    for name in req.headers().keys() {
        let values: Vec<serde_json::Value> = req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned().into())
            .collect();
        let value = if values.len() == 1 {
            values.into_iter().next().unwrap_or_default()
        } else {
            values.into()
        };
        headers.insert(name.as_str().to_owned(), value);
    }
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let version = format!("{:?}", req.version());
    let mut body = req.into_body();
    let mut body_bytes = 0u64;
    // The first 64 KiB of the body, as text, for tests that check what reached upstream.
    let mut body_text = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    body_bytes += d.len() as u64;
                    let room = (64 * 1024usize).saturating_sub(body_text.len());
                    body_text.extend_from_slice(&d[..d.len().min(room)]);
                }
            }
            Err(_) => break,
        }
    }
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut resp = if let Some(n) = stream_bytes {
        const CHUNK: usize = 64 * 1024;
        let chunk = Bytes::from(vec![b'x'; CHUNK]);
        Response::new(Chunks { left: n, chunk }.boxed())
    } else {
        let json = serde_json::json!({
            "method": method,
            "uri": uri,
            "path": path,
            "query": query,
            "headers": headers,
            "body_bytes": body_bytes,
            "body": String::from_utf8_lossy(&body_text),
            "version": version,
            "connection": conn,
        });
        let mut r = Response::new(Full::new(Bytes::from(json.to_string())).boxed());
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        r
    };
    *resp.status_mut() = status;
    for (name, value) in extra {
        resp.headers_mut().append(name, value);
    }
    Ok(resp)
}

/// A body of `left` bytes, sent in chunks as fast as the reader takes them.
struct Chunks {
    left: u64,
    chunk: Bytes,
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len() as u64);
        self.left -= n;
        std::task::Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n as usize)))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}

/// Serves on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, stats: Arc<Stats>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = stats.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let stats = stats.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                stats.requests.fetch_add(1, Ordering::Relaxed);
                handle(req, conn)
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Binds `addr`, then serves in a spawned task. Returns the bound address.
pub async fn spawn(addr: &str) -> std::io::Result<(SocketAddr, Arc<Stats>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let stats = Arc::new(Stats::default());
    tokio::spawn(serve(listener, stats.clone()));
    Ok((local, stats))
}
