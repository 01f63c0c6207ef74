#!/usr/bin/env bash
# The latency tail of plain proxying, Kiln against nginx, and where the waiting goes.
#
# bench/compare.sh reports p50 and p99 as wrk prints them; this script prints the
# distribution up to p99.9 and the maximum (a Lua `done` hook reads wrk's histogram), and,
# when `perf` can trace the scheduler, how long each process on the machine (wrk, the
# origin, the proxy) waited for a core during the run: `perf sched latency -p`'s average
# and maximum delay between being woken and running, per process. The tracing then runs
# during every load run, for both proxies alike, and its own cost is in the percentiles.
# A run with any socket error, timeout or non-2xx answer fails the script.
#
# Same setup as bench/compare.sh's `plain` scenario: an nginx origin answering a fixed
# 100-byte 200; nginx (master + 1 worker, upstream keep-alive) and a Kiln gateway
# (`kiln build $KILN_BUILD_FLAGS`, default `--lto`; KILN_WORKERS=1) in front of it; wrk
# -t1 -c50 on GET /bench. The two proxies run in turn, REPS times.
# Loopback only; every wait bounded; stops only what it started.
# Usage: bench/latency.sh [SECONDS_PER_RUN=5] [REPS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5}
REPS=${2:-3}
KILN_BUILD_FLAGS=${KILN_BUILD_FLAGS---lto}
for n in "$DUR" "$REPS"; do
  case $n in '' | *[!0-9]* | 0) echo "usage: bench/latency.sh [SECONDS] [REPS]" >&2; exit 2 ;; esac
done

. bench/lib.sh
install_missing "nginx-light wrk" nginx wrk
need nginx wrk curl python3
sched=no
if command -v perf >/dev/null && perf sched record -o "$work/probe.data" -- true >/dev/null 2>&1; then
  sched=yes
else
  echo "(perf cannot trace the scheduler here: latency percentiles only)" >&2
fi


echo "== building kiln and the gateway"
timeout 1800 cargo build --release -q -p kiln-codegen --bin kiln
plain_kong_yml > "$work/plain.yml"
# shellcheck disable=SC2086 # the flags are words
timeout 1200 ./target/release/kiln build $KILN_BUILD_FLAGS "$work/plain.yml" -o "$work/kiln" \
  2>"$work/build.log" || { cat "$work/build.log" >&2; exit 1; }

origin_port=$(free_port)
{
  nginx_prelude "$work/origin" off 4096
  printf '  server {\n    listen 127.0.0.1:%s;\n    location / { return 200 "%s"; }\n  }\n}\n' \
    "$origin_port" "$(printf 'k%.0s' $(seq 100))"
} > "$work/origin.conf"
nginx -c "$work/origin.conf" -p "$work/origin" & pids+=($!)
wait_200 "http://127.0.0.1:$origin_port/"

nginx_port=$(free_port)
{
  nginx_prelude "$work/proxy" on 4096
  nginx_origin_upstream "$origin_port"
  printf '  server {\n    listen 127.0.0.1:%s;\n    location /bench { proxy_pass http://origin; }\n  }\n}\n' "$nginx_port"
} > "$work/proxy.conf"
nginx -c "$work/proxy.conf" -p "$work/proxy" & pids+=($!)
wait_200 "http://127.0.0.1:$nginx_port/bench"

kiln_port=$(free_port)
KILN_PROXY_LISTEN=127.0.0.1:$kiln_port KILN_STATUS_LISTEN=127.0.0.1:0 KILN_WORKERS=1 \
  KILN_RESOLVE="bench.upstream:80=127.0.0.1:$origin_port" "$work/kiln" >"$work/kiln.log" 2>&1 &
pids+=($!)
wait_200 "http://127.0.0.1:$kiln_port/bench"

cat > "$work/percentiles.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  local bad = e.connect + e.read + e.write + e.status + e.timeout
  if bad > 0 then
    io.write(string.format("ERRORS connect %d read %d write %d status %d timeout %d\n",
      e.connect, e.read, e.write, e.status, e.timeout))
    return
  end
  local out = ""
  for _, p in ipairs({50, 90, 99, 99.9}) do
    out = out .. string.format("p%-5s %6d  ", p, latency:percentile(p))
  end
  io.write(string.format("%s max %6d µs  %8.0f req/s\n", out, latency.max,
    summary.requests / (summary.duration / 1e6)))
end
LUA

echo "== wrk -t1 -c50 -d${DUR}s per run, latencies in µs; $REPS reps, the proxies in turn"
for rep in $(seq "$REPS"); do
  for target in nginx kiln; do
    port=$nginx_port
    [ $target = kiln ] && port=$kiln_port
    timeout 10 wrk -t1 -c50 -d1s "http://127.0.0.1:$port/bench" >/dev/null
    load=(timeout $((DUR + 15)) wrk -t1 -c50 -d"${DUR}s" -s "$work/percentiles.lua"
      "http://127.0.0.1:$port/bench")
    if [ $sched = yes ]; then
      line=$(perf sched record -q -o "$work/sched.data" -- "${load[@]}" 2>/dev/null | tail -1)
    else
      line=$("${load[@]}" | tail -1)
    fi
    printf '%-6s rep %d  %s\n' "$target" "$rep" "$line"
    case $line in p50*) ;; *) echo "$target: the run failed" >&2; exit 1 ;; esac
    if [ $sched = yes ]; then
      # Waits for a core, per process: wrk, the nginx processes (the origin, and in the
      # nginx runs the proxy's master and worker) and the gateway.
      timeout 120 perf sched latency -p -i "$work/sched.data" 2>/dev/null |
        awk -F'|' '/wrk|nginx|kiln/ {
          gsub(/ +/, " "); printf "         waits for a core: %-16s avg %s max %s\n", $1, $4, $5 }' |
        sed 's/avg: *//; s/max: *//; s/ *$//'
    fi
  done
done
