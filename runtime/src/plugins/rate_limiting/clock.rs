//! The clock rate-limiting windows are computed from: the system clock, or a manual clock
//! that tests move by hand (window roll-over without sleeping).

use std::{
    cell::RefCell,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
};

/// Where "now" comes from.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system clock, as [`crate::clock::unix_time`] reads it.
    #[default]
    System,
    /// A time set by hand (milliseconds since the Unix epoch).
    Manual(Arc<ManualClock>),
}

impl Clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => {
                i64::try_from(crate::clock::unix_time().as_millis()).unwrap_or(i64::MAX)
            }
            Clock::Manual(m) => m.get(),
        }
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock at `ms` since the epoch.
    pub fn new(ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(ms)))
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst)
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

thread_local! {
    static INIT_CLOCK: RefCell<Option<Clock>> = const { RefCell::new(None) };
}

/// Test hook: rate-limiting instances constructed by `f` on this thread (e.g. by a
/// generated `Gateway::init`) use `clock` instead of the system clock. Generated code has
/// no clock parameter; end-to-end tests build their gateway inside this to drive window
/// roll-over. Not for production use.
#[doc(hidden)]
pub fn during_init<R>(clock: Clock, f: impl FnOnce() -> R) -> R {
    struct Reset(Option<Clock>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let prev = self.0.take();
            INIT_CLOCK.with(|c| *c.borrow_mut() = prev);
        }
    }
    let prev = INIT_CLOCK.with(|c| c.borrow_mut().replace(clock));
    let _reset = Reset(prev);
    f()
}

/// The clock a new instance uses: the [`during_init`] one, else the system clock.
pub(crate) fn for_new_instance() -> Clock {
    INIT_CLOCK.with(|c| c.borrow().clone()).unwrap_or_default()
}
