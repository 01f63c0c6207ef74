#!/usr/bin/env bash
# CPU per request added by plugins, through a real gateway binary: routes /plain (no
# plugin), /key (key-auth), /jwt-hs (jwt HS256), /jwt-rs (jwt RS256), /rl-local
# (rate-limiting, local), /rl-redis (rate-limiting on a redis-server started here), /cache
# (proxy-cache hits), each loaded with wrk in turn, interleaved over REPS rounds. Reports, per route, the
# median gateway CPU µs per request (utime+stime of the gateway process from /proc over the
# run, divided by the requests wrk completed), req/s, and the difference to /plain.
# Loopback only; bounded in time; stops what it starts.
# Usage: bench/plugins.sh [SECONDS_PER_RUN=5] [REPS=3]. Needs wrk and redis-server
# (apt-get install wrk redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5}
REPS=${2:-3}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install -y redis-server" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release -q -p kiln-codegen -p kiln-tests --bin kiln --bin kiln-echo
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
pids+=($!)
pem=$(sed 's/^/              /' tests/keys/rsa-public.pem)
cat > "$work/kong.yml" <<YML
_format_version: "3.0"
services:
  - name: upstream
    url: http://bench.upstream
    routes:
      - name: plain
        paths: [/plain]
      - name: key
        paths: [/key]
        plugins: [{name: key-auth}]
      - name: jwt-hs
        paths: [/jwt-hs]
        plugins: [{name: jwt}]
      - name: jwt-rs
        paths: [/jwt-rs]
        plugins: [{name: jwt}]
      - name: rl-local
        paths: [/rl-local]
        plugins: [{name: rate-limiting, config: {second: 1000000000, policy: local}}]
      - name: rl-redis
        paths: [/rl-redis]
        plugins:
          - name: rate-limiting
            config: {second: 1000000000, policy: redis, redis: {host: 127.0.0.1, port: $redis_port}}
      - name: cache
        paths: [/cache]
        plugins: [{name: proxy-cache, config: {strategy: memory}}]
consumers:
  - username: bench
    keyauth_credentials: [{key: bench-key-0123456789}]
    jwt_secrets:
      - key: bench-hs
        algorithm: HS256
        secret: bench-hs-secret-0123456789abcdef
      - key: bench-rs
        algorithm: RS256
        rsa_public_key: |
$pem
YML
./target/release/kiln build "$work/kong.yml" -o "$work/gw" 2>"$work/build.log" || { cat "$work/build.log"; exit 1; }

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
claims=$(printf '{"iss":"bench-hs"}' | b64url)
sig=$(printf '%s' "$header.$claims" | openssl dgst -sha256 -hmac bench-hs-secret-0123456789abcdef -binary | b64url)
jwt_hs="$header.$claims.$sig"
header=$(printf '{"alg":"RS256","typ":"JWT"}' | b64url)
claims=$(printf '{"iss":"bench-rs"}' | b64url)
sig=$(printf '%s' "$header.$claims" | openssl dgst -sha256 -sign tests/keys/rsa-private.pem -binary | b64url)
jwt_rs="$header.$claims.$sig"

./target/release/kiln-echo 127.0.0.1:0 >"$work/echo.out" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/echo.out" 2>/dev/null && break; sleep 0.05; done
echo_addr=$(sed -n 's/listening on //p' "$work/echo.out")
port=$(free_port)
KILN_PROXY_LISTEN=127.0.0.1:$port KILN_STATUS_LISTEN=127.0.0.1:0 KILN_WORKERS=1 \
  KILN_RESOLVE="bench.upstream:80=$echo_addr" "$work/gw" 2>"$work/gw.log" &
gw=$!
pids+=($gw)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/plain" && break; sleep 0.05; done
for route in plain key jwt-hs jwt-rs rl-local rl-redis cache; do
  case $route in
    key) h="apikey: bench-key-0123456789" ;;
    jwt-hs) h="Authorization: Bearer $jwt_hs" ;;
    jwt-rs) h="Authorization: Bearer $jwt_rs" ;;
    *) h="x-bench: 1" ;;
  esac
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "$h" "http://127.0.0.1:$port/$route")
  [ "$code" = 200 ] || { echo "route /$route answered $code" >&2; exit 1; }
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$gw/stat"; }
hz=$(getconf CLK_TCK)
: > "$work/results"
for rep in $(seq "$REPS"); do
  for route in plain key jwt-hs jwt-rs rl-local rl-redis cache; do
    case $route in
      key) h="apikey: bench-key-0123456789" ;;
      jwt-hs) h="Authorization: Bearer $jwt_hs" ;;
      jwt-rs) h="Authorization: Bearer $jwt_rs" ;;
      *) h="x-bench: 1" ;;
    esac
    t0=$(cpu_ticks)
    out=$(timeout $((DUR + 30)) wrk -t1 -c50 -d"${DUR}s" -H "$h" "http://127.0.0.1:$port/$route")
    t1=$(cpu_ticks)
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $4}')
    [ -z "$non2xx" ] || { echo "/$route: $non2xx non-2xx answers" >&2; exit 1; }
    echo "$route $reqs $((t1 - t0))" >> "$work/results"
  done
done
python3 - "$work/results" "$hz" "$DUR" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
hz, dur = int(sys.argv[2]), float(sys.argv[3])
by = {}
for route, reqs, ticks in rows:
    by.setdefault(route, []).append((int(reqs), int(ticks)))
med = {r: (statistics.median(t / hz * 1e6 / q for q, t in v), statistics.median(q / dur for q, _ in v)) for r, v in by.items()}
base = med["plain"][0]
print(f"{'route':8} {'CPU µs/req':>11} {'added':>8} {'req/s':>9}")
for r in ["plain", "key", "jwt-hs", "jwt-rs", "rl-local", "rl-redis", "cache"]:
    cpu, rps = med[r]
    print(f"{r:8} {cpu:11.1f} {cpu - base:+8.1f} {rps:9.0f}")
PY
