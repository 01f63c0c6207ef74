//! Tokens whose signature this worker thread has already verified, as Envoy's `jwt_authn`
//! keeps them (`jwt_cache_config`).
//!
//! A client sends the same token with every request until it expires, and decoding it and
//! checking its signature are most of the plugin's cost. What follows the signature check
//! is kept: which secret verified the token, and its `exp` and `nbf` claims. A hit checks
//! those claims against the clock again, exactly as a miss does, so a cached token expires
//! on time; everything before (decoding, the key claim, the algorithm, the signature)
//! depends only on the token's bytes and on secrets fixed at start-up, so its outcome
//! cannot change.
//!
//! Only a token whose signature verified is stored: nothing a client makes up enters. An
//! entry is found by its plugin instance and its whole token, compared in constant time,
//! never by a hash alone (two tokens sharing a hash must not share a verdict). The slot is
//! picked by the token's last bytes, which are its signature's, keyed with a random number
//! per thread: free to compute, and not something a client can aim at another's entry.

use std::{
    cell::RefCell,
    sync::atomic::{AtomicU64, Ordering},
};

use crate::secret::ct_eq;

/// Slots per worker thread (direct-mapped: a new token replaces the slot's entry).
const SLOTS: usize = 128;
const SLOT_BITS: u32 = SLOTS.trailing_zeros();
const _: () = assert!(SLOTS.is_power_of_two());
/// Longer tokens are verified on every request, which bounds the memory entries hold.
pub(super) const MAX_TOKEN: usize = 4096;
/// Shortest token looked up: fewer bytes than any signed JWT.
const MIN_TOKEN: usize = 16;

/// What a verified token's later requests need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Verified {
    /// Index of the secret that verified the signature.
    pub verifier: usize,
    /// The claims as numbers; `None` when missing or not a number.
    pub exp: Option<f64>,
    pub nbf: Option<f64>,
}

struct Entry {
    instance: u64,
    token: Box<[u8]>,
    verified: Verified,
}

thread_local! {
    static SLOTS_OF_THREAD: RefCell<[Option<Entry>; SLOTS]> =
        const { RefCell::new([const { None }; SLOTS]) };
}

/// A fresh id for one plugin instance; entries of other instances never match it.
pub(super) fn instance_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

thread_local! {
    /// A random key for the slots: a client cannot aim its tokens at another's slot.
    static SEED: u64 = fastrand::u64(..);
}

/// The slot of `token` (`MIN_TOKEN` bytes or more): eight bytes near its end with this
/// thread's key, mixed.
fn slot(token: &[u8]) -> usize {
    let end = token.len().saturating_sub(4);
    let mut word = [0u8; 8];
    for (w, b) in word.iter_mut().zip(&token[end.saturating_sub(8)..end]) {
        *w = *b;
    }
    let keyed = u64::from_le_bytes(word) ^ SEED.with(|s| *s);
    let mixed = keyed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> (64 - SLOT_BITS)) as usize
}

/// The verdict kept for `token` under `instance`, if this thread holds one.
pub(super) fn lookup(instance: u64, token: &[u8]) -> Option<Verified> {
    if !(MIN_TOKEN..=MAX_TOKEN).contains(&token.len()) {
        return None;
    }
    let at = slot(token);
    SLOTS_OF_THREAD.with(|slots| {
        let slots = slots.borrow();
        match &slots[at] {
            Some(e) if e.instance == instance && ct_eq(&e.token, token) => Some(e.verified),
            _ => None,
        }
    })
}

/// Keeps `verified` for `token`, whose signature has just been verified by `instance`.
pub(super) fn store(instance: u64, token: &[u8], verified: Verified) {
    if !(MIN_TOKEN..=MAX_TOKEN).contains(&token.len()) {
        return;
    }
    let at = slot(token);
    SLOTS_OF_THREAD.with(|slots| {
        let mut slots = slots.borrow_mut();
        let entry = &mut slots[at];
        match entry {
            // The same length (a client's renewed token): reuse the memory.
            Some(e) if e.token.len() == token.len() => {
                e.token.copy_from_slice(token);
                e.instance = instance;
                e.verified = verified;
            }
            _ => {
                *entry = Some(Entry {
                    instance,
                    token: token.into(),
                    verified,
                })
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Verified = Verified {
        verifier: 3,
        exp: Some(1.5e9),
        nbf: None,
    };

    #[test]
    fn entries_match_on_instance_and_whole_token() {
        let a = instance_id();
        let b = instance_id();
        assert_ne!(a, b);
        let token = b"eyJhbGciOi.eyJpc3MiOi.c2lnbmF0dXJlLWJ5dGVz";
        assert_eq!(lookup(a, token), None);
        store(a, token, V);
        assert_eq!(lookup(a, token), Some(V));
        assert_eq!(lookup(b, token), None, "another instance's verdict");
        // Same slot (same tail), other bytes: no match.
        let mut other = *token;
        other[0] ^= 1;
        assert_eq!(slot(&other), slot(token));
        assert_eq!(lookup(a, &other), None);
        // Shorter and longer tokens sharing the tail.
        assert_eq!(lookup(a, &token[1..]), None);
        let mut longer = b"x".to_vec();
        longer.extend_from_slice(token);
        assert_eq!(lookup(a, &longer), None);
    }

    #[test]
    fn a_new_token_replaces_its_slot_and_sizes_are_bounded() {
        let id = instance_id();
        let first = b"header.claims.signature-one-AAAA".to_vec();
        let mut second = first.clone();
        second[0] = b'H';
        store(id, &first, V);
        let w = Verified { verifier: 1, ..V };
        store(id, &second, w);
        assert_eq!(lookup(id, &second), Some(w));
        assert_eq!(lookup(id, &first), None, "replaced: same slot");
        let long = vec![b'a'; MAX_TOKEN + 1];
        store(id, &long, V);
        assert_eq!(lookup(id, &long), None);
        let short = b"a.b.c";
        store(id, short, V);
        assert_eq!(lookup(id, short), None);
        let at_limit = vec![b'b'; MAX_TOKEN];
        store(id, &at_limit, V);
        assert_eq!(lookup(id, &at_limit), Some(V));
    }

    #[test]
    fn threads_keep_their_own_entries() {
        let id = instance_id();
        let token = b"eyJhbGciOi.eyJzdWIiOi.dGhyZWFkLWxvY2Fs";
        store(id, token, V);
        let elsewhere = std::thread::spawn(move || lookup(id, token))
            .join()
            .expect("thread");
        assert_eq!(elsewhere, None);
        assert_eq!(lookup(id, token), Some(V));
    }
}
