//! The gateway's clock: one reading per poll of a connection's task.
//!
//! nginx reads the clock once per turn of its event loop, and every timestamp taken while it
//! handles that turn's events is that reading. A connection's task here does the same:
//! `scoped` opens a scope around each poll of the task, and inside it [`now`] and
//! [`unix_time`] read their clock on the first call and return that reading on later ones.
//! One request takes a dozen timestamps (its start, the upstream's latency, the pool's idle
//! check, the timers' deadlines, the token's `exp`, the rate-limit window), and a poll runs
//! for microseconds, so they share a few clock reads instead of each paying for one.
//!
//! A reading is never older than the start of the poll that uses it: the scope ends with the
//! poll, and the next poll, after the task has waited for anything, reads the clock again.
//! Outside a scope (other tasks, tests, start-up) both functions read the clock each call.

use std::{
    cell::Cell,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

#[derive(Clone, Copy)]
enum Cached<T> {
    /// Not in a scope: read the clock on every call.
    Outside,
    /// In a scope, nothing read yet.
    Unread,
    Read(T),
}

thread_local! {
    static MONOTONIC: Cell<Cached<Instant>> = const { Cell::new(Cached::Outside) };
    static WALL: Cell<Cached<Duration>> = const { Cell::new(Cached::Outside) };
}

fn cached<T: Copy>(
    key: &'static std::thread::LocalKey<Cell<Cached<T>>>,
    read: impl FnOnce() -> T,
) -> T {
    key.with(|cell| match cell.get() {
        Cached::Read(t) => t,
        Cached::Unread => {
            let t = read();
            cell.set(Cached::Read(t));
            t
        }
        Cached::Outside => read(),
    })
}

/// The monotonic time of the current poll (see the module's documentation).
pub fn now() -> Instant {
    cached(&MONOTONIC, Instant::now)
}

/// The wall-clock time of the current poll, since the Unix epoch (zero if the system clock
/// is set before it).
pub fn unix_time() -> Duration {
    cached(&WALL, || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    })
}

/// Whole milliseconds from `t` to [`now`] (zero if `t` is later): the latency headers.
pub fn ms_since(t: Instant) -> u64 {
    u64::try_from(now().saturating_duration_since(t).as_millis()).unwrap_or(u64::MAX)
}

/// [`now`] as a tokio instant, for timers.
pub(crate) fn tokio_now() -> tokio::time::Instant {
    tokio::time::Instant::from_std(now())
}

/// One poll's scope: what was cached before it is put back when it ends (a scope inside
/// another one reads the clock afresh and leaves the outer one's readings alone).
struct Scope {
    monotonic: Cached<Instant>,
    wall: Cached<Duration>,
}

impl Scope {
    fn enter() -> Scope {
        Scope {
            monotonic: MONOTONIC.with(|c| c.replace(Cached::Unread)),
            wall: WALL.with(|c| c.replace(Cached::Unread)),
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        MONOTONIC.with(|c| c.set(self.monotonic));
        WALL.with(|c| c.set(self.wall));
    }
}

pin_project_lite::pin_project! {
    /// A future whose every poll is in a scope of its own ([`scoped`]).
    pub(crate) struct Scoped<F> {
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _scope = Scope::enter();
        self.project().fut.poll(cx)
    }
}

/// Runs `fut` with each of its polls in a scope of its own.
pub(crate) fn scoped<F: Future>(fut: F) -> Scoped<F> {
    Scoped { fut }
}

/// Spawns HTTP/2 streams' tasks on tokio, each of their polls in a scope.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spawner;

impl<F> hyper::rt::Executor<F> for Spawner
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(scoped(fut));
    }
}

#[cfg(test)]
mod tests {
    use std::{future::poll_fn, pin::pin, task::Waker};

    use super::*;

    /// A future that records `now()`/`unix_time()` twice per poll, sleeping in between, and
    /// is pending on its first poll.
    async fn sample(out: &std::cell::RefCell<Vec<(Instant, Instant, Duration, Duration)>>) {
        for round in 0..2 {
            let a = now();
            let wa = unix_time();
            std::thread::sleep(Duration::from_millis(3));
            out.borrow_mut().push((a, now(), wa, unix_time()));
            if round == 0 {
                let mut yielded = false;
                poll_fn(|_| {
                    if yielded {
                        Poll::Ready(())
                    } else {
                        yielded = true;
                        Poll::Pending
                    }
                })
                .await;
            }
        }
    }

    #[test]
    fn one_reading_per_poll_and_a_fresh_one_on_the_next() {
        let out = std::cell::RefCell::new(Vec::new());
        {
            let mut fut = pin!(scoped(sample(&out)));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            std::thread::sleep(Duration::from_millis(3));
            assert!(fut.as_mut().poll(&mut cx).is_ready());
        }
        let out = out.into_inner();
        assert_eq!(out.len(), 2);
        for (a, b, wa, wb) in &out {
            assert_eq!(a, b, "one monotonic reading within a poll");
            assert_eq!(wa, wb, "one wall reading within a poll");
        }
        assert!(out[1].0 >= out[0].0 + Duration::from_millis(5));
        assert!(out[1].2 > out[0].2);
    }

    #[test]
    fn outside_a_scope_every_call_reads_the_clock() {
        let a = now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(now() >= a + Duration::from_millis(2));
        let w = unix_time();
        std::thread::sleep(Duration::from_millis(2));
        assert!(unix_time() > w);
    }

    #[test]
    fn ms_since_counts_whole_milliseconds_and_never_goes_negative() {
        let past = Instant::now();
        std::thread::sleep(Duration::from_millis(3));
        assert!(ms_since(past) >= 3);
        assert_eq!(ms_since(Instant::now() + Duration::from_secs(60)), 0);
    }

    #[test]
    fn a_scope_ends_with_its_poll() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut inside = None;
        let mut fut = pin!(scoped(async {
            inside = Some(now());
        }));
        assert!(fut.as_mut().poll(&mut cx).is_ready());
        let inside = inside.expect("ran");
        std::thread::sleep(Duration::from_millis(2));
        // The reading is not left behind for code outside the task.
        assert!(now() >= inside + Duration::from_millis(2));
    }

    #[test]
    fn a_nested_scope_reads_afresh_and_restores_the_outer_reading() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut seen = Vec::new();
        let mut fut = pin!(scoped(async {
            let outer = now();
            std::thread::sleep(Duration::from_millis(2));
            let mut inner_fut = pin!(scoped(async { now() }));
            let inner = match inner_fut
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
            {
                Poll::Ready(t) => t,
                Poll::Pending => unreachable!("ready at once"),
            };
            seen.push((outer, inner, now()));
        }));
        assert!(fut.as_mut().poll(&mut cx).is_ready());
        let (outer, inner, after) = seen[0];
        assert!(inner >= outer + Duration::from_millis(2));
        assert_eq!(after, outer);
    }
}
