//! The upstream side: a service's targets, their connection pools, and [`proxy`], which sends
//! the request upstream and streams the answer back (kong-compat.md §2.4–2.6).
//!
//! Generated code builds one [`Upstream`] per service at start-up and calls [`proxy`] at the
//! end of a route's access phase (or [`no_service`] for a route without a service):
//!
//! ```no_run
//! # use kiln_runtime::{proxy::{proxy, Upstream}, Ctx, Request, Response, ServiceSpec};
//! # async fn demo(spec: &'static ServiceSpec, cx: &mut Ctx, req: &mut Request) -> Response {
//! let up = Upstream::new(spec).expect("valid service"); // once, in Gateway::init
//! proxy(&up, cx, req).await
//! # }
//! ```
//!
//! Errors, as Kong/nginx answer them (format: [`crate::response::upstream_error`]):
//! every connect attempt failed → 502, the last one timed out → 504; no response head or
//! no body progress within `read_timeout`, or a write blocked for `write_timeout` → 504;
//! an invalid response → 502. `retries` are extra connect attempts, each on the next target;
//! nothing was sent on a failed connect, so they are safe for any method. A kept-alive
//! connection that the upstream closes as a request goes out is retried once on a new
//! connection when the request is idempotent and has no body (nginx does the same); otherwise
//! that is a 502.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use http::{
    header::{self, HeaderName},
    uri::PathAndQuery,
    HeaderMap, HeaderValue, StatusCode, Version,
};
use http_body_util::BodyExt;
use tokio::net::TcpStream;

use crate::{
    client::{self, Conn, Framing, SendError, UpBody},
    ctx::Ctx,
    gateway::{ServiceSpec, StartupError, TargetSpec},
    path,
    pool::{Pool, PoolOptions},
    response,
    timed_io::TimedIo,
    Request, Response,
};

#[cfg(test)]
mod tests;

/// One target of a service, with its pool.
struct Target {
    spec: &'static TargetSpec,
    /// `Host` sent upstream when the route does not preserve the client's.
    host_header: HeaderValue,
    pool: Arc<Pool>,
}

/// A service as the proxy uses it: targets, pools and timeouts. Built once at start-up.
pub struct Upstream {
    spec: &'static ServiceSpec,
    targets: Vec<Target>,
    /// Smooth weighted round-robin state (nginx's algorithm): current weight per target.
    wrr: Mutex<Vec<i64>>,
    connect_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("service", &self.spec.id)
            .finish_non_exhaustive()
    }
}

fn timeout_ms(ms: u64) -> Duration {
    Duration::from_millis(ms.max(1))
}

impl Upstream {
    /// Builds the upstream of `spec` with default pool limits.
    pub fn new(spec: &'static ServiceSpec) -> Result<Upstream, StartupError> {
        Upstream::with_pool(spec, PoolOptions::default())
    }

    /// Builds the upstream of `spec` with the given pool limits.
    pub fn with_pool(
        spec: &'static ServiceSpec,
        pool: PoolOptions,
    ) -> Result<Upstream, StartupError> {
        let name = spec.name.unwrap_or(spec.id);
        if spec.protocol != "http" {
            return Err(StartupError(format!(
                "service {name}: protocol {:?} is not supported yet (only http)",
                spec.protocol
            )));
        }
        let mut targets = Vec::with_capacity(spec.targets.len());
        for t in spec.targets {
            let host = spec.host_header.unwrap_or(t.host);
            let text = path::upstream_host_header(host, t.port, spec.protocol);
            let host_header = HeaderValue::from_str(&text).map_err(|_| {
                StartupError(format!(
                    "service {name}: {text:?} is not a valid Host header"
                ))
            })?;
            targets.push(Target {
                spec: t,
                host_header,
                pool: Arc::new(Pool::new(pool)),
            });
        }
        Ok(Upstream {
            spec,
            wrr: Mutex::new(vec![0; targets.len()]),
            targets,
            connect_timeout: timeout_ms(spec.connect_timeout_ms),
            read_timeout: timeout_ms(spec.read_timeout_ms),
            write_timeout: timeout_ms(spec.write_timeout_ms),
        })
    }

    /// The service this upstream serves.
    pub fn spec(&self) -> &'static ServiceSpec {
        self.spec
    }

    /// Next target by smooth weighted round-robin.
    fn pick(&self) -> usize {
        let mut current = self.wrr.lock().unwrap_or_else(|p| p.into_inner());
        let mut total = 0i64;
        let mut best = 0usize;
        let mut best_weight = i64::MIN;
        for (i, t) in self.targets.iter().enumerate() {
            let w = i64::from(t.spec.weight);
            if w == 0 {
                continue;
            }
            current[i] += w;
            total += w;
            if current[i] > best_weight {
                best_weight = current[i];
                best = i;
            }
        }
        current[best] -= total;
        best
    }

    /// The target after `i` that has a weight (retries move on).
    fn next_after(&self, i: usize) -> usize {
        let n = self.targets.len();
        (1..=n)
            .map(|k| (i + k) % n)
            .find(|&j| self.targets[j].spec.weight > 0)
            .unwrap_or(i)
    }

    async fn connect(&self, t: &Target) -> Result<Box<Conn>, Failure> {
        let connect = async {
            match crate::resolve::lookup(t.spec.host, t.spec.port) {
                Some(addr) => TcpStream::connect(addr).await,
                None => TcpStream::connect((t.spec.host, t.spec.port)).await,
            }
        };
        let stream = match tokio::time::timeout(self.connect_timeout, connect).await {
            Err(_) => return Err(Failure::Timeout),
            Ok(Err(_)) => return Err(Failure::Invalid),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        Ok(Conn::new(TimedIo::new(
            stream,
            Some(self.read_timeout),
            self.write_timeout,
        )))
    }
}

/// Why no upstream response could be passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// 504 `The upstream server is timing out`.
    Timeout,
    /// 502 `An invalid response was received from the upstream server`.
    Invalid,
}

impl Failure {
    fn status(self) -> u16 {
        match self {
            Failure::Timeout => 504,
            Failure::Invalid => 502,
        }
    }

    fn of(err: &SendError) -> Failure {
        match err {
            SendError::Timeout => Failure::Timeout,
            _ => Failure::Invalid,
        }
    }
}

/// Kong's answer for a route without a service: 503 `no Service found with those values`.
pub fn no_service(cx: &Ctx, req_headers: &HeaderMap) -> Response {
    response::error(
        503,
        Some("no Service found with those values"),
        &cx.request_id,
        req_headers,
    )
}

/// `value` appended to the existing values of `name` as one `a, b` header; `value` itself
/// (no copy) when there are none.
pub(crate) fn appended(
    headers: &HeaderMap,
    name: &HeaderName,
    value: &HeaderValue,
) -> Option<HeaderValue> {
    let mut out = Vec::new();
    for v in headers.get_all(name) {
        if !v.is_empty() {
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b", ");
        }
    }
    if out.is_empty() {
        return Some(value.clone());
    }
    out.extend_from_slice(value.as_bytes());
    HeaderValue::from_maybe_shared(bytes::Bytes::from(out)).ok()
}

/// `Via` sent upstream: the downstream protocol version and this gateway.
fn via_value(v: Version) -> HeaderValue {
    macro_rules! via {
        ($v:literal) => {
            HeaderValue::from_static(concat!($v, " kiln/", env!("CARGO_PKG_VERSION")))
        };
    }
    match v {
        Version::HTTP_09 => via!("0.9"),
        Version::HTTP_10 => via!("1.0"),
        Version::HTTP_2 => via!("2"),
        Version::HTTP_3 => via!("3"),
        _ => via!("1.1"),
    }
}

/// `X-Kong-Request-Id`.
pub static X_KONG_REQUEST_ID: HeaderName = HeaderName::from_static("x-kong-request-id");

/// What becomes of one of the client's headers on the way upstream.
enum Fate {
    Keep,
    Drop,
    /// `X-Forwarded-For` and `Via`: the values are kept and this hop's is appended.
    AppendXff,
    AppendVia,
}

fn fate(name: &HeaderName) -> Fate {
    if name == header::VIA {
        return Fate::AppendVia;
    }
    if name == header::CONNECTION
        || name == header::TE
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::HOST
        || name == header::EXPECT
    {
        return Fate::Drop;
    }
    match name.as_str() {
        "x-forwarded-for" => Fate::AppendXff,
        // Hop-by-hop (RFC 9110 §7.6.1, nginx's list), `Proxy` (httpoxy), and what the
        // gateway sets itself (its own request id replaces the client's).
        "keep-alive" | "proxy-connection" | "proxy" | "x-real-ip" | "x-forwarded-proto"
        | "x-forwarded-host" | "x-forwarded-port" | "x-forwarded-path" | "x-forwarded-prefix"
        | "x-kong-request-id" => Fate::Drop,
        _ => Fate::Keep,
    }
}

/// Names the client's `Connection` header lists as hop-by-hop, besides `close` and
/// `keep-alive` (which go anyway). Usually none, and then nothing is allocated.
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.eq_ignore_ascii_case("keep-alive") && !t.eq_ignore_ascii_case("close"))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect()
}

/// Whether `v` can be sent as a header value as it is.
fn valid_value(v: &[u8]) -> bool {
    v.iter().all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

/// Everything the upstream request head carries after `Host` (kong-compat.md §2.5, §2.6):
/// the client's headers without the hop-by-hop ones and those the gateway sets, then the
/// gateway's (`X-Forwarded-*`, `X-Real-IP`, `Via`, `X-Kong-Request-Id`,
/// `Connection: keep-alive`), the body's framing, and the blank line that ends the head.
/// Appended once per request to `out`, after the request line and the target's `Host`
/// ([`client::end_request_line`]).
fn upstream_header_block(cx: &mut Ctx, headers: &HeaderMap, framing: Framing, out: &mut Vec<u8>) {
    let listed = if headers.contains_key(header::CONNECTION) {
        connection_listed(headers)
    } else {
        Vec::new()
    };
    let mut te_trailers = None;
    let mut client_length = false;
    let mut xff: Vec<u8> = Vec::new();
    let mut via: Vec<u8> = Vec::new();
    for (name, value) in headers {
        if name == header::TE && te_trailers.is_none() {
            te_trailers = Some(value.as_bytes().eq_ignore_ascii_case(b"trailers"));
        }
        if !listed.is_empty() && listed.contains(name) {
            continue;
        }
        match fate(name) {
            // The length goes out as the one number it was parsed into (below).
            Fate::Keep if name == header::CONTENT_LENGTH => client_length = true,
            Fate::Keep => response::push_field(out, name.as_str().as_bytes(), value.as_bytes()),
            Fate::Drop => {}
            Fate::AppendXff | Fate::AppendVia if value.is_empty() => {}
            Fate::AppendXff => {
                xff.extend_from_slice(value.as_bytes());
                xff.extend_from_slice(b", ");
            }
            Fate::AppendVia => {
                via.extend_from_slice(value.as_bytes());
                via.extend_from_slice(b", ");
            }
        }
    }
    if te_trailers == Some(true) {
        out.extend_from_slice(b"te: trailers\r\n");
    }
    // What Kong's nginx sends (`upstream_connection`); the upstream connection is pooled.
    // From here each field's line break comes before the next one: fewer, longer copies.
    out.extend_from_slice(b"connection: keep-alive\r\nx-forwarded-for: ");
    out.extend_from_slice(&xff);
    let ip_start = out.len();
    response::push_ip(out, cx.client_addr.ip());
    let ip_end = out.len();
    out.extend_from_slice(b"\r\nx-real-ip: ");
    out.extend_from_within(ip_start..ip_end);
    out.extend_from_slice(b"\r\nx-forwarded-proto: ");
    out.extend_from_slice(cx.scheme.as_bytes());
    if !cx.host.is_empty() && valid_value(cx.host.as_bytes()) {
        out.extend_from_slice(b"\r\nx-forwarded-host: ");
        out.extend(cx.host.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.extend_from_slice(b"\r\nx-forwarded-port: ");
    response::push_decimal(out, u64::from(cx.listener_port));
    let path = cx.request_uri.path().as_bytes();
    if valid_value(path) {
        out.extend_from_slice(b"\r\nx-forwarded-path: ");
        out.extend_from_slice(path);
    }
    let prefix = stripped_len(cx)
        .and_then(|len| cx.normalized_path.get(..len))
        .filter(|p| !p.is_empty() && *p != "/" && valid_value(p.as_bytes()));
    if let Some(p) = prefix {
        out.extend_from_slice(b"\r\nx-forwarded-prefix: ");
        out.extend_from_slice(p.as_bytes());
    }
    out.extend_from_slice(b"\r\nvia: ");
    out.extend_from_slice(&via);
    out.extend_from_slice(via_value(cx.http_version).as_bytes());
    out.extend_from_slice(b"\r\nx-kong-request-id: ");
    out.extend_from_slice(cx.request_id.as_bytes());
    match framing {
        Framing::Length(n) => {
            out.extend_from_slice(b"\r\ncontent-length: ");
            response::push_decimal(out, n);
        }
        Framing::Empty if client_length => out.extend_from_slice(b"\r\ncontent-length: 0"),
        Framing::Empty => {}
        Framing::Chunked => out.extend_from_slice(b"\r\ntransfer-encoding: chunked"),
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// `Host` sent upstream when the route preserves the client's: its `Host` (HTTP/2:
/// `:authority`).
fn preserved_host(cx: &Ctx, authority: Option<&str>, headers: &HeaderMap) -> Option<HeaderValue> {
    if !cx.route.preserve_host {
        return None;
    }
    headers
        .get(header::HOST)
        .cloned()
        .or_else(|| authority.and_then(|a| HeaderValue::from_str(a).ok()))
}

/// The upstream request head after `Host` as the proxy builds it, for the request benchmark
/// (`benches/request.rs`); not an API.
#[doc(hidden)]
pub fn upstream_head_block(cx: &mut Ctx, headers: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(block_room(headers));
    upstream_header_block(cx, headers, Framing::Empty, &mut out);
    out
}

/// Room for the client's headers and the gateway's in the upstream head.
fn block_room(headers: &HeaderMap) -> usize {
    320 + headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum::<usize>()
}

/// `target` as the upstream request-target when it is one: as it is when every byte is one
/// that [`PathAndQuery`] takes as it is (the usual case, checked without a copy), else as
/// [`PathAndQuery`] makes it (it drops a `#` fragment) or refuses it (`None`).
fn valid_target(target: String) -> Option<String> {
    if plain_target(target.as_bytes()) {
        return Some(target);
    }
    PathAndQuery::try_from(target)
        .ok()
        .map(|pq| pq.as_str().to_owned())
}

/// Whether `target` starts with `/` and has only bytes that [`PathAndQuery`] keeps as they
/// are: in the path printable ASCII but for `#`, `<`, `>`, `` ` `` and `?` (which starts the
/// query), in the query printable ASCII but for `"`, `#`, `<` and `>`; UTF-8 above ASCII in
/// both.
fn plain_target(target: &[u8]) -> bool {
    const MAX_LEN: usize = u16::MAX as usize - 1;
    if target.first() != Some(&b'/') || target.len() > MAX_LEN {
        return false;
    }
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &[][..]),
    };
    path.iter().all(|&b| PLAIN_IN_PATH[usize::from(b)])
        && query.iter().all(|&b| PLAIN_IN_QUERY[usize::from(b)])
}

/// The bytes of [`plain_target`], by place (`?` never reaches the path's table).
const PLAIN_IN_PATH: [bool; 256] = plain_bytes(b"#<>`");
const PLAIN_IN_QUERY: [bool; 256] = plain_bytes(b"\"#<>");

const fn plain_bytes(except: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b > 0x20 && b != 0x7f;
        b += 1;
    }
    let mut i = 0;
    while i < except.len() {
        table[except[i] as usize] = false;
        i += 1;
    }
    table
}

fn stripped_len(cx: &Ctx) -> Option<usize> {
    if cx.route.strip_path {
        cx.matched.matched_len
    } else {
        None
    }
}

/// Sends `req` to `up` and returns the upstream's response, streaming both bodies. The
/// request's body is taken (an empty one is left in its place).
///
/// Sets `cx.proxy_latency_ms`, and on success `cx.upstream_latency_ms` and
/// `cx.kong_generated = false`. Failures become Kong's error responses (502/504).
pub async fn proxy(up: &Upstream, cx: &mut Ctx, req: &mut Request) -> Response {
    cx.proxy_latency_ms = Some(crate::clock::ms_since(cx.started));
    if !up.targets.iter().any(|t| t.spec.weight > 0) {
        // An upstream whose targets all have weight 0 (Kong's balancer answer).
        cx.kong_generated = true;
        return response::error(
            503,
            Some("failure to get a peer from the ring-balancer"),
            &cx.request_id,
            req.headers(),
        );
    }
    // The body is taken; the rest of the request is read where it is.
    let body = std::mem::replace(req.body_mut(), response::empty());
    let req = &*req;

    // What the error page needs from the request, looked up only when it is needed.
    let fail = |cx: &mut Ctx, status: u16| {
        cx.kong_generated = true;
        let mut error_headers = HeaderMap::new();
        for name in [header::ACCEPT, header::CONTENT_TYPE] {
            if let Some(v) = req.headers().get(&name) {
                error_headers.insert(name, v.clone());
            }
        }
        // A request body that request-size-limiting cut off is the client's fault: 413/417.
        if let Some(resp) =
            crate::plugins::request_size_limiting::overflow_response(cx, &error_headers)
        {
            return resp;
        }
        response::upstream_error(status, &cx.request_id, &error_headers)
    };

    let authority = req.uri().authority().map(|a| a.as_str());
    let preserved_host = preserved_host(cx, authority, req.headers());
    let Some(framing) = client::request_framing(req.headers(), &body) else {
        return fail(cx, 500);
    };
    // The upstream request head in one buffer, the path built into its request line.
    let method = req.method().as_str();
    let query = req.uri().query();
    // In the memory of an earlier request's head on this connection, when there was one.
    let mut line = std::mem::take(&mut cx.buffers.head);
    line.clear();
    let mut line = String::from_utf8(line).unwrap_or_default();
    line.reserve(
        method.len()
            + up.spec.path.map_or(1, str::len)
            + cx.normalized_path.len()
            + query.map_or(0, |q| q.len() + 1)
            + 96
            + block_room(req.headers()),
    );
    line.push_str(method);
    line.push(' ');
    let at = line.len();
    path::push_upstream_path(
        &mut line,
        up.spec.path,
        &cx.normalized_path,
        stripped_len(cx),
        query,
    );
    // Checks that the target is a valid request-target (no spaces or controls).
    if !plain_target(&line.as_bytes()[at..]) {
        let Some(target) = valid_target(line.split_off(at)) else {
            return fail(cx, 500);
        };
        line.push_str(&target);
    }
    // A target is picked only for a request that can go out.
    let mut idx = up.pick();
    let host = preserved_host
        .as_ref()
        .unwrap_or(&up.targets[idx].host_header);
    let mut head = line.into_bytes();
    let mut host_range = client::end_request_line(&mut head, host);
    upstream_header_block(cx, req.headers(), framing, &mut head);
    // The request is replayed at most once, as a copy of its head (so without a body).
    let replayable = framing == Framing::Empty && req.method().is_idempotent();
    let mut body = (framing != Framing::Empty).then_some(body);

    let attempts = up.spec.retries.saturating_add(1);
    let mut last = Failure::Invalid;
    let mut replayed = false;
    for attempt in 0..attempts {
        if attempt > 0 {
            idx = up.next_after(idx);
        }
        let target = &up.targets[idx];
        let host = preserved_host.as_ref().unwrap_or(&target.host_header);
        if head[host_range.clone()] != *host.as_bytes() {
            // Another target: its `Host`.
            head.splice(host_range.clone(), host.as_bytes().iter().copied());
            host_range.end = host_range.start + host.len();
        }

        let request = client::Outgoing {
            head: &head,
            framing,
            method: req.method(),
        };
        // Idle connections first; a request they could not take at all stays as it was.
        while let Some(conn) = target.pool.take() {
            match exchange(conn, request, &mut body, &target.pool, cx).await {
                Ok((answer, sent)) => {
                    cx.buffers.head = head;
                    return finish(cx, answer, sent);
                }
                Err(SendError::Unsent) => {}
                // The upstream closed a kept-alive connection as the request went out
                // (e.g. its own idle timeout): replay a body-less idempotent request once,
                // on a new connection, as nginx does.
                Err(SendError::Closed) if replayable && !replayed => {
                    replayed = true;
                    break;
                }
                Err(e) => return fail(cx, Failure::of(&e).status()),
            }
        }
        let conn = match up.connect(target).await {
            Ok(conn) => conn,
            Err(f) => {
                last = f;
                continue;
            }
        };
        match exchange(conn, request, &mut body, &target.pool, cx).await {
            Ok((answer, sent)) => {
                cx.buffers.head = head;
                return finish(cx, answer, sent);
            }
            // Not sent at all: as good as a failed connect.
            Err(SendError::Unsent) => last = Failure::Invalid,
            Err(e) => return fail(cx, Failure::of(&e).status()),
        }
    }
    fail(cx, last.status())
}

/// One exchange on `conn`: the response's header lines go into `cx` (in the memory of an
/// earlier response's), and the answer comes with the time the request went out.
async fn exchange(
    conn: Box<Conn>,
    request: client::Outgoing<'_>,
    body: &mut Option<crate::Body>,
    pool: &Arc<Pool>,
    cx: &mut Ctx,
) -> Result<((StatusCode, UpBody), Instant), SendError> {
    let sent = crate::clock::now();
    let fields = &mut cx.upstream_head;
    let answer = client::send(conn, request, body, pool, fields, &mut cx.buffers.lines).await?;
    Ok((answer, sent))
}

/// The upstream's response: its header lines are in `cx` already
/// ([`crate::upstream_head`]).
fn finish(cx: &mut Ctx, (status, body): (StatusCode, UpBody), sent: Instant) -> Response {
    cx.upstream_latency_ms = Some(crate::clock::ms_since(sent));
    cx.kong_generated = false;
    let mut resp = Response::new(body.boxed());
    *resp.status_mut() = status;
    resp
}
