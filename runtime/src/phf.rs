//! A perfect hash map over `&'static str` keys whose layout the compiler computes at build
//! time ([`build`]), so a lookup is one hash, one displacement read and one key compare.
//!
//! The scheme is hash-and-displace with minimal size: `n` keys live in exactly `n` slots.
//! A key's [`hash`] picks a bucket (`disps.len()` buckets, about three keys each); the
//! bucket's displacement `d` then picks the slot:
//!
//! ```text
//! h      = hash(seed, key)
//! bucket = fastrange(h, disps.len())
//! slot   = fastrange(mum(h ^ (disps[bucket] * K0), K1), keys.len())
//! found  = keys[slot] == key
//! ```
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

/// First seed [`build`] tries; later tries add wyhash's first constant. Fixed so layouts are
/// reproducible.
pub const START_SEED: u64 = 0x6b69_6c6e_2d70_6866; // "kiln-phf"

/// How many displacement values one bucket may try before the seed is changed.
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

/// The string hash used by [`PhfMap`]: a wyhash-style mix over 16-byte little-endian chunks.
///
/// Specification (so the compiler and the runtime can never disagree): `h = seed ^ K0`;
/// for each full 16-byte chunk, read as little-endian words `a`, `b`:
/// `h = mum(a ^ K1, b ^ h)`; the remaining 0–15 bytes give `a` (their first up to 8 bytes)
/// and `b` (the bytes after those), each zero-padded little-endian; the result is
/// `mum(a ^ K1, b ^ h ^ len)`. `mum(x, y)` is the 128-bit product folded by XOR of its
/// halves; `K0`, `K1` are wyhash's first two constants. Stable across versions and
/// platforms: changing it is a breaking change of every generated table.
#[inline]
pub fn hash(seed: u64, key: &[u8]) -> u64 {
    let mut h = seed ^ K0;
    let mut chunks = key.chunks_exact(16);
    for chunk in &mut chunks {
        let (a, b) = chunk.split_at(8);
        h = mum(word(a) ^ K1, word(b) ^ h);
    }
    let rest = chunks.remainder();
    let (a, b) = if rest.len() > 8 {
        let (a, b) = rest.split_at(8);
        (word(a), tail_word(b))
    } else {
        (tail_word(rest), 0)
    };
    mum(a ^ K1, b ^ h ^ key.len() as u64)
}

/// Eight bytes as a little-endian word.
#[inline(always)]
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

/// The 0–7 bytes `rest` as a zero-padded little-endian word, read with at most two
/// overlapping loads instead of a variable-length copy (which costs more than the hash).
#[inline(always)]
fn tail_word(rest: &[u8]) -> u64 {
    let n = rest.len();
    match rest {
        [] => 0,
        [a, ..] if n < 4 => {
            // n = 1, 2, 3: bytes 0, n/2 and n-1 cover every byte (overlaps OR the same bits).
            let mid = rest.get(n / 2).copied().unwrap_or(0);
            let last = rest.get(n - 1).copied().unwrap_or(0);
            u64::from(*a) | u64::from(mid) << (8 * (n / 2)) | u64::from(last) << (8 * (n - 1))
        }
        [a, b, c, d, ..] => {
            // n = 4..=7: the first four bytes, and the last four shifted past the overlap.
            let lo = u32::from_le_bytes([*a, *b, *c, *d]) as u64;
            let hi = match rest.get(n - 4..) {
                Some(&[e, f, g, h]) => u32::from_le_bytes([e, f, g, h]) as u64,
                _ => 0,
            };
            lo | (hi >> (8 * 8usize.saturating_sub(n))) << 32
        }
        _ => 0,
    }
}

/// The slot a displacement sends a hash to.
#[inline(always)]
fn slot_of(h: u64, disp: u32, slots: usize) -> usize {
    fastrange(mum(h ^ (disp as u64).wrapping_mul(K0), K1), slots)
}

/// A static perfect hash map: `keys[i]` maps to `values[i]`.
///
/// Every field is written as a literal by the compiler from a [`PhfLayout`]; the invariants
/// are `keys.len() == values.len()`, `disps.len() == 0` exactly when `keys` is empty, and
/// every key sits in the slot `hash`/`disps` send it to. A table that breaks them gives
/// wrong answers (never a panic).
#[derive(Debug)]
pub struct PhfMap<V: 'static> {
    /// [`PhfLayout::seed`].
    pub seed: u64,
    /// [`PhfLayout::disps`]: one displacement per bucket.
    pub disps: &'static [u32],
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
    #[inline]
    pub fn slot(&self, key: &str) -> Option<usize> {
        if self.disps.is_empty() {
            return None;
        }
        let h = hash(self.seed, key.as_bytes());
        let disp = *self.disps.get(fastrange(h, self.disps.len()))?;
        let slot = slot_of(h, disp, self.keys.len());
        (*self.keys.get(slot)? == key).then_some(slot)
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
    /// Goes to [`PhfMap::disps`] (empty exactly when there are no keys).
    pub disps: Vec<u32>,
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
    let n_buckets = n.div_ceil(3);
    let hashes: Vec<u64> = keys.iter().map(|k| hash(seed, k.as_bytes())).collect();
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); n_buckets];
    for (i, &h) in hashes.iter().enumerate() {
        buckets[fastrange(h, n_buckets)].push(i);
    }
    // Largest buckets first (while the table is empty); ties by index, for determinism.
    let mut order: Vec<usize> = (0..n_buckets).collect();
    order.sort_by_key(|&b| (std::cmp::Reverse(buckets[b].len()), b));

    const FREE: usize = usize::MAX;
    let mut slots = vec![FREE; n];
    let mut disps = vec![0u32; n_buckets];
    let mut taken: Vec<usize> = Vec::new();
    for b in order {
        let members = &buckets[b];
        if members.is_empty() {
            break; // sorted by size: the rest are empty too
        }
        let mut placed = false;
        'disp: for d in 0..MAX_DISPLACEMENT_TRIES {
            taken.clear();
            for &k in members {
                let s = slot_of(hashes[k], d, n);
                if slots[s] != FREE || taken.contains(&s) {
                    continue 'disp;
                }
                taken.push(s);
            }
            for (&k, &s) in members.iter().zip(&taken) {
                slots[s] = k;
            }
            disps[b] = d;
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
