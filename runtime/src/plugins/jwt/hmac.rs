//! HMAC keys as precomputed midstates, so that an HS256/384/512 secret written in the config
//! never appears in the gateway binary.
//!
//! HMAC(K, m) = H((K' ⊕ opad) ‖ H((K' ⊕ ipad) ‖ m)), where K' is the key padded to one block
//! (hashed first when longer). Both `K' ⊕ pad` blocks are exactly one compression-function
//! block, so the hash state after absorbing each of them (the *midstates*) is all a verifier
//! needs. The compiler computes them with [`HmacKey::new`] and writes only the two states;
//! the gateway finishes both hashes per request. Recovering K from a midstate means inverting
//! the SHA-2 compression function. (A midstate is still as good as the key for *signing*
//! tokens: protect the binary as you would protect the secret's consumers' trust in it.)

use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The inner and outer midstates of one HMAC key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacKey {
    /// HS256.
    Sha256 { inner: [u32; 8], outer: [u32; 8] },
    /// HS384 (SHA-512 compression with SHA-384's initial state, output truncated to 48 bytes).
    Sha384 { inner: [u64; 8], outer: [u64; 8] },
    /// HS512.
    Sha512 { inner: [u64; 8], outer: [u64; 8] },
}

/// Which SHA-2 function an HMAC key uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacHash {
    Sha256,
    Sha384,
    Sha512,
}

const IV256: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];
const IV384: [u64; 8] = [
    0xcbbb9d5dc1059ed8,
    0x629a292a367cd507,
    0x9159015a3070dd17,
    0x152fecd8f70e5939,
    0x67332667ffc00b31,
    0x8eb44a8768581511,
    0xdb0c2e0d64f98fa7,
    0x47b5481dbefa4fa4,
];
const IV512: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
];

/// `K' ⊕ pad` for a block of `N` bytes.
fn padded<const N: usize>(key: &[u8], hashed: &[u8], pad: u8) -> [u8; N] {
    let k = if key.len() > N { hashed } else { key };
    let mut block = [pad; N];
    for (b, k) in block.iter_mut().zip(k) {
        *b ^= k;
    }
    block
}

fn state256(block: &[u8; 64]) -> [u32; 8] {
    let mut s = IV256;
    sha2::compress256(&mut s, &[*GenericArray::from_slice(block)]);
    s
}

fn state512(iv: [u64; 8], block: &[u8; 128]) -> [u64; 8] {
    let mut s = iv;
    sha2::compress512(&mut s, &[*GenericArray::from_slice(block)]);
    s
}

impl HmacKey {
    /// The midstates of `key` for `hash` (at build time by the compiler, at start-up for a
    /// key read from the environment).
    pub fn new(hash: HmacHash, key: &[u8]) -> HmacKey {
        match hash {
            HmacHash::Sha256 => {
                let h = Sha256::digest(key);
                HmacKey::Sha256 {
                    inner: state256(&padded::<64>(key, &h, 0x36)),
                    outer: state256(&padded::<64>(key, &h, 0x5c)),
                }
            }
            HmacHash::Sha384 => {
                let h = Sha384::digest(key);
                HmacKey::Sha384 {
                    inner: state512(IV384, &padded::<128>(key, &h, 0x36)),
                    outer: state512(IV384, &padded::<128>(key, &h, 0x5c)),
                }
            }
            HmacHash::Sha512 => {
                let h = Sha512::digest(key);
                HmacKey::Sha512 {
                    inner: state512(IV512, &padded::<128>(key, &h, 0x36)),
                    outer: state512(IV512, &padded::<128>(key, &h, 0x5c)),
                }
            }
        }
    }

    pub fn hash(&self) -> HmacHash {
        match self {
            HmacKey::Sha256 { .. } => HmacHash::Sha256,
            HmacKey::Sha384 { .. } => HmacHash::Sha384,
            HmacKey::Sha512 { .. } => HmacHash::Sha512,
        }
    }

    /// HMAC of `msg` (32, 48 or 64 bytes, in a 64-byte buffer) and its length.
    pub fn mac(&self, msg: &[u8]) -> ([u8; 64], usize) {
        let mut out = [0u8; 64];
        match *self {
            HmacKey::Sha256 { inner, outer } => {
                let ih = finish256(inner, msg);
                let oh = finish256(outer, &ih);
                out[..32].copy_from_slice(&oh);
                (out, 32)
            }
            HmacKey::Sha384 { inner, outer } => {
                let ih = finish512(inner, msg);
                let oh = finish512(outer, &ih[..48]);
                out[..48].copy_from_slice(&oh[..48]);
                (out, 48)
            }
            HmacKey::Sha512 { inner, outer } => {
                let ih = finish512(inner, msg);
                let oh = finish512(outer, &ih);
                out.copy_from_slice(&oh);
                (out, 64)
            }
        }
    }

    /// Whether `sig` is the HMAC of `msg`, compared in constant time.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let (mac, len) = self.mac(msg);
        crate::secret::ct_eq(&mac[..len], sig)
    }
}

/// Finishes SHA-256 from a state that has absorbed exactly one 64-byte block.
fn finish256(mut state: [u32; 8], msg: &[u8]) -> [u8; 32] {
    let mut blocks = msg.chunks_exact(64);
    for b in &mut blocks {
        sha2::compress256(&mut state, &[*GenericArray::from_slice(b)]);
    }
    let rest = blocks.remainder();
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let n = if rest.len() + 9 <= 64 { 64 } else { 128 };
    let bits = (64 + msg.len() as u64) * 8;
    tail[n - 8..n].copy_from_slice(&bits.to_be_bytes());
    for b in tail[..n].chunks_exact(64) {
        sha2::compress256(&mut state, &[*GenericArray::from_slice(b)]);
    }
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// Finishes SHA-512/384 from a state that has absorbed exactly one 128-byte block.
fn finish512(mut state: [u64; 8], msg: &[u8]) -> [u8; 64] {
    let mut blocks = msg.chunks_exact(128);
    for b in &mut blocks {
        sha2::compress512(&mut state, &[*GenericArray::from_slice(b)]);
    }
    let rest = blocks.remainder();
    let mut tail = [0u8; 256];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let n = if rest.len() + 17 <= 128 { 128 } else { 256 };
    let bits = (128 + msg.len() as u128) * 8;
    tail[n - 16..n].copy_from_slice(&bits.to_be_bytes());
    for b in tail[..n].chunks_exact(128) {
        sha2::compress512(&mut state, &[*GenericArray::from_slice(b)]);
    }
    let mut out = [0u8; 64];
    for (o, w) in out.chunks_exact_mut(8).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::hmac;

    /// The midstate HMAC equals a reference HMAC for keys shorter than, equal to and longer
    /// than a block, and messages around the padding boundaries.
    #[test]
    fn matches_reference_hmac() {
        let cases = [
            (HmacHash::Sha256, hmac::HMAC_SHA256),
            (HmacHash::Sha384, hmac::HMAC_SHA384),
            (HmacHash::Sha512, hmac::HMAC_SHA512),
        ];
        for (hash, alg) in cases {
            for key_len in [0usize, 1, 20, 63, 64, 65, 127, 128, 129, 300] {
                let key: Vec<u8> = (0..key_len).map(|i| (i * 7 + 3) as u8).collect();
                let ours = HmacKey::new(hash, &key);
                let reference = hmac::Key::new(alg, &key);
                for msg_len in [
                    0usize, 1, 55, 56, 63, 64, 65, 111, 112, 119, 120, 128, 129, 500,
                ] {
                    let msg: Vec<u8> = (0..msg_len).map(|i| (i * 13 + 1) as u8).collect();
                    let expected = hmac::sign(&reference, &msg);
                    let (mac, len) = ours.mac(&msg);
                    assert_eq!(
                        &mac[..len],
                        expected.as_ref(),
                        "{hash:?} key {key_len} msg {msg_len}"
                    );
                    assert!(ours.verify(&msg, expected.as_ref()));
                    let mut bad = expected.as_ref().to_vec();
                    bad[0] ^= 1;
                    assert!(!ours.verify(&msg, &bad));
                    assert!(!ours.verify(&msg, &expected.as_ref()[1..]));
                }
            }
        }
    }
}
