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
        (0, "", 0x916f_e8c8_33a7_6f34),
        (0, "a", 0x6f76_8532_2757_e6fa),
        (0, "abc", 0xa60a_d875_f364_7e14),
        (0, "abcdefgh", 0xdff3_af05_a2ea_6eed),
        (0, "abcdefghi", 0xd09f_6d00_8101_ee41),
        (START_SEED, "api.example.com", 0x7cad_61ab_9701_5383),
        (START_SEED, "svc5000.example.com", 0x41e6_daaa_7fa9_d9e4),
        (
            7,
            "0123456789abcdef-0123456789abcdef!",
            0x8fb6_8c66_9325_7195,
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
fn every_byte_counts() {
    // The overlapping loads must cover every byte at every length (hosts share long
    // prefixes and suffixes), and the compare must see every byte too.
    let base: Vec<u8> = (0..80u8).map(|i| b'a' + i % 26).collect();
    for n in 0..=base.len() {
        let key = &base[..n];
        assert!(key_eq(key, key), "n = {n}");
        for i in 0..n {
            let mut other = key.to_vec();
            other[i] ^= 0x20;
            assert_ne!(hash(3, key), hash(3, &other), "n = {n}, byte {i}");
            assert!(!key_eq(key, &other), "n = {n}, byte {i}");
            assert!(!key_eq(&other, key), "n = {n}, byte {i}");
        }
        assert!(!key_eq(key, &base[..n.saturating_sub(1)]) || n == 0);
    }
}

#[test]
fn hosts_sharing_prefix_and_suffix() {
    // The shape that defeats a hash of only the first and last bytes.
    let keys: Vec<&'static str> = (0..20_000)
        .map(|i| &*String::leak(format!("service-{i:05}.internal.corp.example.com")))
        .collect();
    let map = leak_map(&keys);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(map.get(k), Some(&i));
    }
    assert_eq!(map.get("service-20000.internal.corp.example.com"), None);
}

#[test]
fn buckets_are_a_power_of_two_of_odd_multipliers() {
    for n in [1usize, 2, 3, 4, 7, 1000, 3073] {
        let layout = build(&generated_keys(n)).expect("distinct");
        assert!(layout.disps.len().is_power_of_two(), "n = {n}");
        assert!(layout.disps.len() >= n.div_ceil(3), "n = {n}");
        assert!(layout.disps.iter().all(|m| m % 2 == 1), "n = {n}");
    }
}

#[test]
fn bucket_is_the_top_bits() {
    assert_eq!(bucket_of(u64::MAX, 0), 0);
    assert_eq!(bucket_of(u64::MAX, 1), 0);
    assert_eq!(bucket_of(u64::MAX, 2), 1);
    assert_eq!(bucket_of(1 << 63, 4), 2);
    assert_eq!(bucket_of(u64::MAX, 1 << 12), (1 << 12) - 1);
}
