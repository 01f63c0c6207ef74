#!/usr/bin/env bash
# Measures what the build-time compiler costs and what the gateway costs to start:
#   1. clean build time of the workspace (release: kiln + runtime),
#   2. `kiln build` of a config with a cold shared target directory,
#   3. edit → new binary with a warm target directory (one route added),
#   4. binary size,
#   5. cold start: exec → first proxied 200 (median of N starts), idle RSS,
#   6. RSS under load: VmRSS and VmHWM of the gateway after a 5 s wrk -c50 run,
#   7. with --lto: `kiln build --lto` in the same target directory (its dependencies are
#      compiled once more for the release-lto profile), then edit → new binary and the
#      binary size with --lto.
# Only loopback; stops what it starts. Usage: bench/startup.sh [N_STARTS] [--lto]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
LTO=${2:-}
case $LTO in '' | --lto) ;; *) echo "usage: bench/startup.sh [N_STARTS] [--lto]" >&2; exit 2 ;; esac
if ! command -v wrk >/dev/null; then
  echo "installing wrk from Debian's packages" >&2
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y wrk >&2
fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

secs() { python3 -c "import time; print(time.monotonic())"; }
since() { python3 -c "print(f'{$(secs) - $1:.1f}')"; }

echo "== clean release build of the workspace (kiln + runtime)"
export CARGO_TARGET_DIR="$work/ws-target"
t0=$(secs)
cargo build --release -q -p kiln-codegen -p kiln-tests --bin kiln --bin kiln-echo
echo "clean build: $(since "$t0") s"
kiln="$CARGO_TARGET_DIR/release/kiln"
echo_bin="$CARGO_TARGET_DIR/release/kiln-echo"
unset CARGO_TARGET_DIR

cp examples/quickstart/kong.yml "$work/kong.yml"
echo "== kiln build, cold shared target directory"
t0=$(secs)
"$kiln" build "$work/kong.yml" -o "$work/gw" --target-dir "$work/kiln-target" 2>"$work/build1.log"
echo "first kiln build: $(since "$t0") s"

echo "== edit -> new binary, warm"
cat >> "$work/kong.yml" <<'YML'
routes:
  - name: added-by-the-benchmark
    paths: [/added]
    service: echo
YML
t0=$(secs)
"$kiln" build "$work/kong.yml" -o "$work/gw" --target-dir "$work/kiln-target" 2>"$work/build2.log"
echo "edit -> binary: $(since "$t0") s"
python3 -c "import os; n = os.path.getsize('$work/gw'); print(f'binary size: {n} bytes ({n / 1048576:.1f} MiB)')"

echo "== cold start: exec -> first proxied 200 (median of $N)"
"$echo_bin" 127.0.0.1:0 >"$work/echo.out" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/echo.out" 2>/dev/null && break; sleep 0.05; done
echo_addr=$(sed -n 's/listening on //p' "$work/echo.out")
python3 - "$work/gw" "$echo_addr" "$N" <<'PY'
import os, socket, subprocess, sys, time
gw, echo, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
times, rss = [], []
for _ in range(n):
    port, sport = free_port(), free_port()
    env = dict(os.environ, KILN_PROXY_LISTEN=f"127.0.0.1:{port}", KILN_STATUS_LISTEN=f"127.0.0.1:{sport}",
               KILN_WORKERS="2")
    # the quickstart points at 127.0.0.1:9001; send it to this run's echo instead
    env["KILN_RESOLVE"] = f"127.0.0.1:9001={echo}"
    t0 = time.monotonic()
    p = subprocess.Popen([gw], env=env, stderr=subprocess.DEVNULL)
    deadline = t0 + 10
    ok = False
    while time.monotonic() < deadline:
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=1)
            c.sendall(b"GET /echo/x HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
            head = c.recv(64); c.close()
            if head.startswith(b"HTTP/1.1 200"):
                ok = True; break
        except OSError:
            pass
        time.sleep(0.0005)
    times.append((time.monotonic() - t0) * 1000)
    with open(f"/proc/{p.pid}/status") as f:
        rss += [int(l.split()[1]) for l in f if l.startswith("VmRSS:")]
    p.terminate(); p.wait(timeout=10)
    if not ok:
        sys.exit("gateway did not answer 200")
times.sort(); rss.sort()
print(f"cold start (exec -> first proxied 200): median {times[len(times)//2]:.2f} ms, min {times[0]:.2f} ms")
print(f"RSS after one request: median {rss[len(rss)//2]/1024:.1f} MiB")
PY

echo "== RSS under load: after a 5 s wrk -t1 -c50 run (KILN_WORKERS=2, as above)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
KILN_PROXY_LISTEN=127.0.0.1:$port KILN_STATUS_LISTEN=127.0.0.1:0 KILN_WORKERS=2 \
  KILN_RESOLVE="127.0.0.1:9001=$echo_addr" "$work/gw" 2>"$work/gw.log" &
gw=$!
pids+=("$gw")
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/echo/x" && break; sleep 0.05; done
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/echo/x")
[ "$code" = 200 ] || { echo "gateway answered $code" >&2; exit 1; }
kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$gw/status"; }
idle=$(kib VmRSS)
out=$(timeout 40 wrk -t1 -c50 -d5s "http://127.0.0.1:$port/echo/x")
if echo "$out" | grep -q 'Non-2xx'; then echo "$out" >&2; echo "non-2xx answers under load" >&2; exit 1; fi
python3 -c "print(f'RSS before load: {$idle / 1024:.1f} MiB; after: VmRSS {$(kib VmRSS) / 1024:.1f} MiB, VmHWM (peak) {$(kib VmHWM) / 1024:.1f} MiB; {$(echo "$out" | awk '/^Requests\/sec/ {print $2}'):.0f} req/s')"

if [ "$LTO" = --lto ]; then
  echo "== kiln build --lto (first: the dependencies for the release-lto profile)"
  t0=$(secs)
  "$kiln" build --lto "$work/kong.yml" -o "$work/gw-lto" --target-dir "$work/kiln-target" 2>"$work/build3.log"
  echo "first kiln build --lto: $(since "$t0") s"
  cat >> "$work/kong.yml" <<'YML'
  - name: added-by-the-benchmark-lto
    paths: [/added-lto]
    service: echo
YML
  t0=$(secs)
  "$kiln" build --lto "$work/kong.yml" -o "$work/gw-lto" --target-dir "$work/kiln-target" 2>"$work/build4.log"
  echo "edit -> binary, --lto: $(since "$t0") s"
  python3 -c "import os; n = os.path.getsize('$work/gw-lto'); print(f'binary size, --lto: {n} bytes ({n / 1048576:.1f} MiB)')"
fi
