//! acl with real consumers: key-auth identifies them, acl decides on their groups.

use kiln_tests::harness::{get, start};

include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

#[tokio::test]
async fn acl_decides_on_the_authenticated_consumers_groups() {
    let gw = start::<acl_consumers::Gateway>().await;
    // allow-list: a member passes, with its groups upstream in acl order
    let r = get(gw.addr, "admin.test", "/", &[("apikey", "alice-key")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.upstream_header("x-consumer-groups").as_deref(),
        Some("admins, staff")
    );
    assert_eq!(
        r.upstream_header("x-consumer-username").as_deref(),
        Some("alice")
    );
    // a consumer with other groups: 403
    let r = get(gw.addr, "admin.test", "/", &[("apikey", "bob-key")]).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["message"], "You cannot consume this service");
    // a consumer with a credential but no groups: 403
    let r = get(gw.addr, "admin.test", "/", &[("apikey", "carol-key")]).await;
    assert_eq!(r.status, 403);
    // the anonymous consumer (no groups, no credential): 401
    let r = get(gw.addr, "admin.test", "/", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["message"], "Unauthorized");

    // deny-list: member refused, others pass, consumer without groups passes
    let r = get(gw.addr, "public.test", "/", &[("apikey", "bob-key")]).await;
    assert_eq!(r.status, 403);
    let r = get(gw.addr, "public.test", "/", &[("apikey", "alice-key")]).await;
    assert_eq!(r.status, 200);
    let r = get(gw.addr, "public.test", "/", &[("apikey", "carol-key")]).await;
    assert_eq!(r.status, 200);
    // no key at all: key-auth answers first
    let r = get(gw.addr, "public.test", "/", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["message"], "No API key found in request");
    gw.stop().await;
}
