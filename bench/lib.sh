# Shared by the bench/ scripts (source it after `cd` to the repository root).

# install_missing "PACKAGES" TOOL...: installs PACKAGES from Debian's packages when one of
# the TOOLs is not on PATH (with /usr/sbin, where nginx and haproxy live).
install_missing() {
  local packages=$1 missing=() tool
  shift
  PATH=$PATH:/usr/sbin
  for tool in "$@"; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing the missing ${missing[*]} from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086 # one word per package
    timeout 600 apt-get install -y $packages >&2
  fi
}

# need TOOL...: fails when one of them is not on PATH.
need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 1; }
  done
}

# Sets `work` (a temp dir) and `pids` (append what the script starts): on exit, those
# processes get TERM and a bounded moment to go (nginx masters stop their workers), then
# the temp dir, their prefix, is removed.
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do
    if [ -n "$p" ]; then kill "$p" 2>/dev/null || true; fi
  done
  for _ in $(seq 50); do
    alive=0
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port free right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# nginx with its own prefix DIR (pid, logs and temp paths inside it), one worker, no access
# log, keep-alive connections that are never closed for their request count: prints
# everything of nginx.conf up to the inside of its `http` block. MASTER on|off (off: one
# process), CONNECTIONS per worker.
nginx_prelude() { # DIR MASTER CONNECTIONS
  mkdir -p "$1/tmp"
  cat <<CONF
worker_processes 1;
daemon off;
master_process $2;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections $3; }
http {
  access_log off;
  client_body_temp_path $1/tmp/body;
  proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi;
  uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
CONF
}

# Inside `http`: the upstream `origin` at 127.0.0.1:PORT with 64 idle keep-alive
# connections, and HTTP/1.1 keep-alive towards it.
nginx_origin_upstream() { # PORT
  cat <<CONF
  upstream origin {
    server 127.0.0.1:$1;
    keepalive 64;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
  }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
CONF
}

# wait_200 URL [HEADER]: waits (30 s at most) until URL answers 200.
wait_200() {
  for _ in $(seq 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 ${2:+-H "$2"} "$1" || true)
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  echo "no 200 from $1" >&2
  return 1
}

# The kong.yml of the `plain` scenario: GET /bench, one prefix route, the path kept, to the
# service host `bench.upstream` (mapped to the origin with KILN_RESOLVE).
plain_kong_yml() {
  cat <<'YML'
_format_version: "3.0"
services:
  - name: bench
    url: http://bench.upstream
    routes:
      - name: bench
        paths: [/bench]
        strip_path: false
YML
}
