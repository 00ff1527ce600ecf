#!/usr/bin/env bash
# Time to a running platform, as a newcomer meets it: the README's first command from a cold
# build cache (a fresh target directory; crates already downloaded, as `cargo fetch` leaves
# them), then `paved up` on a fresh data directory until /healthz answers. Prints each part in
# seconds. `FEATURES=analytics scripts/bench-first-build.sh` adds what the DORA job needs.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/paved-first-build.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
cargo fetch --locked >/dev/null

features=()
[ -n "${FEATURES:-}" ] && features=(--features "$FEATURES")
start=$(date +%s)
CARGO_INCREMENTAL=0 CARGO_TARGET_DIR="$work/target" \
  cargo build --profile local -p paved --locked "${features[@]}" 2>&1 | tail -1
built=$(date +%s)

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PAVED_LOG_FORMAT=json "$work/target/local/paved" up --data "$work/data" --bind "127.0.0.1:$port" \
  >"$work/up.log" 2>&1 &
pid=$!
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do
  kill -0 "$pid" 2>/dev/null || { cat "$work/up.log"; exit 1; }
  sleep 0.1
done
up=$(date +%s)

echo "cold build (profile local${FEATURES:+, features $FEATURES}): $((built - start)) s"
echo "paved up to /healthz: $((up - built)) s"
echo "time to a running platform: $((up - start)) s ($(nproc) cores, $(date -u +%F))"
