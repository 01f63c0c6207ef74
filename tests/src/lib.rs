//! Test support for Kiln's end-to-end tests: the echo upstream and small helpers.

pub mod echo;
