//! Local counters (`policy: local`): a fixed-size, open-addressed table of atomics shared by
//! every rate-limiting instance of the process, as Kong's `kong_rate_limiting_counters` shm
//! is shared by every instance of a node.
//!
//! A slot is two words: the 64-bit hash of the counter key (`ratelimit:<route>:<service>:
//! <identifier>:<window start>:<period>`, so each window is its own key; 0 = never used) and
//! a state word `window end (u32 seconds) << 32 | count (u32)`. The hot path is lock-free:
//! a linear probe over at most [`PROBE`] slots and one compare-and-swap. Memory is fixed at
//! start-up; a slot whose window has ended is reclaimed by the next key that needs room.
//! When every slot a key may use holds a live counter of another key (the cap), the request
//! is not counted (see [`Acquire::Full`]).

use std::{
    hash::{BuildHasher, Hasher},
    sync::{
        atomic::{AtomicU64, Ordering::SeqCst},
        OnceLock,
    },
};

/// Slots probed per key.
pub const PROBE: usize = 32;
/// Slots of the process-wide table (2 MiB).
pub const GLOBAL_SLOTS: usize = 1 << 17;

/// The state of a slot being handed to another key.
const CLAIMING: u64 = u64::MAX;

#[derive(Debug, Default)]
struct Slot {
    key: AtomicU64,
    state: AtomicU64,
}

fn pack(end: u32, count: u32) -> u64 {
    (u64::from(end) << 32) | u64::from(count)
}

fn unpack(s: u64) -> (u32, u32) {
    ((s >> 32) as u32, s as u32)
}

/// Result of [`Counters::try_acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// Counted; the count before this request.
    Counted(u32),
    /// The count is at the limit (not incremented); the current count.
    Limited(u32),
    /// No slot: the table is full around this key. Not counted.
    Full,
}

/// A fixed table of counters.
#[derive(Debug)]
pub struct Counters {
    slots: Box<[Slot]>,
    mask: usize,
    hasher: std::collections::hash_map::RandomState,
}

impl Counters {
    /// A table of `slots` counters (rounded up to a power of two, at least [`PROBE`]).
    pub fn new(slots: usize) -> Counters {
        let n = slots.max(PROBE).next_power_of_two();
        Counters {
            slots: (0..n).map(|_| Slot::default()).collect(),
            mask: n - 1,
            hasher: Default::default(),
        }
    }

    /// The process-wide table, allocated on first use.
    pub fn global() -> &'static Counters {
        static T: OnceLock<Counters> = OnceLock::new();
        T.get_or_init(|| Counters::new(GLOBAL_SLOTS))
    }

    /// A hasher keyed with this table's random keys (identifiers are client-controlled, so
    /// the hash is keyed against collision flooding).
    pub fn hasher(&self) -> impl Hasher + Clone {
        self.hasher.build_hasher()
    }

    /// Number of slots (the cap on live counters).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Live counters at `now` (for tests and metrics; scans the table).
    pub fn live(&self, now: u32) -> usize {
        self.slots
            .iter()
            .filter(|s| {
                s.key.load(SeqCst) != 0 && {
                    let st = s.state.load(SeqCst);
                    st != CLAIMING && unpack(st).0 > now
                }
            })
            .count()
    }

    fn find(&self, key: u64) -> Option<&Slot> {
        let h = key as usize;
        (0..PROBE)
            .map(|i| &self.slots[(h + i) & self.mask])
            .find(|s| s.key.load(SeqCst) == key)
    }

    /// The slot of `key`, claiming an empty or expired one when it has none.
    fn find_or_claim(&self, key: u64, end: u32, now: u32) -> Option<&Slot> {
        let h = key as usize;
        for _ in 0..4 {
            let mut free = None;
            for i in 0..PROBE {
                let slot = &self.slots[(h + i) & self.mask];
                let k = slot.key.load(SeqCst);
                if k == key {
                    return Some(slot);
                }
                if free.is_none() {
                    let st = slot.state.load(SeqCst);
                    if k == 0 || (st != CLAIMING && unpack(st).0 <= now) {
                        free = Some(slot);
                    }
                }
            }
            let slot = free?;
            let k = slot.key.load(SeqCst);
            if k == 0 {
                if slot.key.compare_exchange(0, key, SeqCst, SeqCst).is_ok() {
                    let _ = slot.state.compare_exchange(0, pack(end, 0), SeqCst, SeqCst);
                    return Some(slot);
                }
                continue;
            }
            let st = slot.state.load(SeqCst);
            if st == CLAIMING || unpack(st).0 > now {
                continue;
            }
            // Take the expired slot: block its state, change the key, open the new window.
            if slot
                .state
                .compare_exchange(st, CLAIMING, SeqCst, SeqCst)
                .is_ok()
            {
                slot.key.store(key, SeqCst);
                slot.state.store(pack(end, 0), SeqCst);
                return Some(slot);
            }
        }
        None
    }

    /// Counts one hit for `key` (a window ending at `end`, seconds) unless its count has
    /// reached `limit`.
    pub fn try_acquire(&self, key: u64, end: u32, now: u32, limit: u32) -> Acquire {
        for _ in 0..16 {
            let Some(slot) = self.find_or_claim(key, end, now) else {
                return Acquire::Full;
            };
            'cas: for _ in 0..1024 {
                let st = slot.state.load(SeqCst);
                // Re-check the owner after reading the state: a slot changes hands only
                // through CLAIMING, and its key is stored before its new state.
                if st == CLAIMING || slot.key.load(SeqCst) != key {
                    break 'cas;
                }
                let (e, c) = unpack(st);
                let c = if e == end { c } else { 0 };
                if c >= limit {
                    return Acquire::Limited(c);
                }
                if slot
                    .state
                    .compare_exchange(st, pack(end, c + 1), SeqCst, SeqCst)
                    .is_ok()
                {
                    return Acquire::Counted(c);
                }
            }
        }
        Acquire::Full
    }

    /// Takes back one hit counted by [`Self::try_acquire`] (another period refused the
    /// request).
    pub fn release(&self, key: u64, end: u32) {
        let Some(slot) = self.find(key) else { return };
        for _ in 0..1024 {
            let st = slot.state.load(SeqCst);
            if st == CLAIMING || slot.key.load(SeqCst) != key {
                return;
            }
            let (e, c) = unpack(st);
            if e != end || c == 0 {
                return;
            }
            if slot
                .state
                .compare_exchange(st, pack(end, c - 1), SeqCst, SeqCst)
                .is_ok()
            {
                return;
            }
        }
    }

    /// The current count of `key` in the window ending at `end`.
    pub fn peek(&self, key: u64, end: u32) -> u32 {
        let Some(slot) = self.find(key) else { return 0 };
        let st = slot.state.load(SeqCst);
        match unpack(st) {
            (e, c) if st != CLAIMING && e == end => c,
            _ => 0,
        }
    }
}
