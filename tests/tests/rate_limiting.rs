//! rate-limiting end to end (kong-compat.md §4.7): every header, status and message, several
//! periods, limit_by variants, consumer-scoped instances over service ones, window roll-over
//! with an injected clock; `policy: redis` on redis-servers the tests start; and the
//! reference article's config (tests/fixtures/seed.yml) serving with its limits.
//!
//! Clock: generated gateways have no clock parameter, so each test builds its gateway inside
//! `rate_limiting::clock::during_init(Clock::Manual(..), G::init)`: every rate-limiting
//! instance built there reads that manual clock, and the test moves it. Local counters are
//! process-wide (as Kong's shm), keyed by window start: each test uses its own epoch so that
//! tests running in parallel never share a window.

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use kiln_runtime::plugins::rate_limiting::{clock, Clock, ManualClock};
use kiln_tests::harness::{get, send_h2c, start_built, within, Reply, Running};

include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

/// 2030-01-01T00:00:00Z.
const BASE_MS: i64 = 1_893_456_000_000;

/// A manual clock `n` × 400 days after [`BASE_MS`], `secs` seconds into its minute.
fn clock_for(n: i64, secs: i64) -> Arc<ManualClock> {
    ManualClock::new(BASE_MS + n * 400 * 86_400_000 + secs * 1000)
}

async fn start_with<G: kiln_runtime::Gateway>(c: &Arc<ManualClock>) -> Running {
    let gw = clock::during_init(Clock::Manual(Arc::clone(c)), || G::init().expect("init"));
    start_built(gw).await
}

fn h<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.header(name)
}

fn assert_limited(r: &Reply, status: u16, message: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.json()["message"], message);
}

#[tokio::test]
async fn minute_sequence_headers_block_and_roll_over() {
    let c = clock_for(0, 15);
    let gw = start_with::<rate_limiting::Gateway>(&c).await;
    for expected in [5, 4, 3, 2, 1, 0] {
        let r = get(gw.addr, "x", "/minute", &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(h(&r, "x-ratelimit-limit-minute"), Some("6"));
        let e = expected.to_string();
        assert_eq!(h(&r, "x-ratelimit-remaining-minute"), Some(e.as_str()));
        assert_eq!(h(&r, "ratelimit-limit"), Some("6"));
        assert_eq!(h(&r, "ratelimit-remaining"), Some(e.as_str()));
        assert_eq!(h(&r, "ratelimit-reset"), Some("45"));
        assert_eq!(h(&r, "retry-after"), None);
        // The request reached the upstream (the echo answers with what it received).
        assert!(r.json()["headers"].is_object(), "{:?}", r.body);
    }
    c.advance(10_000);
    for _ in 0..2 {
        let r = get(gw.addr, "x", "/minute", &[]).await;
        assert_limited(&r, 429, "API rate limit exceeded");
        assert_eq!(h(&r, "x-ratelimit-limit-minute"), Some("6"));
        assert_eq!(h(&r, "x-ratelimit-remaining-minute"), Some("0"));
        assert_eq!(h(&r, "ratelimit-remaining"), Some("0"));
        assert_eq!(h(&r, "ratelimit-reset"), Some("35"));
        assert_eq!(h(&r, "retry-after"), Some("35"));
        assert!(r.json()["request_id"].is_string());
    }
    // Next minute: a fresh window (blocked requests were not counted either way).
    c.advance(35_000);
    let r = get(gw.addr, "x", "/minute", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(h(&r, "x-ratelimit-remaining-minute"), Some("5"));
    assert_eq!(h(&r, "ratelimit-reset"), Some("60"));
    gw.stop().await;
}

/// The plugin's headers replace the upstream's of the same names, whatever their case, over
/// HTTP/1.1 (where they go out as lines next to the upstream's) and HTTP/2 (in the map).
#[tokio::test]
async fn the_upstreams_rate_limit_headers_are_replaced() {
    use http_body_util::Full;
    let c = clock_for(5, 15);
    let gw = start_with::<rate_limiting::Gateway>(&c).await;
    let sent = [
        ("x-echo-response-header", "X-RateLimit-Limit-Minute: 999"),
        (
            "x-echo-response-header",
            "x-ratelimit-remaining-minute: 998",
        ),
        ("x-echo-response-header", "RATELIMIT-RESET: 1234"),
        ("x-echo-response-header", "X-Up: a"),
    ];
    let all = |h: &http::HeaderMap, name: &str| -> Vec<String> {
        h.get_all(name)
            .iter()
            .map(|v| v.to_str().expect("text").to_owned())
            .collect()
    };
    let check = |h: &http::HeaderMap, remaining: &str| {
        assert_eq!(all(h, "x-ratelimit-limit-minute"), ["6"]);
        assert_eq!(all(h, "x-ratelimit-remaining-minute"), [remaining]);
        assert_eq!(all(h, "ratelimit-limit"), ["6"]);
        assert_eq!(all(h, "ratelimit-remaining"), [remaining]);
        assert_eq!(all(h, "ratelimit-reset"), ["45"]);
        assert_eq!(all(h, "x-up"), ["a"]);
    };
    let r = get(gw.addr, "x", "/minute", &sent).await;
    assert_eq!(r.status, 200);
    check(&r.headers, "5");

    let mut req = http::Request::builder().uri("http://x/minute");
    for (k, v) in sent {
        req = req.header(k, v);
    }
    let req = req.body(Full::new(bytes::Bytes::new())).expect("request");
    let r = send_h2c(gw.addr, req).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.version, http::Version::HTTP_2);
    check(&r.headers, "4");
    gw.stop().await;
}

#[tokio::test]
async fn several_periods_and_blocked_requests_are_not_counted() {
    let c = clock_for(1, 30);
    let gw = start_with::<rate_limiting::Gateway>(&c).await;
    let user = [("x-user", "ann")];
    let r = get(gw.addr, "x", "/multi", &user).await;
    assert_eq!(r.status, 200);
    for (p, limit, rem) in [
        ("second", "2", "1"),
        ("minute", "3", "2"),
        ("hour", "10", "9"),
        ("day", "10", "9"),
        ("month", "10", "9"),
        ("year", "10", "9"),
    ] {
        assert_eq!(h(&r, &format!("x-ratelimit-limit-{p}")), Some(limit), "{p}");
        assert_eq!(
            h(&r, &format!("x-ratelimit-remaining-{p}")),
            Some(rem),
            "{p}"
        );
    }
    // Smallest remaining: the second (1).
    assert_eq!(h(&r, "ratelimit-limit"), Some("2"));
    assert_eq!(h(&r, "ratelimit-remaining"), Some("1"));
    assert_eq!(h(&r, "ratelimit-reset"), Some("1"));
    let r = get(gw.addr, "x", "/multi", &user).await;
    assert_eq!(r.status, 200);
    // Remaining 0 (second) vs 1 (minute): the second.
    assert_eq!(h(&r, "ratelimit-remaining"), Some("0"));
    // Third in the same second: blocked by the second; the minute shows limit - used.
    let r = get(gw.addr, "x", "/multi", &user).await;
    assert_limited(&r, 429, "API rate limit exceeded");
    assert_eq!(h(&r, "x-ratelimit-remaining-second"), Some("0"));
    assert_eq!(h(&r, "x-ratelimit-remaining-minute"), Some("1"));
    assert_eq!(h(&r, "x-ratelimit-remaining-hour"), Some("8"));
    assert_eq!(h(&r, "retry-after"), Some("1"));
    // Next second: the blocked request was not counted, so one more passes the minute.
    c.advance(1_000);
    let r = get(gw.addr, "x", "/multi", &user).await;
    assert_eq!(r.status, 200);
    assert_eq!(h(&r, "x-ratelimit-remaining-minute"), Some("0"));
    assert_eq!(h(&r, "ratelimit-remaining"), Some("0"));
    // Tie at 0 between second (1 left → shows 0) and minute: the longer window.
    assert_eq!(h(&r, "ratelimit-limit"), Some("3"));
    assert_eq!(h(&r, "ratelimit-reset"), Some("29"));
    c.advance(1_000);
    let r = get(gw.addr, "x", "/multi", &user).await;
    assert_limited(&r, 429, "API rate limit exceeded");
    assert_eq!(h(&r, "retry-after"), Some("28"));
    // Another header value is another counter; no header falls back to the client IP.
    let r = get(gw.addr, "x", "/multi", &[("x-user", "bob")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(h(&r, "x-ratelimit-remaining-minute"), Some("2"));
    let r = get(gw.addr, "x", "/multi", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(h(&r, "x-ratelimit-remaining-minute"), Some("2"));
    gw.stop().await;
}

#[tokio::test]
async fn hidden_headers_and_custom_error() {
    let c = clock_for(2, 0);
    let gw = start_with::<rate_limiting::Gateway>(&c).await;
    let r = get(gw.addr, "x", "/hidden", &[]).await;
    assert_eq!(r.status, 200);
    let r2 = get(gw.addr, "x", "/hidden", &[]).await;
    assert_limited(&r2, 503, "slow down");
    for r in [&r, &r2] {
        for name in [
            "x-ratelimit-limit-minute",
            "x-ratelimit-remaining-minute",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "retry-after",
        ] {
            assert_eq!(h(r, name), None, "{name}");
        }
    }
    gw.stop().await;
}

#[tokio::test]
async fn limit_by_path_and_service() {
    let c = clock_for(3, 0);
    let gw = start_with::<rate_limiting::Gateway>(&c).await;
    // path: /by-path/a is its own counter; other paths fall back to the client IP.
    assert_eq!(get(gw.addr, "x", "/by-path/a", &[]).await.status, 200);
    assert_eq!(get(gw.addr, "x", "/by-path/a", &[]).await.status, 429);
    assert_eq!(get(gw.addr, "x", "/by-path/b", &[]).await.status, 200);
    assert_eq!(get(gw.addr, "x", "/by-path/c", &[]).await.status, 429);
    // service: both routes of the service share one counter.
    assert_eq!(get(gw.addr, "x", "/shared-a", &[]).await.status, 200);
    let r = get(gw.addr, "x", "/shared-b", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(h(&r, "x-ratelimit-remaining-minute"), Some("0"));
    assert_eq!(get(gw.addr, "x", "/shared-a", &[]).await.status, 429);
    gw.stop().await;
}

#[tokio::test]
async fn consumer_scoped_instances_override_the_service_one() {
    let c = clock_for(4, 0);
    let gw = start_with::<rate_limiting::Gateway>(&c).await;
    let key = |k: &'static str| [("apikey", k)];
    async fn admitted(gw: &Running, k: [(&str, &str); 1], n: usize, limit: &str) -> usize {
        let mut ok = 0;
        for _ in 0..n {
            let r = get(gw.addr, "x", "/keyed", &k).await;
            assert_eq!(h(&r, "x-ratelimit-limit-minute"), Some(limit), "{k:?}");
            if r.status == 200 {
                ok += 1;
            } else {
                assert_limited(&r, 429, "API rate limit exceeded");
            }
        }
        ok
    }
    assert_eq!(admitted(&gw, key("gold-key"), 7, "5").await, 5);
    assert_eq!(admitted(&gw, key("silver-key"), 4, "2").await, 2);
    assert_eq!(admitted(&gw, key("plain-key"), 5, "3").await, 3);
    // limit_by consumer: gold's second key is the same consumer, already at its limit.
    assert_eq!(admitted(&gw, key("gold-key-2"), 1, "5").await, 0);
    // A route-scoped instance (limit_by credential) applies to a consumer without an
    // instance of its own (consumer alone ranks above route in Kong's precedence, so gold
    // and silver would keep theirs here).
    let r = get(gw.addr, "x", "/by-credential", &key("plain-key")).await;
    assert_eq!(r.status, 200);
    assert_eq!(h(&r, "x-ratelimit-limit-minute"), Some("1"));
    assert_eq!(
        get(gw.addr, "x", "/by-credential", &key("plain-key"))
            .await
            .status,
        429
    );
    // The minute rolls over: everyone starts again.
    c.advance(60_000);
    assert_eq!(admitted(&gw, key("silver-key"), 3, "2").await, 2);
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------
// Redis

/// A redis-server of this test: a free port, a temp dir, no persistence; killed by PID.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("kiln-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut s = RedisServer {
            child: None,
            port,
            dir,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        self.child = Some(child);
        // Wait until it accepts connections (bounded).
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.addr()).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::yield_now();
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kills the server (SIGKILL by PID) and waits for it.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn route_redis(host: &str, server: &RedisServer) {
    kiln_runtime::resolve::set_override(host, 6379, server.addr());
}

#[tokio::test]
async fn redis_enforces_the_limit_and_counts_every_request() {
    let server = RedisServer::start();
    route_redis("redis-limit.test", &server);
    let c = clock_for(10, 0);
    let gw = start_with::<rate_limiting_redis::Gateway>(&c).await;
    for expected in ["4", "3", "2", "1", "0"] {
        let r = get(gw.addr, "x", "/limited", &[]).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(h(&r, "x-ratelimit-remaining-minute"), Some(expected));
    }
    let r = get(gw.addr, "x", "/limited", &[]).await;
    assert_limited(&r, 429, "API rate limit exceeded");
    assert_eq!(h(&r, "retry-after"), Some("60"));
    // Next window.
    c.advance(60_000);
    assert_eq!(get(gw.addr, "x", "/limited", &[]).await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn three_gateways_sharing_one_redis_admit_exactly_the_limit() {
    let server = RedisServer::start();
    route_redis("redis-shared.test", &server);
    let c = clock_for(11, 0);
    let gws = [
        start_with::<rate_limiting_redis::Gateway>(&c).await,
        start_with::<rate_limiting_redis::Gateway>(&c).await,
        start_with::<rate_limiting_redis::Gateway>(&c).await,
    ];
    let mut tasks = Vec::new();
    for i in 0..30 {
        let addr = gws[i % 3].addr;
        tasks.push(tokio::spawn(async move {
            get(addr, "x", "/shared", &[]).await.status
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let s = within("request", t).await.expect("task");
        assert!(s == 200 || s == 429, "{s}");
        ok += usize::from(s == 200);
    }
    assert_eq!(ok, 10);
    for gw in gws {
        gw.stop().await;
    }
}

#[tokio::test]
async fn redis_killed_under_load_then_restarted() {
    let mut server = RedisServer::start();
    route_redis("redis-kill.test", &server);
    let c = clock_for(12, 0);
    let gw = start_with::<rate_limiting_redis::Gateway>(&c).await;
    let user = |u: &'static str| [("x-user", u)];
    // Working: limited at 3.
    for _ in 0..3 {
        assert_eq!(get(gw.addr, "x", "/tolerant", &user("a")).await.status, 200);
    }
    assert_eq!(get(gw.addr, "x", "/tolerant", &user("a")).await.status, 429);
    let mut baseline = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        get(gw.addr, "x", "/tolerant", &user("b")).await;
        baseline = baseline.max(t.elapsed());
    }

    server.kill();
    // fault_tolerant: every request passes, without headers, within the 200 ms timeout.
    let mut worst = Duration::ZERO;
    for _ in 0..40 {
        let t = Instant::now();
        let r = get(gw.addr, "x", "/tolerant", &user("a")).await;
        worst = worst.max(t.elapsed());
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(h(&r, "x-ratelimit-limit-minute"), None);
    }
    let added = worst.saturating_sub(baseline);
    eprintln!("redis down: worst latency {worst:?}, baseline {baseline:?}");
    assert!(
        added < Duration::from_millis(200 + 150),
        "a request waited {added:?} more than usual (timeout 200 ms)"
    );

    // Restarted on the same port (empty): limiting resumes once the breaker lets a probe
    // through and the client reconnects.
    server.spawn();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = get(gw.addr, "x", "/tolerant", &user("c")).await;
        if h(&r, "x-ratelimit-limit-minute").is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "limiting did not resume");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            get(gw.addr, "x", "/tolerant", &user("c"))
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
    gw.stop().await;
}

#[tokio::test]
async fn redis_down_without_fault_tolerance_is_a_500() {
    // Nothing listens on this port.
    let port = free_port();
    kiln_runtime::resolve::set_override(
        "redis-strict.test",
        6379,
        SocketAddr::from(([127, 0, 0, 1], port)),
    );
    let c = clock_for(13, 0);
    let gw = start_with::<rate_limiting_redis::Gateway>(&c).await;
    for _ in 0..5 {
        let t = Instant::now();
        let r = get(gw.addr, "x", "/strict", &[]).await;
        assert_eq!(r.status, 500);
        assert_eq!(r.json()["message"], "An unexpected error occurred");
        assert!(t.elapsed() < Duration::from_millis(200 + 150));
    }
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------
// The reference article's config (tests/fixtures/seed.yml).

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn token(iss: &str, secret: &str, exp: i64) -> String {
    use jsonwebtoken::{encode, EncodingKey, Header};
    let claims = serde_json::json!({ "iss": iss, "exp": exp });
    let t = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("token");
    format!("Bearer {t}")
}

/// Sends `n` requests, 16 at a time; returns how many were admitted (200), checking that
/// every other answer is Kong's 429 and that all show `limit` as the minute limit.
async fn admitted(
    addr: SocketAddr,
    path: &'static str,
    auth: Option<String>,
    n: usize,
    limit: &str,
) -> usize {
    let mut ok = 0;
    let mut left = n;
    while left > 0 {
        let batch = left.min(16);
        left -= batch;
        let tasks: Vec<_> = (0..batch)
            .map(|_| {
                let auth = auth.clone();
                tokio::spawn(async move {
                    match &auth {
                        Some(a) => get(addr, "x", path, &[("authorization", a.as_str())]).await,
                        None => get(addr, "x", path, &[]).await,
                    }
                })
            })
            .collect();
        for t in tasks {
            let r = within("request", t).await.expect("task");
            assert_eq!(h(&r, "x-ratelimit-limit-minute"), Some(limit), "{path}");
            if r.status == 200 {
                ok += 1;
            } else {
                assert_limited(&r, 429, "API rate limit exceeded");
            }
        }
    }
    ok
}

#[tokio::test]
async fn the_reference_config_serves_with_its_limits() {
    let secrets = [
        (
            "MOBILE_APP_JWT_SECRET",
            "mobile-app",
            "mobile-secret-for-tests",
        ),
        ("WEB_APP_JWT_SECRET", "web-app", "web-secret-for-tests"),
        (
            "PARTNER_APP_JWT_SECRET",
            "partner-app",
            "partner-secret-for-tests",
        ),
    ];
    for (var, _, secret) in secrets {
        std::env::set_var(var, secret);
    }
    let c = clock_for(20, 0);
    let gw = start_with::<seed::Gateway>(&c).await;
    let exp = now_s() + 3600;
    let mobile = token("mobile-app", secrets[0].2, exp);

    // A valid token reaches the user service as its consumer, with the consumer's limit.
    let r = get(gw.addr, "x", "/api/v1/users", &[("authorization", &mobile)]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.upstream_header("x-consumer-username").as_deref(),
        Some("mobile-app")
    );
    assert!(
        r.upstream_header("x-request-id").is_some(),
        "correlation-id"
    );
    assert_eq!(h(&r, "x-ratelimit-limit-minute"), Some("1000"));
    assert_eq!(h(&r, "x-ratelimit-remaining-minute"), Some("999"));
    // Forged, expired, missing tokens: 401 before rate-limiting counts anything.
    let forged = token("mobile-app", "not-the-secret", exp);
    let r = get(gw.addr, "x", "/api/v1/users", &[("authorization", &forged)]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["message"], "Invalid signature");
    assert_eq!(h(&r, "x-ratelimit-limit-minute"), None);
    let expired = token("mobile-app", secrets[0].2, now_s() - 60);
    let r = get(
        gw.addr,
        "x",
        "/api/v1/users",
        &[("authorization", &expired)],
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(
        String::from_utf8_lossy(&r.body).contains("token expired"),
        "{:?}",
        r.body
    );
    let r = get(gw.addr, "x", "/api/v1/users", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["message"], "Unauthorized");

    // Per consumer: mobile-app 1000/min (one used above), web-app 500/min.
    let web = token("web-app", secrets[1].2, exp);
    let partner = token("partner-app", secrets[2].2, exp);
    let (m, w, p, products) = tokio::join!(
        admitted(gw.addr, "/api/v1/users", Some(mobile), 1000, "1000"),
        admitted(gw.addr, "/api/v1/users", Some(web), 501, "500"),
        // A consumer without its own instance gets the user-service's 100/min.
        admitted(gw.addr, "/api/v1/users", Some(partner), 101, "100"),
        // product-service: 200/min, counted by client IP (no authentication there).
        admitted(gw.addr, "/api/v1/products", None, 201, "200"),
    );
    assert_eq!((m, w, p, products), (999, 500, 100, 200));
    gw.stop().await;
}
