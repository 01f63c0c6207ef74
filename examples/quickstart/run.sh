#!/usr/bin/env bash
# Starts the quickstart: the example echo upstream on 127.0.0.1:9001, then the gateway
# built from examples/quickstart/kong.yml on ${KILN_PROXY_LISTEN:-127.0.0.1:8000}
# (status listener on ${KILN_STATUS_LISTEN:-127.0.0.1:8100}). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p kiln-codegen -p kiln-tests --bin kiln --bin kiln-echo
./target/release/kiln-echo 127.0.0.1:9001 &
echo_pid=$!
trap 'kill "$echo_pid" 2>/dev/null || true' EXIT
export KILN_PROXY_LISTEN="${KILN_PROXY_LISTEN:-127.0.0.1:8000}"
export KILN_STATUS_LISTEN="${KILN_STATUS_LISTEN:-127.0.0.1:8100}"
echo "try: curl -i http://${KILN_PROXY_LISTEN}/echo/hello"
./target/release/kiln run examples/quickstart/kong.yml
