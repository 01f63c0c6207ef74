#!/usr/bin/env bash
# Runs every check and test of the workspace, as CI does. Installs what the tests need
# when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# The rate-limiting Redis tests start their own redis-server (and fail without one).
if ! command -v redis-server >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
