#!/usr/bin/env bash
# Kiln against nginx and haproxy as reverse proxies, on the same machine and the same origin.
#
# Origin: an nginx (1 worker, own prefix in a temp dir) answering 200 with a fixed 100-byte
# body on every path. Targets, each on its own loopback port, one worker/thread each,
# upstream keep-alive on, no access logs:
#   direct   wrk/h2load straight at the origin: the ceiling (no proxy, so no CPU column)
#   nginx    worker_processes 1, upstream keepalive 64, proxy_http_version 1.1
#   haproxy  nbthread 1, mode http, http-reuse always, foreground (-db)
#   kiln     a gateway built by `kiln build $KILN_BUILD_FLAGS` (default `--lto`, the build
#            for a binary that ships; KILN_BUILD_FLAGS= measures the default build) from a
#            kong.yml written here, KILN_WORKERS=1
# Scenarios:
#   plain      GET /bench, one prefix route
#   routes1000 GET /r0500/x with 1,000 prefix routes /r0000../r0999 in every proxy
#              (nginx: 1,000 location blocks; haproxy: 1,000 acl + use_backend rules,
#              evaluated in order; kiln: 1,000 routes in kong.yml)
#   chain      GET /api/v1/users with a valid HS256 bearer token: kiln runs the reference
#              chain of examples/seed/kong.yml (jwt + rate-limiting + correlation-id; the
#              rate limits raised to 1e9/minute so nothing is rejected); nginx and haproxy
#              proxy the same request without any check
#   h2         GET /bench over HTTP/2 cleartext with prior knowledge (h2load -c50 -m1);
#              latencies from h2load's per-request log (--log-file)
#   h2m10      (not in the default set) as h2, with 10 streams per connection (-m10)
# HTTP/1.1 runs: wrk -t1 -c50 -d SECONDS --latency. Each (scenario, target) is checked
# with curl for a 200 and the 100-byte body before it is loaded, and a run with any non-2xx
# answer fails the script. Runs are interleaved: for each rep, every target in turn, the
# order rotated by one place each rep (rep 1: direct nginx haproxy kiln, rep 2: nginx
# haproxy kiln direct, ...) so that no target always runs right after the same one.
# Per run: req/s, p50, p99, and the proxy's CPU µs per request = (utime+stime ticks of
# the proxy's processes from /proc over the run) / CLK_TCK * 1e6 / requests.
# Prints, per scenario, the medians over the reps and the ratios to nginx, and each target's
# ratios to the nginx run of the same rep (paired: a drift between reps cancels out) with
# their median; the same with the
# raw rows goes to bench/results/compare-<date>.txt (not committed).
# Loopback only; bounded in time; stops only what it started.
# Usage: bench/compare.sh [SECONDS_PER_RUN=10] [REPS=3] [SCENARIOS="plain routes1000 chain h2"]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
REPS=${2:-3}
SCENARIOS=${3:-"plain routes1000 chain h2"}
KILN_BUILD_FLAGS=${KILN_BUILD_FLAGS---lto}
TARGETS="direct nginx haproxy kiln"
CONNS=50

case $DUR in '' | *[!0-9]*) echo "SECONDS_PER_RUN must be a whole number" >&2; exit 2 ;; esac
case $REPS in '' | *[!0-9]* | 0) echo "REPS must be a positive whole number" >&2; exit 2 ;; esac
for s in $SCENARIOS; do
  case $s in plain | routes1000 | chain | h2 | h2m10) ;; *) echo "unknown scenario: $s" >&2; exit 2 ;; esac
done

. bench/lib.sh
install_missing "nginx-light haproxy wrk nghttp2-client" nginx haproxy wrk h2load
need nginx haproxy wrk h2load curl openssl python3
hz=$(getconf CLK_TCK)

# ---------------------------------------------------------------- machine and versions
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain -- runtime codegen 2>/dev/null)" ] || rev="$rev (runtime/codegen modified)"
machine=$(
  echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine:  $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
  echo "nginx:    $(nginx -v 2>&1 | sed 's/^nginx version: //')"
  echo "haproxy:  $(haproxy -v | head -1 | awk '{print $3}')"
  echo "wrk:      $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
  echo "h2load:   $(h2load --version | head -1 | awk '{print $2}')"
  echo "kiln:     $rev, $(rustc --version 2>/dev/null || echo 'rustc ?'), kiln build ${KILN_BUILD_FLAGS:-(no flags)}"
  echo "runs:     $DUR s each, $REPS reps interleaved, $CONNS connections, one client thread"
)
echo "$machine"

# ---------------------------------------------------------------- kiln binaries
echo "== building kiln and the gateways (plain, routes1000, chain)"
cargo build --release -q -p kiln-codegen -p kiln-tests --bin kiln --bin kiln-echo
kiln=./target/release/kiln

plain_kong_yml > "$work/kiln-plain.yml"
{
  printf '%s\n' '_format_version: "3.0"' 'services:' '  - name: bench' '    url: http://bench.upstream' '    routes:'
  for i in $(seq 0 999); do
    r=$(printf 'r%04d' "$i")
    printf '      - name: %s\n        paths: [/%s]\n        strip_path: false\n' "$r" "$r"
  done
} > "$work/kiln-routes1000.yml"
# the reference file, with its upstreams pointed at the origin and its limits raised
sed -e 's#url: http://127\.0\.0\.1:900[0-9]#url: http://bench.upstream#' \
    -e 's/minute: [0-9][0-9]*/minute: 1000000000/' examples/seed/kong.yml > "$work/kiln-chain.yml"
if [ "$(grep -c 'url: http://bench.upstream' "$work/kiln-chain.yml")" != 2 ] ||
  [ "$(grep -c 'minute: 1000000000' "$work/kiln-chain.yml")" != 4 ] ||
  ! grep -q 'name: jwt' "$work/kiln-chain.yml" || ! grep -q 'name: correlation-id' "$work/kiln-chain.yml"; then
  echo "examples/seed/kong.yml no longer has the expected shape; update bench/compare.sh" >&2
  exit 1
fi
for cfg in plain routes1000 chain; do
  # shellcheck disable=SC2086 # the flags are words
  timeout 1200 "$kiln" build $KILN_BUILD_FLAGS "$work/kiln-$cfg.yml" -o "$work/kiln-$cfg" 2>"$work/kiln-build-$cfg.log" ||
    { cat "$work/kiln-build-$cfg.log" >&2; exit 1; }
done

# HS256 token for the seed's mobile-app consumer (iss = its key; exp checked)
secret=bench-mobile-app-secret-0123456789abcdef
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
claims=$(printf '{"iss":"mobile-app","exp":%d}' $(($(date +%s) + 86400)) | b64url)
sig=$(printf '%s' "$header.$claims" | openssl dgst -sha256 -hmac "$secret" -binary | b64url)
token="$header.$claims.$sig"

# ---------------------------------------------------------------- origin
body=$(printf 'k%.0s' $(seq 99))
origin_port=$(free_port)
origin_h2_port=$(free_port)
mkdir -p "$work/origin"
{
  nginx_prelude "$work/origin" off 4096
  cat <<CONF
  default_type text/plain;
  server {
    listen 127.0.0.1:$origin_port;
    listen 127.0.0.1:$origin_h2_port http2;
    location / { return 200 "$body\n"; }
  }
}
CONF
} > "$work/origin/nginx.conf"
nginx -p "$work/origin" -e "$work/origin/error.log" -c "$work/origin/nginx.conf" &
pids+=($!)

# ---------------------------------------------------------------- target configs
# paths_for SCENARIO: the prefixes every proxy routes in that scenario
paths_for() {
  case $1 in
    routes1000) for i in $(seq 0 999); do printf '/r%04d\n' "$i"; done ;;
    chain) echo /api/v1/users ;;
    *) echo /bench ;;
  esac
}
request_path() {
  case $1 in
    routes1000) echo /r0500/x ;;
    chain) echo /api/v1/users ;;
    *) echo /bench ;;
  esac
}

nginx_conf() { # DIR PORT H2PORT SCENARIO
  nginx_prelude "$1" on 4096
  nginx_origin_upstream "$origin_port"
  cat <<CONF
  server {
    listen 127.0.0.1:$2;
    listen 127.0.0.1:$3 http2;
CONF
  paths_for "$4" | while read -r p; do printf '    location %s { proxy_pass http://origin; }\n' "$p"; done
  printf '  }\n}\n'
}

haproxy_conf() { # PORT H2PORT SCENARIO
  cat <<CONF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
  timeout http-request 60s
frontend bench
  bind 127.0.0.1:$1
  bind 127.0.0.1:$2 proto h2
CONF
  local n=0
  paths_for "$3" | while read -r p; do
    printf '  acl route%d path_beg %s\n  use_backend origin if route%d\n' "$n" "$p" "$n"
    n=$((n + 1))
  done
  cat <<CONF
backend origin
  server origin 127.0.0.1:$origin_port
CONF
}

# ---------------------------------------------------------------- helpers
# ticks PID...: utime+stime of the processes and of their direct children (nginx workers)
ticks() {
  local total=0 p c
  for p in "$@"; do
    for c in "$p" $(pgrep -P "$p" || true); do
      [ -r "/proc/$c/stat" ] || continue
      total=$((total + $(awk '{print $14 + $15}' "/proc/$c/stat")))
    done
  done
  echo "$total"
}

# check URL H2(0/1) HEADER: a 200 with the origin's 100-byte body, over HTTP/2 when asked
check() {
  local url=$1 h2=$2 hdr=$3 out i
  for i in $(seq 100); do
    if [ "$h2" = 1 ]; then
      out=$(curl -s -m 5 --http2-prior-knowledge -H "$hdr" -o /dev/null -w '%{http_code} %{size_download} %{http_version}' "$url" || true)
      [ "$out" = "200 100 2" ] && return 0
    else
      out=$(curl -s -m 5 -H "$hdr" -o /dev/null -w '%{http_code} %{size_download} %{http_version}' "$url" || true)
      [ "$out" = "200 100 1.1" ] && return 0
    fi
    sleep 0.1
  done
  echo "$url did not answer 200 with the 100-byte body (got: $out)" >&2
  return 1
}

# us VALUE: a wrk duration (12.3us, 1.2ms, 1.0s) in µs
us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) f = 1; else if (v ~ /ms$/) f = 1000; else if (v ~ /m$/) f = 60e6; else f = 1e6; printf "%.1f", n * f }'; }

# load SCENARIO TARGET REP URL HEADER PIDS...: one run; appends a raw row
load() {
  local scen=$1 target=$2 rep=$3 url=$4 hdr=$5 out t0 t1 reqs rps p50 p99 bad errs
  shift 5
  t0=$(ticks "$@")
  case $scen in
    h2 | h2m10)
      local streams=1
      [ "$scen" = h2m10 ] && streams=10
      rm -f "$work/h2.log"
      out=$(timeout $((DUR + 30)) h2load -c"$CONNS" -m"$streams" -t1 -D "$DUR" -H "$hdr" \
        --log-file="$work/h2.log" "$url" 2>&1) || { echo "$out" >&2; echo "h2load failed: $scen $target" >&2; exit 1; }
      t1=$(ticks "$@")
      echo "$out" > "$work/last-run.txt"
      reqs=$(echo "$out" | awk '/^requests:/ {print $8}')
      bad=$(echo "$out" | awk '/^status codes:/ {print $5 + $7 + $9}')
      errs=$(echo "$out" | awk '/^requests:/ {print $10 + $12 + $14}')
      rps=$(echo "$out" | awk '/^finished in/ {print $4}')
      # per-request log: start µs, status, µs to the end of the response
      read -r p50 p99 < <(python3 - "$work/h2.log" <<'PY'
import sys
t = sorted(int(l.split()[2]) for l in open(sys.argv[1]) if l.strip())
q = lambda f: t[min(len(t) - 1, int(f * len(t)))] if t else 0
print(q(0.5), q(0.99))
PY
)
      ;;
    *)
      out=$(timeout $((DUR + 30)) wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -H "$hdr" "$url" 2>&1) ||
        { echo "$out" >&2; echo "wrk failed: $scen $target" >&2; exit 1; }
      t1=$(ticks "$@")
      echo "$out" > "$work/last-run.txt"
      reqs=$(echo "$out" | awk '/requests in/ {print $1}')
      bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
      errs=$(echo "$out" | awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}')
      rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
      p50=$(us "$(echo "$out" | awk '$1 == "50%" {print $2}')")
      p99=$(us "$(echo "$out" | awk '$1 == "99%" {print $2}')")
      ;;
  esac
  if [ -n "${bad:-}" ] && [ "${bad:-0}" != 0 ]; then
    cat "$work/last-run.txt" >&2
    echo "FAIL: $scen/$target answered $bad non-2xx responses" >&2
    exit 1
  fi
  if [ -z "$reqs" ] || [ "$reqs" = 0 ] || [ -z "$rps" ]; then
    cat "$work/last-run.txt" >&2
    echo "FAIL: $scen/$target: no requests completed" >&2
    exit 1
  fi
  [ "${errs:-0}" = 0 ] || echo "  note: $scen/$target rep $rep: $errs socket errors/failed requests" >&2
  printf '%s %s %s %s %s %s %s %s\n' "$scen" "$target" "$rep" "$reqs" "$rps" "$p50" "$p99" "$((t1 - t0))" >> "$work/raw"
  printf '  %-10s %-8s rep %s: %9.0f req/s  p50 %7.0f µs  p99 %7.0f µs\n' "$scen" "$target" "$rep" "$rps" "$p50" "$p99"
}

# ---------------------------------------------------------------- runs
: > "$work/raw"
check "http://127.0.0.1:$origin_port/bench" 0 "x-bench: 1"
for scen in $SCENARIOS; do
  sdir="$work/$scen"
  mkdir -p "$sdir/nginx"
  nginx_port=$(free_port); nginx_h2=$(free_port)
  haproxy_port=$(free_port); haproxy_h2=$(free_port)
  kiln_port=$(free_port)
  nginx_conf "$sdir/nginx" "$nginx_port" "$nginx_h2" "$scen" > "$sdir/nginx/nginx.conf"
  haproxy_conf "$haproxy_port" "$haproxy_h2" "$scen" > "$sdir/haproxy.cfg"
  nginx -t -q -p "$sdir/nginx" -e "$sdir/nginx/error.log" -c "$sdir/nginx/nginx.conf"
  haproxy -q -c -f "$sdir/haproxy.cfg"

  nginx -p "$sdir/nginx" -e "$sdir/nginx/error.log" -c "$sdir/nginx/nginx.conf" &
  nginx_pid=$!; pids+=("$nginx_pid")
  haproxy -db -q -f "$sdir/haproxy.cfg" 2>"$sdir/haproxy.log" &
  haproxy_pid=$!; pids+=("$haproxy_pid")
  case $scen in routes1000 | chain) bin=$work/kiln-$scen ;; *) bin=$work/kiln-plain ;; esac
  KILN_PROXY_LISTEN=127.0.0.1:$kiln_port KILN_STATUS_LISTEN=127.0.0.1:0 KILN_WORKERS=1 \
    KILN_RESOLVE="bench.upstream:80=127.0.0.1:$origin_port" \
    MOBILE_APP_JWT_SECRET=$secret WEB_APP_JWT_SECRET=bench-web-app-secret-0123456789abcdef \
    "$bin" 2>"$sdir/kiln.log" &
  kiln_pid=$!; pids+=("$kiln_pid")

  path=$(request_path "$scen")
  hdr="x-bench: 1"
  [ "$scen" = chain ] && hdr="Authorization: Bearer $token"
  h2=0
  case $scen in h2 | h2m10) h2=1 ;; esac
  url_of() {
    case $1 in
      direct) [ $h2 = 1 ] && echo "http://127.0.0.1:$origin_h2_port$path" || echo "http://127.0.0.1:$origin_port$path" ;;
      nginx) [ $h2 = 1 ] && echo "http://127.0.0.1:$nginx_h2$path" || echo "http://127.0.0.1:$nginx_port$path" ;;
      haproxy) [ $h2 = 1 ] && echo "http://127.0.0.1:$haproxy_h2$path" || echo "http://127.0.0.1:$haproxy_port$path" ;;
      kiln) echo "http://127.0.0.1:$kiln_port$path" ;;
    esac
  }
  pids_of() {
    case $1 in
      nginx) echo "$nginx_pid" ;;
      haproxy) echo "$haproxy_pid" ;;
      kiln) echo "$kiln_pid" ;;
    esac
  }
  echo "== $scen: GET $path"
  for rep in $(seq "$REPS"); do
    # shellcheck disable=SC2086 # one word per target
    set -- $TARGETS
    shift $(((rep - 1) % $#))
    order="$* ${TARGETS%"$*"}"
    for target in $order; do
      url=$(url_of "$target")
      check "$url" "$h2" "$hdr" || { tail -n 5 "$sdir"/*.log "$sdir"/nginx/error.log >&2 2>/dev/null; exit 1; }
      # shellcheck disable=SC2046 # one word per PID
      load "$scen" "$target" "$rep" "$url" "$hdr" $(pids_of "$target")
    done
  done
  if [ "$scen" = chain ]; then
    # the chain really ran: a request without a token is refused by kiln
    code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$(url_of kiln)")
    [ "$code" = 401 ] || { echo "FAIL: kiln's chain route answered $code without a token (expected 401)" >&2; exit 1; }
  fi
  for p in "$nginx_pid" "$haproxy_pid" "$kiln_pid"; do kill "$p" 2>/dev/null || true; done
  for p in "$nginx_pid" "$haproxy_pid" "$kiln_pid"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  done
done

# ---------------------------------------------------------------- report
mkdir -p bench/results
results=bench/results/compare-$(date -u +%Y%m%d-%H%M%S).txt
python3 - "$work/raw" "$hz" "$SCENARIOS" "$TARGETS" "$DUR" "$CONNS" > "$work/table" <<'PY'
import statistics, sys
raw, hz, scenarios, targets, dur, conns = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split(), sys.argv[5], sys.argv[6]
rows = {}
for line in open(raw):
    scen, target, _rep, reqs, rps, p50, p99, ticks = line.split()
    rows.setdefault((scen, target), []).append(
        (float(rps), float(p50), float(p99), int(ticks) / hz * 1e6 / int(reqs)))
what = {
    "plain": "GET /bench, one route",
    "routes1000": "GET /r0500/x, 1,000 prefix routes",
    "chain": "GET /api/v1/users + bearer token; kiln runs jwt + rate-limiting + correlation-id, nginx/haproxy plain proxy",
    "h2": "GET /bench over h2c (prior knowledge), h2load -m1",
    "h2m10": "GET /bench over h2c (prior knowledge), h2load -m10",
}
for scen in scenarios:
    client = f"h2load -c{conns} -t1 -D {dur}" if scen.startswith("h2") else f"wrk -t1 -c{conns} -d{dur}s"
    print(f"### {scen}: {what[scen]} ({client}; medians of {len(rows.get((scen, 'nginx'), []))})")
    print(f"{'target':8} {'req/s':>8} {'p50 µs':>8} {'p99 µs':>8} {'CPU µs/req':>10} {'req/s ÷ nginx':>13} {'CPU ÷ nginx':>11}")
    med = {t: [statistics.median(col) for col in zip(*rows[(scen, t)])] for t in targets if (scen, t) in rows}
    base = med.get("nginx")
    for t in targets:
        if t not in med:
            continue
        rps, p50, p99, cpu = med[t]
        if t == "direct":
            print(f"{t:8} {rps:8.0f} {p50:8.0f} {p99:8.0f} {'-':>10} {'-':>13} {'-':>11}")
        else:
            print(f"{t:8} {rps:8.0f} {p50:8.0f} {p99:8.0f} {cpu:10.1f} {rps / base[0]:13.2f} {cpu / base[3]:11.2f}")
    for t in targets:
        if t in ("direct", "nginx") or (scen, t) not in rows or (scen, "nginx") not in rows:
            continue
        pairs = list(zip(rows[(scen, t)], rows[(scen, "nginx")]))
        fmt = lambda rs: f"median {statistics.median(rs):.2f} (" + " ".join(f"{r:.2f}" for r in rs) + ")"
        print(f"{t} ÷ nginx, rep by rep: req/s {fmt([a[0] / b[0] for a, b in pairs])}; "
              f"CPU {fmt([a[3] / b[3] for a, b in pairs])}; p99 {fmt([a[2] / b[2] for a, b in pairs])}")
    print()
PY
{
  echo "$machine"
  echo
  cat "$work/table"
  echo "raw rows: scenario target rep requests req/s p50_µs p99_µs cpu_ticks (CLK_TCK $hz)"
  cat "$work/raw"
} > "$results"
echo
cat "$work/table"
echo "results (machine, table, raw rows): $results"
