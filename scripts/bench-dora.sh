#!/usr/bin/env bash
# The DORA benchmark: a seeded dataset at the 10,000-developer scale (20,000 services, 100,000
# deployment rows a day for 90 days: ~9 M deployments, ~27 M changes, ~50 k incidents) read
# from Parquet, reported by paved (polars), DuckDB SQL and pandas, one after another on the same
# files. Checks that all three agree on every figure and prints wall time, peak RSS and ratios.
#
#   scripts/bench-dora.sh                        # the full scale
#   SERVICES=2000 PER_DAY=10000 scripts/bench-dora.sh   # a quick run
#   PEERS="duckdb" scripts/bench-dora.sh         # paved against DuckDB only (pandas takes ~9 min)
set -euo pipefail
cd "$(dirname "$0")/.."

SERVICES=${SERVICES:-20000}
DAYS=${DAYS:-90}
PER_DAY=${PER_DAY:-100000}
SEED=${SEED:-42}
END=${END:-2026-11-23}
FROM=$(date -u -d "$END - $DAYS days" +%F)
# v2: the generator's commits per deployment (3.8 on average since 2026-11-29); a dataset of
# another generator version is not reused.
DATA=${DATA:-bench-data/dora-v2-$SERVICES-$DAYS-$PER_DAY-$SEED}
TARGET=${CARGO_TARGET_DIR:-target}
VENV=${VENV:-.venv-bench-dora}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

echo "==> cargo build --release -p paved --features analytics"
cargo build --release --locked -p paved --features analytics
BIN=$TARGET/release/paved

if [ ! -f "$VENV/.installed" ]; then
  echo "==> installing the peers (scripts/bench/dora/requirements.txt) into $VENV"
  python3 -m venv "$VENV" || { apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv "$VENV"; }
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/bench/dora/requirements.txt
  touch "$VENV/.installed"
fi

if [ ! -f "$DATA/deployments.parquet" ]; then
  echo "==> generating $DATA"
  /usr/bin/time -f "    generated in %e s, peak RSS %M KiB" \
    "$BIN" generate events --services "$SERVICES" --days "$DAYS" --deploys-per-day "$PER_DAY" \
    --seed "$SEED" --end "$END" --out "$DATA"
fi
du -sh "$DATA"/*.parquet

measure() { # name command...  → appends [seconds, peak_rss_kib] to timing
  local name=$1; shift
  echo "==> $name"
  /usr/bin/time -f "%e %M" -o "$OUT/$name.time" "$@"
  read -r secs rss < "$OUT/$name.time"
  echo "    $secs s, peak RSS $rss KiB"
  printf '"%s": [%s, %s]\n' "$name" "$secs" "$rss" >> "$OUT/timing.lines"
}
# Cold file cache for nobody: one warm-up read so all three start from the same page cache.
cat "$DATA"/*.parquet > /dev/null
measure paved "$BIN" report dora --input "$DATA" --from "$FROM" --to "$END" --format json --out "$OUT/paved.json"
PEER_DIR=scripts/bench/dora
peer_outputs=()
for peer in ${PEERS:-duckdb pandas}; do
  case "$peer" in
    duckdb | pandas) ;;
    *) echo "unknown peer $peer (duckdb, pandas)" >&2; exit 2 ;;
  esac
  measure "$peer" sh -c "'$VENV/bin/python' $PEER_DIR/${peer}_peer.py '$DATA' $FROM $END > '$OUT/$peer.json'"
  peer_outputs+=("$peer=$OUT/$peer.json")
done
{ echo "{"; paste -sd, "$OUT/timing.lines"; echo "}"; } > "$OUT/timing.json"

mkdir -p bench-results
RESULT=bench-results/dora-$(date -u +%F).md
{
  echo "## DORA report: $SERVICES services, $DAYS days, $PER_DAY deployment rows/day (seed $SEED)"
  echo
  echo "$(date -u +%FT%TZ), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m)"
  echo
  python3 $PEER_DIR/compare.py "$OUT/paved.json" "$OUT/timing.json" "${peer_outputs[@]}"
} | tee "$RESULT"
