use super::*;

/// Builds a map from `keys` whose value is each key's input index, as the compiler would.
fn leak_map(keys: &[&'static str]) -> PhfMap<usize> {
    let layout = build(keys).expect("distinct keys");
    PhfMap {
        seed: layout.seed,
        disps: Vec::leak(layout.disps),
        keys: Vec::leak(layout.slots.iter().map(|&i| keys[i]).collect()),
        values: Vec::leak(layout.slots),
    }
}

fn generated_keys(n: usize) -> Vec<&'static str> {
    (0..n)
        .map(|i| &*String::leak(format!("host-{i}.svc{}.example.com", i % 7)))
        .collect()
}

#[test]
fn hash_is_pinned() {
    // Generated tables depend on these exact values: a change here is a breaking change.
    // Cross-checked against an independent implementation of the spec in `hash`'s doc.
    let cases: &[(u64, &str, u64)] = &[
        (0, "", 0x1ff5_c292_3a78_8d2c),
        (0, "a", 0x6837_7a57_0959_786f),
        (0, "abcdefgh", 0xbd0c_5905_8aaf_613b),
        (START_SEED, "api.example.com", 0xc9af_01be_1781_5d74),
        (
            7,
            "0123456789abcdef-0123456789abcdef!",
            0x8896_4325_6c10_1008,
        ),
    ];
    for (seed, key, want) in cases {
        assert_eq!(hash(*seed, key.as_bytes()), *want, "hash({seed}, {key:?})");
    }
}

#[test]
fn hash_separates_lengths_and_seeds() {
    // Zero padding must not make "a" and "a\0" collide, nor 8- and 16-byte zero runs.
    let pairs: &[(&[u8], &[u8])] = &[
        (b"a", b"a\0"),
        (b"", b"\0"),
        (&[0; 8], &[0; 16]),
        (b"abcdefgh", b"abcdefgh\0"),
    ];
    for (a, b) in pairs {
        assert_ne!(hash(1, a), hash(1, b), "{a:?} vs {b:?}");
    }
    assert_ne!(hash(1, b"x"), hash(2, b"x"));
}

#[test]
fn empty_map() {
    let layout = build(&[]).expect("empty is fine");
    assert!(layout.disps.is_empty() && layout.slots.is_empty());
    let map: PhfMap<u32> = PhfMap::EMPTY;
    assert!(map.is_empty());
    assert_eq!(map.get(""), None);
    assert_eq!(map.get("anything"), None);
}

#[test]
fn present_and_absent_keys() {
    for n in [1usize, 2, 3, 10, 100, 10_000] {
        let keys = generated_keys(n);
        let map = leak_map(&keys);
        assert_eq!(map.len(), n);
        let mut perm = map.values.to_vec();
        perm.sort_unstable();
        assert_eq!(perm, (0..n).collect::<Vec<_>>(), "slots are a permutation");
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(map.get(k), Some(&i), "n={n} key {k}");
        }
        for absent in [
            "",
            "host-0.svc0.example.co",
            "host-0.svc0.example.comm",
            "Host-0.svc0.example.com",
            "x",
        ] {
            if !keys.contains(&absent) {
                assert_eq!(map.get(absent), None, "n={n} absent {absent}");
            }
        }
        for i in n..n + 50 {
            assert_eq!(map.get(&format!("host-{i}.svc{}.example.com", i % 7)), None);
        }
    }
}

#[test]
fn small_handwritten_set() {
    let keys = ["a", "", "b", "api.example.com", "a\0"];
    let map = leak_map(&keys);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(map.get(k), Some(&i));
    }
    assert_eq!(map.get("c"), None);
}

#[test]
fn layout_is_deterministic() {
    let keys = generated_keys(1000);
    let a = build(&keys).expect("distinct");
    let b = build(&keys).expect("distinct");
    assert_eq!(a, b);
    assert_eq!(
        a.seed, START_SEED,
        "the first seed works for ordinary input"
    );
}

#[test]
fn duplicate_keys_fail() {
    let err = build(&["a", "b", "a"]).expect_err("duplicate");
    assert_eq!(
        err,
        PhfError::DuplicateKey {
            key: "a".into(),
            first: 0,
            second: 2
        }
    );
}

#[test]
fn malformed_table_does_not_panic() {
    // Values shorter than keys (a generator bug) must give None, never a panic.
    let map = PhfMap::<u8> {
        seed: START_SEED,
        disps: &[0],
        keys: &["a"],
        values: &[],
    };
    assert_eq!(map.get("a"), None);
}

#[test]
fn tail_word_is_zero_padded_little_endian() {
    let bytes = [0x11u8, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77];
    for n in 0..=7 {
        let mut padded = [0u8; 8];
        padded[..n].copy_from_slice(&bytes[..n]);
        assert_eq!(
            tail_word(&bytes[..n]),
            u64::from_le_bytes(padded),
            "n = {n}"
        );
    }
}
