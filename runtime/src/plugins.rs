//! Bundled plugins, one module each.
