//! A perfect hash map over `&'static str` keys whose layout the compiler computes at build
//! time ([`build`]), so a lookup is one hash, one displacement read and one key compare.
//!
//! The scheme is hash-and-displace with minimal size: `n` keys live in exactly `n` slots.
//! A key's [`hash`] picks a bucket (`disps.len()` buckets, about three keys each); the
//! bucket's displacement, an odd 64-bit multiplier `m`, then picks the slot by
//! multiply-shift hashing:
//!
//! ```text
//! h      = hash(seed, key)
//! bucket = h >> (64 - log2(disps.len()))        (0 when there is one bucket)
//! slot   = fastrange(h * disps[bucket] mod 2^64, keys.len())
//! found  = keys[slot] == key
//! ```
//!
//! `disps.len()` is a power of two (about a third of the key count, rounded up), so the
//! bucket is the top bits of `h`; `fastrange(x, n)` is `(x * n) >> 64` in 128-bit
//! arithmetic. Keys of one bucket share the top bits of `h` but differ elsewhere, and the
//! high bits of `h * m` for a random odd `m` separate distinct `h` like a universal hash, so
//! [`build`] finds a working `m` for every bucket after a few tries. After the hash, a
//! lookup is a shift, a load, one 64-bit and one 128-bit multiply, and a key compare that
//! reuses the hash's word loads instead of calling `memcmp`.
//!
//! Everything here is fully specified (no platform-, version- or std-dependent hashing), so
//! a layout computed by `kiln` on one machine is valid for a runtime on any other.
//!
//! ```
//! use kiln_runtime::phf::{build, PhfMap};
//!
//! // At build time (the compiler):
//! let keys = ["api.example.com", "www.example.com"];
//! let layout = build(&keys).expect("keys are distinct");
//! // ...the compiler writes `layout.seed`, `layout.disps` and, for each slot `i`,
//! // `keys[layout.slots[i]]` and its value, as literals. Here we leak instead:
//! let slot_keys: Vec<&'static str> = layout.slots.iter().map(|&k| keys[k]).collect();
//! let values: Vec<u32> = layout.slots.iter().map(|&k| k as u32).collect();
//! let map = PhfMap {
//!     seed: layout.seed,
//!     disps: Vec::leak(layout.disps),
//!     keys: Vec::leak(slot_keys),
//!     values: Vec::leak(values),
//! };
//! assert_eq!(map.get("www.example.com"), Some(&1));
//! assert_eq!(map.get("example.com"), None);
//! ```

/// wyhash's first constant: odd, with well-spread bits.
const K0: u64 = 0xa076_1d64_78bd_642f;
/// wyhash's second constant.
const K1: u64 = 0xe703_7ed1_a0b4_28db;
/// wyhash's third constant.
const K2: u64 = 0x8ebc_6af0_9c88_c6e3;

/// First seed [`build`] tries; later tries add wyhash's first constant. Fixed so layouts are
/// reproducible.
pub const START_SEED: u64 = 0x6b69_6c6e_2d70_6866; // "kiln-phf"

/// How many multipliers one bucket may try before the seed is changed.
const MAX_DISPLACEMENT_TRIES: u32 = 1 << 22;
/// How many seeds [`build`] tries before giving up (never reached in practice).
const MAX_SEEDS: u32 = 64;

/// Multiply-fold: the 128-bit product of `a` and `b`, high half XOR low half.
#[inline(always)]
const fn mum(a: u64, b: u64) -> u64 {
    let r = (a as u128) * (b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

/// Maps `x` uniformly onto `0..n` with a multiply instead of a division (Lemire).
#[inline(always)]
const fn fastrange(x: u64, n: usize) -> usize {
    (((x as u128) * (n as u128)) >> 64) as usize
}

/// The string hash used by [`PhfMap`]: a wyhash-style mix that reads every byte exactly
/// through (possibly overlapping) little-endian loads, with no per-byte loop.
///
/// Specification (so the compiler and the runtime can never disagree). Let `n` be the key
/// length, `w(i)` the 8 bytes at offset `i` and `v(i)` the 4 bytes at offset `i`, both read
/// as little-endian integers, and `s = seed ^ K0`. The words `(a, b)` are:
///
/// | `n` | `a` | `b` |
/// |---|---|---|
/// | 0 | 0 | 0 |
/// | 1–3 | `key[0] \| key[n/2] << 8 \| key[n-1] << 16` | 0 |
/// | 4–7 | `v(0)` | `v(n-4)` |
/// | 8–16 | `w(0)` | `w(n-8)` |
/// | > 16 | `w(n-16)` | `w(n-8)` |
///
/// The result is `mum(a ^ s ^ K1, b ^ s ^ K2 ^ n) ^ t`, where `t = 0` when `n <= 16`, and
/// otherwise `t = c` after, starting from `c = rotate_left(s, 32)`, for `i = 0, 16, 32, …`
/// while `n - i > 16`: `c = mum(w(i) ^ c ^ K1, w(i+8) ^ c ^ K2)`. `mum(x, y)` is the
/// 128-bit product folded by XOR of its halves; `K0`, `K1`, `K2` are wyhash's first three
/// constants. Given `n`, the loads cover every byte, so keys of one length that differ
/// anywhere get unrelated hashes; the two products of a 17–32 byte key are independent, so
/// they run in parallel. Stable across versions and platforms: changing it is a breaking
/// change of every generated table.
#[inline]
pub fn hash(seed: u64, key: &[u8]) -> u64 {
    let n = key.len();
    let s = seed ^ K0;
    let (a, b, t) = if n <= 16 {
        let (a, b) = short_words(key);
        (a, b, 0)
    } else {
        let c = s.rotate_left(32);
        let t = if n <= 32 {
            mum(w64(key, 0) ^ c ^ K1, w64(key, 8) ^ c ^ K2)
        } else {
            // The 16-byte chunks at 0, 16, … that end before the last byte: those at `i`
            // with `n - i > 16`.
            key[..n - 1].chunks_exact(16).fold(c, |c, chunk| {
                mum(w64(chunk, 0) ^ c ^ K1, w64(chunk, 8) ^ c ^ K2)
            })
        };
        (w64(key, n - 16), w64(key, n - 8), t)
    };
    mum(a ^ s ^ K1, b ^ s ^ K2 ^ n as u64) ^ t
}

/// `(a, b)` of [`hash`] for a key of at most 16 bytes: together with the length they
/// determine the key.
#[inline(always)]
fn short_words(key: &[u8]) -> (u64, u64) {
    let n = key.len();
    if n >= 8 {
        (w64(key, 0), w64(key, n - 8))
    } else if n >= 4 {
        (w32(key, 0), w32(key, n - 4))
    } else if let Some(&first) = key.first() {
        // n = 1, 2, 3: bytes 0, n/2 and n-1 cover every byte.
        let mid = key.get(n / 2).copied().unwrap_or(0);
        let last = key.get(n - 1).copied().unwrap_or(0);
        (
            u64::from(first) | u64::from(mid) << 8 | u64::from(last) << 16,
            0,
        )
    } else {
        (0, 0)
    }
}

/// The 8 bytes at `at` as a little-endian word (0 past the end: callers never read there,
/// and with the length known the compiler drops the check).
#[inline(always)]
fn w64(bytes: &[u8], at: usize) -> u64 {
    match bytes.get(at..).and_then(<[u8]>::first_chunk) {
        Some(w) => u64::from_le_bytes(*w),
        None => 0,
    }
}

/// The 4 bytes at `at` as a little-endian word (0 past the end, as [`w64`]).
#[inline(always)]
fn w32(bytes: &[u8], at: usize) -> u64 {
    match bytes.get(at..).and_then(<[u8]>::first_chunk) {
        Some(w) => u64::from(u32::from_le_bytes(*w)),
        None => 0,
    }
}

/// `stored == probe`, comparing with the same overlapping word loads as [`hash`] (a call
/// to `memcmp` costs more than the whole lookup for host-sized keys).
#[inline(always)]
fn key_eq(stored: &[u8], probe: &[u8]) -> bool {
    let n = probe.len();
    if stored.len() != n {
        return false;
    }
    if n <= 16 {
        short_words(stored) == short_words(probe)
    } else if n <= 32 {
        let diff = (w64(stored, 0) ^ w64(probe, 0))
            | (w64(stored, 8) ^ w64(probe, 8))
            | (w64(stored, n - 16) ^ w64(probe, n - 16))
            | (w64(stored, n - 8) ^ w64(probe, n - 8));
        diff == 0
    } else {
        stored == probe
    }
}

/// `a == b` for short strings such as hosts, inline and without a call to `memcmp`.
#[inline]
pub(crate) fn str_eq(a: &str, b: &str) -> bool {
    key_eq(a.as_bytes(), b.as_bytes())
}

/// `s.starts_with(prefix)` for short strings such as path prefixes, inline as [`str_eq`].
#[inline]
pub(crate) fn starts_with(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| key_eq(head, prefix))
}

/// The bucket of a hash among `n_buckets` (a power of two, or 0): its top bits.
#[inline(always)]
fn bucket_of(h: u64, n_buckets: usize) -> usize {
    // 2^k buckets: shift by 64 - k (by 64 or more for one or no bucket, which gives 0).
    h.checked_shr(n_buckets.leading_zeros() + 1).unwrap_or(0) as usize
}

/// The slot a bucket's multiplier sends a hash to.
#[inline(always)]
fn slot_of(h: u64, mult: u64, slots: usize) -> usize {
    fastrange(h.wrapping_mul(mult), slots)
}

/// The `d`-th multiplier [`build`] tries for a bucket under `seed`: odd, pseudo-random.
fn multiplier(seed: u64, d: u32) -> u64 {
    mum(seed ^ u64::from(d), K2) | 1
}

/// A static perfect hash map: `keys[i]` maps to `values[i]`.
///
/// Every field is written as a literal by the compiler from a [`PhfLayout`]; the invariants
/// are `keys.len() == values.len()`, `disps.len()` is a power of two (0 exactly when `keys`
/// is empty), and every key sits in the slot `hash`/`disps` send it to. A table that breaks
/// them gives wrong answers (never a panic).
#[derive(Debug)]
pub struct PhfMap<V: 'static> {
    /// [`PhfLayout::seed`].
    pub seed: u64,
    /// [`PhfLayout::disps`]: one odd multiplier per bucket.
    pub disps: &'static [u64],
    /// Key of each slot: `keys[i] = input_keys[layout.slots[i]]`.
    pub keys: &'static [&'static str],
    /// Value of each slot, in the same order as `keys`.
    pub values: &'static [V],
}

impl<V: 'static> PhfMap<V> {
    /// The map with no keys (what the compiler writes when there are none).
    pub const EMPTY: PhfMap<V> = PhfMap {
        seed: START_SEED,
        disps: &[],
        keys: &[],
        values: &[],
    };

    /// Number of keys.
    pub const fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the map has no keys.
    pub const fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The slot holding `key`, if present: an index into `keys` and `values`.
    #[inline(always)]
    pub fn slot(&self, key: &str) -> Option<usize> {
        let key = key.as_bytes();
        let h = hash(self.seed, key);
        // An empty map has no buckets: the bucket is 0 and the read fails.
        let mult = *self.disps.get(bucket_of(h, self.disps.len()))?;
        let slot = slot_of(h, mult, self.keys.len());
        key_eq(self.keys.get(slot)?.as_bytes(), key).then_some(slot)
    }

    /// The value of `key`, if present.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&V> {
        self.values.get(self.slot(key)?)
    }
}

/// What [`build`] computed: everything the compiler writes into a [`PhfMap`] literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhfLayout {
    /// Goes to [`PhfMap::seed`].
    pub seed: u64,
    /// Goes to [`PhfMap::disps`]: one odd multiplier per bucket, a power of two of them
    /// (none exactly when there are no keys).
    pub disps: Vec<u64>,
    /// For each slot `i`, the index in the input of the key stored there: a permutation of
    /// `0..keys.len()`. [`PhfMap::keys`]`[i]` is `input[slots[i]]`, and so is its value.
    pub slots: Vec<usize>,
}

/// Why [`build`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhfError {
    /// The same key twice (indices into the input).
    #[error("duplicate key {key:?} (positions {first} and {second})")]
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// Index of its first occurrence in the input.
        first: usize,
        /// Index of its second occurrence.
        second: usize,
    },
    /// No seed worked; with distinct keys this does not happen in practice.
    #[error("no perfect hash layout found for {0} keys")]
    NoLayout(usize),
}

/// Computes a layout for `keys` (distinct). Deterministic: the same keys in the same order
/// always give the same layout, on every platform.
pub fn build(keys: &[&str]) -> Result<PhfLayout, PhfError> {
    check_distinct(keys)?;
    if keys.is_empty() {
        return Ok(PhfLayout {
            seed: START_SEED,
            disps: Vec::new(),
            slots: Vec::new(),
        });
    }
    let mut seed = START_SEED;
    for _ in 0..MAX_SEEDS {
        if let Some(layout) = try_seed(keys, seed) {
            return Ok(layout);
        }
        seed = seed.wrapping_add(K0);
    }
    Err(PhfError::NoLayout(keys.len()))
}

fn check_distinct(keys: &[&str]) -> Result<(), PhfError> {
    let mut sorted: Vec<(&str, usize)> = keys.iter().copied().zip(0..).collect();
    sorted.sort_unstable();
    for pair in sorted.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(PhfError::DuplicateKey {
                key: pair[0].0.to_owned(),
                first: pair[0].1,
                second: pair[1].1,
            });
        }
    }
    Ok(())
}

fn try_seed(keys: &[&str], seed: u64) -> Option<PhfLayout> {
    let n = keys.len();
    // About three keys per bucket: a power of two from n/3 up to 2n/3.
    let n_buckets = n.div_ceil(3).next_power_of_two();
    let hashes: Vec<u64> = keys.iter().map(|k| hash(seed, k.as_bytes())).collect();
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); n_buckets];
    for (i, &h) in hashes.iter().enumerate() {
        buckets[bucket_of(h, n_buckets)].push(i);
    }
    // Largest buckets first (while the table is empty); ties by index, for determinism.
    let mut order: Vec<usize> = (0..n_buckets).collect();
    order.sort_by_key(|&b| (std::cmp::Reverse(buckets[b].len()), b));

    const FREE: usize = usize::MAX;
    let mut slots = vec![FREE; n];
    // Empty buckets keep multiplier 1: no key reads it.
    let mut disps = vec![1u64; n_buckets];
    let mut taken: Vec<usize> = Vec::new();
    for b in order {
        let members = &buckets[b];
        if members.is_empty() {
            break; // sorted by size: the rest are empty too
        }
        let mut placed = false;
        'disp: for d in 0..MAX_DISPLACEMENT_TRIES {
            let mult = multiplier(seed, d);
            taken.clear();
            for &k in members {
                let s = slot_of(hashes[k], mult, n);
                if slots[s] != FREE || taken.contains(&s) {
                    continue 'disp;
                }
                taken.push(s);
            }
            for (&k, &s) in members.iter().zip(&taken) {
                slots[s] = k;
            }
            disps[b] = mult;
            placed = true;
            break;
        }
        if !placed {
            return None;
        }
    }
    Some(PhfLayout { seed, disps, slots })
}

#[cfg(test)]
mod tests;
