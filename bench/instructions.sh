#!/usr/bin/env bash
# User-space instructions per proxied request, counted by valgrind's callgrind: Kiln
# against nginx as a reverse proxy, in front of the same origin, under the same load.
#
# Instruction counts do not move with the machine's load, unlike req/s and CPU time, so
# they are the figure to compare changes to Kiln by; `--cache` adds callgrind's cache and
# branch simulation (data reads/writes, L1 misses, branches) to show where CPU time goes
# beyond the instruction count.
#
# Scenarios: plain (GET /bench, one prefix route; nginx the same `location`) and chain
# (GET /api/v1/users with a valid HS256 token through examples/seed/kong.yml's jwt +
# rate-limiting + correlation-id, limits raised; nginx proxies the same request without
# checks). Per target: start it under callgrind, warm up with 500 requests, zero the
# counters, send REQUESTS requests (h2load --h1, 10 connections), dump, divide. Also prints
# the heap allocations per request (calls into the allocator, from callgrind's call counts).
# Origin: nginx answering a fixed 100-byte 200. Kiln is built with symbols
# (line tables, not stripped) into target/kiln-prof by `kiln build $KILN_BUILD_FLAGS`
# (default `--lto`, as bench/compare.sh), with KILN_WORKERS=1.
# Loopback only; every wait bounded; stops only what it started.
# Usage: bench/instructions.sh [REQUESTS=2000] [--cache]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
KILN_BUILD_FLAGS=${KILN_BUILD_FLAGS---lto}
SIM=()
case ${2:-} in
  '') ;;
  --cache) SIM=(--cache-sim=yes --branch-sim=yes) ;;
  *) echo "usage: bench/instructions.sh [REQUESTS] [--cache]" >&2; exit 2 ;;
esac
case $N in '' | *[!0-9]* | 0) echo "REQUESTS must be a positive whole number" >&2; exit 2 ;; esac

. bench/lib.sh
install_missing "valgrind nginx-light nghttp2-client" valgrind nginx h2load
need valgrind callgrind_control callgrind_annotate nginx h2load curl openssl python3

# nginx config: DIR PORT BODY (the origin when BODY is set, else a proxy of the origin)
nginx_conf() {
  nginx_prelude "$1" off 1024
  if [ -n "${3:-}" ]; then
    printf '  server {\n    listen 127.0.0.1:%s;\n    location / { return 200 "%s"; }\n  }\n}\n' "$2" "$3"
  else
    nginx_origin_upstream "$origin_port"
    cat <<CONF
  server {
    listen 127.0.0.1:$2;
    location /bench { proxy_pass http://origin; }
    location /api/v1/users { proxy_pass http://origin; }
  }
}
CONF
  fi
}


echo "== building kiln and the gateways (with symbols)"
cargo build --release -q -p kiln-codegen --bin kiln
plain_kong_yml > "$work/plain.yml"
sed -e 's#url: http://127\.0\.0\.1:900[0-9]#url: http://bench.upstream#' \
    -e 's/minute: [0-9][0-9]*/minute: 1000000000/' examples/seed/kong.yml > "$work/chain.yml"
grep -q 'name: jwt' "$work/chain.yml" || { echo "examples/seed/kong.yml has no jwt" >&2; exit 1; }
for cfg in plain chain; do
  # (A comment inside the continued command would end it: the variables would not reach
  # the build, and the binaries would have no symbols.)
  # shellcheck disable=SC2086 # the flags are words
  CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    timeout 1200 ./target/release/kiln build $KILN_BUILD_FLAGS "$work/$cfg.yml" -o "$work/kiln-$cfg" \
    --target-dir target/kiln-prof 2>"$work/build-$cfg.log" ||
    { cat "$work/build-$cfg.log" >&2; exit 1; }
done

secret=bench-mobile-app-secret-0123456789abcdef
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
claims=$(printf '{"iss":"mobile-app","exp":%d}' $(($(date +%s) + 86400)) | b64url)
sig=$(printf '%s' "$header.$claims" | openssl dgst -sha256 -hmac "$secret" -binary | b64url)
auth="Authorization: Bearer $header.$claims.$sig"

origin_port=$(free_port)
nginx_conf "$work/origin" "$origin_port" "$(printf 'k%.0s' $(seq 100))" > "$work/origin.conf"
nginx -c "$work/origin.conf" -p "$work/origin" & pids+=($!)
wait_200 "http://127.0.0.1:$origin_port/"

# measure NAME PATH HEADER PORT -- COMMAND...: runs COMMAND under callgrind with the
# environment in ENVS and prints the per-request events
ENVS=()
measure() {
  local name=$1 path=$2 hdr=$3 port=$4
  shift 5
  env "${ENVS[@]}" valgrind --tool=callgrind "${SIM[@]}" --dump-instr=no \
    --callgrind-out-file="$work/$name.out" "$@" 2>"$work/$name.vg.log" &
  local vg=$!
  pids+=("$vg")
  wait_200 "http://127.0.0.1:$port$path" "$hdr"
  timeout 120 h2load --h1 -n 500 -c 10 ${hdr:+-H "$hdr"} "http://127.0.0.1:$port$path" >/dev/null
  timeout 30 callgrind_control -z "$vg" >/dev/null 2>&1
  local out
  out=$(timeout 300 h2load --h1 -n "$N" -c 10 ${hdr:+-H "$hdr"} "http://127.0.0.1:$port$path")
  echo "$out" | grep -q "status codes: $N 2xx" || { echo "$name: not all 2xx" >&2; echo "$out" >&2; exit 1; }
  timeout 30 callgrind_control -d "$vg" >/dev/null 2>&1
  kill "$vg" 2>/dev/null || true
  wait "$vg" 2>/dev/null || true
  callgrind_annotate "$work/$name.out.1" 2>/dev/null | awk -v n="$N" -v name="$name" '
    /^Events shown:/ { for (i = 3; i <= NF; i++) ev[i - 2] = $i; k = NF - 2 }
    /PROGRAM TOTALS/ {
      printf "%-14s", name
      j = 0
      for (i = 1; i <= NF && j < k; i++) {
        if ($i ~ /^[0-9,]+$/) { v = $i; gsub(",", "", v); j++; printf " %s %.0f", ev[j], v / n }
      }
      printf "\n"
      exit
    }'
  # Heap allocations per request. nginx: calls into glibc's entry points from outside
  # glibc. Kiln: calls of mimalloc's allocation core (the Rust side reaches its entry with
  # a tail call, which callgrind does not record as a call).
  callgrind_annotate --tree=caller --threshold=100 "$work/$name.out.1" 2>/dev/null | awk -v n="$N" -v name="$name" '
    /^$/ { k = 0; next }
    / < / {
      if (match($0, /\(([0-9,]+)x\)/)) {
        c = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", c)
        calls[++k] = c; libc[k] = ($0 ~ /libc\.so|\/malloc\//)
      }
      next
    }
    /  \*  / {
      glibc = ($0 ~ /:(malloc|calloc|realloc|posix_memalign|memalign|aligned_alloc) /)
      mimalloc = ($0 ~ /:(mi_theap_malloc_aligned|_mi_theap_realloc_zero) /)
      for (i = 1; i <= k; i++) if ((glibc && !libc[i]) || mimalloc) total += calls[i]
      k = 0
    }
    END { printf "%-14s allocations %.1f per request\n", name, total / n }'
}

echo "== per proxied request ($N requests after 500 to warm up; h2load --h1 -c 10; kiln build ${KILN_BUILD_FLAGS:-(no flags)})"
ng_port=$(free_port)
nginx_conf "$work/nginx" "$ng_port" > "$work/nginx.conf"
measure nginx-plain /bench "" "$ng_port" -- nginx -c "$work/nginx.conf" -p "$work/nginx"
k_port=$(free_port)
ENVS=(KILN_PROXY_LISTEN="127.0.0.1:$k_port" KILN_STATUS_LISTEN=127.0.0.1:0 KILN_WORKERS=1
  KILN_RESOLVE="bench.upstream:80=127.0.0.1:$origin_port")
measure kiln-plain /bench "" "$k_port" -- "$work/kiln-plain"
ENVS=()
ng_port=$(free_port)
nginx_conf "$work/nginx2" "$ng_port" > "$work/nginx2.conf"
measure nginx-chain /api/v1/users "$auth" "$ng_port" -- nginx -c "$work/nginx2.conf" -p "$work/nginx2"
k_port=$(free_port)
ENVS=(KILN_PROXY_LISTEN="127.0.0.1:$k_port" KILN_STATUS_LISTEN=127.0.0.1:0 KILN_WORKERS=1
  KILN_RESOLVE="bench.upstream:80=127.0.0.1:$origin_port"
  MOBILE_APP_JWT_SECRET="$secret" WEB_APP_JWT_SECRET="x$secret")
measure kiln-chain /api/v1/users "$auth" "$k_port" -- "$work/kiln-chain"
