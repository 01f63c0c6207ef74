//! Kong's path rules: request path normalisation (kong-compat.md §2.1), the upstream path
//! (§2.4, v0), the upstream Host (§2.5) and splitting the `Host` header.

/// Normalises a request path (query already removed). `Err` for input Kong refuses (400).
pub fn normalize(raw: &str) -> Result<String, PathError> {
    let _ = raw;
    unimplemented!("path")
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PathError(pub &'static str);
