//! (to be written)

/// An upstream (service) with its connection pool.
pub struct Upstream;
