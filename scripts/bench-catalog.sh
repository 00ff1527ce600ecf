#!/usr/bin/env bash
# The catalog benchmark: 20,000 Components and 200 Groups, loaded over HTTP, then a loopback
# load of 16 connections per endpoint (wrk). Prints a Markdown table and writes it to
# bench-results/. Re-run it any time; the data is seeded, so runs are comparable.
#
#   scripts/bench-catalog.sh            # release build, 15 s per endpoint
#   DURATION=30s scripts/bench-catalog.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
PORT=${PORT:-18088}

if ! command -v wrk >/dev/null; then
  echo "==> installing wrk"
  apt-get update -qq && apt-get install -y -qq wrk
fi

echo "==> cargo build --release -p paved (and the bare axum reference)"
cargo build --release -p paved --locked --bin paved --example bare_axum
BIN=target/release/paved

WORK=$(mktemp -d)
PID=; REF=
trap 'kill $PID $REF 2>/dev/null || true; rm -rf "$WORK"' EXIT
python3 scripts/gen_catalog.py --components 20000 --groups 200 --seed 42 > "$WORK/catalog.yaml"

export PAVED_JWT_SECRET=benchmark-secret-benchmark-secret-0123
start_paved() { # log level
  RUST_LOG=$1 "$BIN" up --bind "127.0.0.1:$PORT" --data "$WORK/data" 2>>"$WORK/paved.log" &
  PID=$!
  for _ in $(seq 600); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && return; sleep 0.1; done
  echo "paved did not start"; cat "$WORK/paved.log"; exit 1
}
start_paved warn
TOKEN=$("$BIN" token --data "$WORK/data" --user bench --group platform-admins)

echo "==> import"
IMPORT=$(curl -fs -o "$WORK/import.json" -w '%{time_total}' -X POST \
  -H "Authorization: Bearer $TOKEN" -H 'content-type: application/yaml' \
  --data-binary @"$WORK/catalog.yaml" "http://127.0.0.1:$PORT/v1/entities/import")
python3 - "$WORK/import.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["created"] == 20200, r
PY

run() { # name script
  local out="$WORK/${2%.lua}.wrk"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" \
    -s "scripts/bench/$2" "http://127.0.0.1:$PORT" > "$out"
  if grep -q "Non-2xx" "$out"; then echo "non-2xx answers in $1:"; cat "$out"; exit 1; fi
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$out")
  p50=$(awk '$1=="50%" {print $2}' "$out")
  p99=$(awk '$1=="99%" {print $2}' "$out")
  printf '| %s | %.0f | %s | %s |\n' "$1" "$rps" "$p50" "$p99"
}

RESULTS="$WORK/results.md"
{
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(date -u +%Y-%m-%d)"
  echo
  echo "Import of 20,000 Components + 200 Groups (7.5 MB YAML, one HTTP request): ${IMPORT} s"
  echo
  echo "| endpoint | req/s | p50 | p99 |"
  echo "|---|---|---|---|"
  run "by-name" by-name.lua
  run "by-query, owner filter, limit 50" by-owner.lua
  run "by-query, full-text term, limit 20" full-text.lua
  run "entity-facets on spec.owner" facets.lua
  RSS=$(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/$PID/status)
  WARN_RPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/by-name.wrk")

  # The same by-name load on a bare axum server returning one static entity: the ceiling
  # of this machine, measured in the same run.
  target/release/examples/bare_axum "127.0.0.1:$((PORT + 1))" &
  REF=$!
  sleep 0.5
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$((PORT + 1))/x" > "$WORK/ref.wrk"
  kill $REF; REF=
  REF_RPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/ref.wrk")
  printf '| reference: bare axum, one static entity | %.0f | %s | %s |\n' "$REF_RPS" \
    "$(awk '$1=="50%" {print $2}' "$WORK/ref.wrk")" "$(awk '$1=="99%" {print $2}' "$WORK/ref.wrk")"

  # Restart at the default log level (and so measure a restart: load from SQLite, rebuild the index).
  kill $PID; while kill -0 $PID 2>/dev/null; do sleep 0.1; done
  STARTED=$(date +%s.%N)
  start_paved info
  LOADED=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$STARTED" "$(date +%s.%N)")
  run "by-name, RUST_LOG=info (the default level)" by-name.lua
  echo
  echo "paved by-name (RUST_LOG=warn) reaches $(python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.0%}')" "$WARN_RPS" "$REF_RPS") of the bare axum ceiling measured in the same run."
  echo "Restart (load 20,200 entities from SQLite, rebuild the index, serve): ${LOADED} s"
  echo "Peak RSS of paved (import, then 4 loads): $RSS"
  kill $PID
} | tee "$RESULTS"

mkdir -p bench-results
cp "$RESULTS" "bench-results/catalog-$(date -u +%Y%m%d-%H%M%S).md"
