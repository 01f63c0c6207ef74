use std::{ops::ControlFlow, sync::Arc};

use super::{store::*, window::*, *};
use crate::plugins::test_support::{ctx, ready, request};

/// 2024-02-29T23:59:59Z, a leap day, one second before March.
const LEAP_END: i64 = 1_709_251_199;

#[test]
fn window_starts_for_every_period() {
    let t = LEAP_END;
    let d = days_from_civil(2024, 2, 29) * 86_400;
    assert_eq!(Period::Second.window_start(t), t);
    assert_eq!(Period::Minute.window_start(t), t - 59);
    assert_eq!(Period::Hour.window_start(t), t - 3_599);
    assert_eq!(Period::Day.window_start(t), d);
    assert_eq!(
        Period::Month.window_start(t),
        days_from_civil(2024, 2, 1) * 86_400
    );
    assert_eq!(
        Period::Year.window_start(t),
        days_from_civil(2024, 1, 1) * 86_400
    );
    // One second later everything rolls over to March 1st.
    let m = t + 1;
    for p in [
        Period::Second,
        Period::Minute,
        Period::Hour,
        Period::Day,
        Period::Month,
    ] {
        assert_eq!(p.window_start(m), m, "{p:?}");
        assert_eq!(p.window_end(t), m, "{p:?}");
    }
    assert_eq!(
        Period::Year.window_start(m),
        days_from_civil(2024, 1, 1) * 86_400
    );
    // Year boundary.
    let ny = days_from_civil(2025, 1, 1) * 86_400;
    assert_eq!(
        Period::Year.window_start(ny - 1),
        days_from_civil(2024, 1, 1) * 86_400
    );
    assert_eq!(Period::Year.window_start(ny), ny);
    assert_eq!(Period::Year.window_end(ny - 1), ny);
    assert_eq!(Period::Month.window_end(ny - 1), ny);
    assert_eq!(
        Period::Month.window_start(ny - 1),
        days_from_civil(2024, 12, 1) * 86_400
    );
    // Known values.
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    for z in [-800_000, -1, 0, 59, 11_016, 19_782, 2_932_896] {
        let (y, m, dd) = civil_from_days(z);
        assert_eq!(days_from_civil(y, m, dd), z);
    }
}

fn u(period: Period, limit: u64, used: u64) -> Usage {
    Usage {
        period,
        limit,
        used,
    }
}

#[test]
fn headers_follow_kong() {
    // 12:00:30 in a minute window: minute reset 30, hour reset 3570.
    let now = 1_700_000_000 - 1_700_000_000 % 3600 + 30;
    let s = shown(
        &[u(Period::Minute, 6, 2), u(Period::Hour, 100, 2)],
        None,
        now,
    );
    assert_eq!(s.periods[0], Some((Period::Minute, 6, 3)));
    assert_eq!(s.periods[1], Some((Period::Hour, 100, 97)));
    assert_eq!((s.limit, s.remaining, s.reset), (6, 3, 30));
    // Tie in remaining: the longer window.
    let s = shown(
        &[u(Period::Second, 5, 4), u(Period::Minute, 5, 4)],
        None,
        now,
    );
    assert_eq!((s.limit, s.remaining, s.reset), (5, 0, 30));
    // Blocked by the minute: only the blocking period gets -1; others show limit - used.
    let s = shown(
        &[u(Period::Second, 10, 3), u(Period::Minute, 6, 6)],
        Some(Period::Minute),
        now,
    );
    assert_eq!(s.periods[0], Some((Period::Second, 10, 7)));
    assert_eq!(s.periods[1], Some((Period::Minute, 6, 0)));
    assert_eq!((s.remaining, s.reset), (0, 30));
    // Month and year resets use 30 and 365 days; at least 1.
    let s = shown(&[u(Period::Year, 1, 0)], None, LEAP_END);
    let since = LEAP_END - Period::Year.window_start(LEAP_END);
    assert_eq!(s.reset, 31_536_000 - since);
    let s = shown(&[u(Period::Second, 1, 0)], None, LEAP_END);
    assert_eq!(s.reset, 1);
    let s = shown(
        &[u(Period::Month, 1, 0)],
        None,
        days_from_civil(2024, 1, 31) * 86_400 + 10,
    );
    assert_eq!(s.reset, 1, "30 days into a 31-day month");

    let mut h = HeaderMap::new();
    shown(&[u(Period::Minute, 6, 6)], Some(Period::Minute), now).apply(&mut h, true);
    assert_eq!(h["x-ratelimit-limit-minute"], "6");
    assert_eq!(h["x-ratelimit-remaining-minute"], "0");
    assert_eq!(h["ratelimit-limit"], "6");
    assert_eq!(h["ratelimit-remaining"], "0");
    assert_eq!(h["ratelimit-reset"], "30");
    assert_eq!(h["retry-after"], "30");
}

#[test]
fn key_format() {
    assert_eq!(
        counter_key(
            NO_ID,
            "svc-1",
            "10.0.0.1",
            1_709_251_140_000,
            Period::Minute
        ),
        "ratelimit:00000000-0000-0000-0000-000000000000:svc-1:10.0.0.1:1709251140000:minute"
    );
}

#[test]
fn counters_count_to_the_limit_and_release() {
    let c = Counters::new(64);
    assert_eq!(c.try_acquire(7, 100, 50, 2), Acquire::Counted(0));
    assert_eq!(c.try_acquire(7, 100, 50, 2), Acquire::Counted(1));
    assert_eq!(c.try_acquire(7, 100, 50, 2), Acquire::Limited(2));
    c.release(7, 100);
    assert_eq!(c.peek(7, 100), 1);
    assert_eq!(c.peek(8, 100), 0);
}

#[test]
fn counters_are_exact_under_concurrency() {
    let c = Arc::new(Counters::new(1024));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                let mut admitted = 0;
                for _ in 0..2_000 {
                    for key in 1..=4u64 {
                        if let Acquire::Counted(_) = c.try_acquire(key, 100, 1, 1_000) {
                            admitted += 1;
                        }
                    }
                }
                admitted
            })
        })
        .collect();
    let total: u32 = threads.into_iter().map(|t| t.join().expect("thread")).sum();
    assert_eq!(total, 4 * 1_000);
    for key in 1..=4 {
        assert_eq!(c.peek(key, 100), 1_000);
    }
}

#[test]
fn expired_windows_are_reclaimed_and_memory_is_capped() {
    let c = Counters::new(PROBE);
    // Fill every slot with live counters (window ends at 100).
    for key in 1..=PROBE as u64 {
        assert_eq!(c.try_acquire(key, 100, 10, 5), Acquire::Counted(0));
    }
    assert_eq!(c.live(10), PROBE);
    // Full: a new key is not counted, old ones still are.
    assert_eq!(c.try_acquire(1_000, 100, 10, 5), Acquire::Full);
    assert_eq!(c.try_acquire(1, 100, 10, 5), Acquire::Counted(1));
    // Once the windows ended, new keys take the slots over.
    for key in 2_000..2_000 + PROBE as u64 {
        assert_eq!(c.try_acquire(key, 200, 100, 5), Acquire::Counted(0));
    }
    assert_eq!(c.live(100), PROBE);
    assert_eq!(c.peek(1, 100), 0);
}

fn plugin(
    limits: &'static [(Period, u64)],
    limit_by: LimitBy,
    clock: &Arc<ManualClock>,
) -> RateLimiting {
    RateLimiting::new(Config {
        limits,
        limit_by,
        // A route id of its own keeps these counters apart from other tests'.
        route_id: "unit-test-route",
        service_id: limits_id(limits),
        ..Config::new(&[], &[])
    })
    .expect("valid")
    .with_clock(Clock::Manual(Arc::clone(clock)))
}

fn limits_id(l: &[(Period, u64)]) -> &'static str {
    if l.len() == 1 {
        "one"
    } else {
        "many"
    }
}

#[test]
fn sequence_blocks_then_rolls_over() {
    let clock = ManualClock::new(1_800_000_000_000);
    let p = plugin(&[(Period::Minute, 6)], LimitBy::Header("x-user"), &clock);
    let mut remaining = Vec::new();
    for _ in 0..7 {
        let mut cx = ctx();
        let mut req = request("GET", "/", &[("x-user", "seq")]);
        match ready(p.access(&mut cx, &mut req)) {
            ControlFlow::Continue(()) => {
                let s = cx.rate_limiting.expect("headers");
                remaining.push((200, s.remaining));
            }
            ControlFlow::Break(resp) => {
                assert_eq!(resp.headers()["retry-after"], "60");
                remaining.push((resp.status().as_u16(), 0));
            }
        }
    }
    assert_eq!(
        remaining,
        [
            (200, 5),
            (200, 4),
            (200, 3),
            (200, 2),
            (200, 1),
            (200, 0),
            (429, 0)
        ]
    );
    clock.advance(60_000);
    let mut cx = ctx();
    let mut req = request("GET", "/", &[("x-user", "seq")]);
    assert!(ready(p.access(&mut cx, &mut req)).is_continue());
    assert_eq!(cx.rate_limiting.expect("headers").remaining, 5);
}

#[test]
fn identifiers_fall_back_to_the_client_ip() {
    let clock = ManualClock::new(0);
    let cx = ctx();
    let req = request("GET", "/x", &[("x-user", "u1")]);
    let p = plugin(&[(Period::Second, 1)], LimitBy::Header("x-user"), &clock);
    assert_eq!(p.identifier(&cx, &req), "u1");
    let p = plugin(&[(Period::Second, 1)], LimitBy::Header("x-other"), &clock);
    assert_eq!(p.identifier(&cx, &req), "192.0.2.7");
    for by in [
        LimitBy::Consumer,
        LimitBy::Credential,
        LimitBy::Ip,
        LimitBy::Service,
    ] {
        let p = plugin(&[(Period::Second, 1)], by, &clock);
        assert_eq!(p.identifier(&cx, &req), "192.0.2.7", "{by:?}");
    }
    let mut cx = ctx();
    cx.normalized_path = "/x".into();
    let p = plugin(&[(Period::Second, 1)], LimitBy::Path("/x"), &clock);
    assert_eq!(p.identifier(&cx, &req), "/x");
    let p = plugin(&[(Period::Second, 1)], LimitBy::Path("/y"), &clock);
    assert_eq!(p.identifier(&cx, &req), "192.0.2.7");
    cx.auth.credential = Some("cred-9".into());
    let p = plugin(&[(Period::Second, 1)], LimitBy::Consumer, &clock);
    assert_eq!(p.identifier(&cx, &req), "cred-9");
}

#[test]
fn bad_configs_are_refused() {
    let bad: [&'static [(Period, u64)]; 4] = [
        &[],
        &[(Period::Minute, 10), (Period::Hour, 5)],
        &[(Period::Minute, 0)],
        &[(Period::Minute, 1 << 40)],
    ];
    for limits in bad {
        assert!(
            RateLimiting::new(Config {
                limits,
                ..Config::new(&[], &[])
            })
            .is_err(),
            "{limits:?}"
        );
    }
}

#[test]
fn header_filter_writes_what_shown_apply_writes() {
    let clock = ManualClock::new(1_800_000_000_000);
    let limits: &[(Period, u64)] = &[
        (Period::Second, 5),
        (Period::Minute, 1_000_000_000),
        (Period::Hour, 1_000_000_000),
    ];
    let p = plugin(limits, LimitBy::Ip, &clock);
    let now = 1_800_000_000;
    let cases: Vec<Shown> = vec![
        shown(
            &[
                u(Period::Second, 5, 1),
                u(Period::Minute, 1_000_000_000, 123_456),
                u(Period::Hour, 1_000_000_000, 123_456),
            ],
            None,
            now,
        ),
        // Ties between periods: the longer window is described.
        shown(
            &[
                u(Period::Second, 5, 0),
                u(Period::Minute, 1_000_000_000, 999_999_995),
                u(Period::Hour, 1_000_000_000, 999_999_995),
            ],
            None,
            now,
        ),
        // A decision of other limits (not this instance's): numbers are made as needed.
        shown(&[u(Period::Minute, 7, 2), u(Period::Day, 70, 2)], None, now),
        shown(&[u(Period::Year, 10_000, 5_000)], None, now),
    ];
    for s in cases {
        let mut want = HeaderMap::new();
        s.apply(&mut want, false);
        let mut cx = ctx();
        cx.rate_limiting = Some(s);
        let mut resp = crate::response::no_body(200);
        p.header_filter(&mut cx, &mut resp);
        assert_eq!(resp.headers(), &want, "{s:?}");
        assert!(cx.rate_limiting.is_none());
    }
}

/// A proxied response's upstream head, as the client keeps it.
fn upstream(fields: &[(&str, &str)]) -> UpstreamHead {
    let mut head = UpstreamHead::in_buffer(Vec::new(), 64);
    for (name, value) in fields {
        let kind = crate::upstream_head::Field::of(name.as_bytes());
        head.push(kind, name.as_bytes(), value.as_bytes())
            .expect("valid field");
    }
    head
}

fn sorted(map: &HeaderMap) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = map
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().expect("text").to_string()))
        .collect();
    pairs.sort();
    pairs
}

#[test]
fn header_filter_on_upstream_lines_writes_what_shown_apply_writes() {
    let clock = ManualClock::new(1_800_000_000_000);
    let limits: &[(Period, u64)] = &[(Period::Second, 5), (Period::Minute, 1_000_000_000)];
    let p = plugin(limits, LimitBy::Ip, &clock);
    let now = 1_800_000_000;
    for s in [
        shown(
            &[u(Period::Second, 5, 1), u(Period::Minute, 1_000_000_000, 9)],
            None,
            now,
        ),
        // not this instance's limits
        shown(&[u(Period::Minute, 7, 2), u(Period::Day, 70, 2)], None, now),
    ] {
        let fields = [
            ("Content-Type", "text/plain"),
            ("x-ratelimit-limit-minute", "from upstream"),
            ("RateLimit-Reset", "from upstream"),
        ];
        // what the map path gives: the upstream's headers with the plugin's inserted
        let mut want = HeaderMap::new();
        s.apply(&mut want, false);
        upstream(&fields).into_map(&mut want);

        let mut cx = ctx();
        cx.upstream_head = Some(upstream(&fields));
        cx.rate_limiting = Some(s);
        let mut resp = crate::response::no_body(200);
        crate::upstream_head::header_filter(&p, &mut cx, &mut resp);
        assert!(resp.headers().is_empty(), "written as lines");

        // HTTP/1: the lines, the upstream's of the same names left out
        let head = cx.upstream_head.take().expect("still lines");
        let mut out = Vec::new();
        head.write(&mut out, resp.headers());
        let text = String::from_utf8(out).expect("text");
        assert!(!text.contains("from upstream"), "{text}");
        let mut from_lines = HeaderMap::new();
        for line in text.split_terminator("\r\n") {
            let (name, value) = line.split_once(": ").expect("a field line");
            from_lines.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        assert_eq!(sorted(&from_lines), sorted(&want), "{s:?}");
        assert!(
            text.contains("X-RateLimit-Remaining-Minute: "),
            "Kong's spelling: {text}"
        );

        // HTTP/2 and plugins that read the map: the same set
        cx.upstream_head = Some(head);
        crate::upstream_head::materialize(&mut cx, &mut resp);
        assert_eq!(sorted(resp.headers()), sorted(&want), "{s:?}");
    }
}

#[test]
fn header_filter_on_a_generated_response_uses_its_map() {
    let clock = ManualClock::new(1_800_000_000_000);
    let p = plugin(&[(Period::Minute, 10)], LimitBy::Ip, &clock);
    let s = shown(&[u(Period::Minute, 10, 3)], None, 1_800_000_000);
    let mut want = HeaderMap::new();
    s.apply(&mut want, false);
    let mut cx = ctx();
    // e.g. a 502 after the upstream's head was dropped, or an answer of a later plugin
    cx.kong_generated = true;
    cx.upstream_head = Some(upstream(&[("X-Up", "1")]));
    cx.rate_limiting = Some(s);
    let mut resp = crate::response::no_body(502);
    crate::upstream_head::header_filter(&p, &mut cx, &mut resp);
    assert_eq!(resp.headers(), &want);
}
