//! A perfect hash map over `&'static str` keys whose layout the compiler computes at build
//! time (`build`), so a lookup is one hash, one displacement read and one key compare.

/// A static perfect hash map: `keys[i]` maps to `values[i]`.
#[derive(Debug)]
pub struct PhfMap<V: 'static> {
    pub seed: u64,
    pub disps: &'static [u32],
    pub keys: &'static [&'static str],
    pub values: &'static [V],
}
