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
