//! SIGTERM-style drain: requests in flight when shutdown starts all complete; the listener
//! closes. Its own test binary, so the echo upstream's request counter is this test's alone.

use kiln_tests::harness::{request, start, upstreams, within};

include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

#[tokio::test]
async fn drain_finishes_requests_in_flight() {
    let _ = upstreams();
    let gw = start::<proxy::Gateway>().await;
    let addr = gw.addr;
    let in_flight: Vec<_> = (0..5)
        .map(|_| {
            tokio::spawn(async move {
                request(
                    addr,
                    "GET",
                    "root.test",
                    "/route",
                    &[("x-echo-delay-ms", "700")],
                )
                .await
            })
        })
        .collect();
    // Wait until the upstream has seen them all, then drain.
    within("requests reach the upstream", async {
        loop {
            let seen = upstreams()
                .echo_stats
                .requests
                .load(std::sync::atomic::Ordering::Relaxed);
            if seen >= 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    gw.stop().await;
    for t in in_flight {
        let r = within("in-flight request", t).await.expect("task");
        assert_eq!(r.status, 200);
    }
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed after drain"
    );
}
