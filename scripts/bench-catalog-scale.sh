#!/usr/bin/env bash
# The catalog at scale (issue 21): COMPONENTS Components and GROUP_COUNT Groups from
# scripts/gen_catalog.py (seeded), imported into `paved up` over HTTP in chunks of CHUNK,
# each chunk timed, with an import of PROBE new components timed before the first chunk and
# after each one (what one import costs as the catalog fills). Then each read for DURATION
# under CONNECTIONS connections (wrk, on the same cores), with the server-side percentiles
# from the Server-Timing header the catalog's by-query and entity-facets handlers set (the
# handler's time: read lock, query, rendering; not the HTTP stack or the queue before it),
# then peak RSS per entity, then a restart (load the snapshot and the log, rebuild the
# index) with the first ordered and full-text queries after it. Prints a Markdown report and
# writes it to bench-results/.
#
#   scripts/bench-catalog-scale.sh                          # release build, 200,000 + 2,000
#   COMPONENTS=20000 GROUP_COUNT=200 CHUNK=5000 scripts/bench-catalog-scale.sh   # quick run
#   BIN=target/release/paved scripts/bench-catalog-scale.sh # an already built binary
#
# GROUP_COUNT, not GROUPS: bash keeps GROUPS for the user's group ids.
set -euo pipefail
cd "$(dirname "$0")/.."

COMPONENTS=${COMPONENTS:-200000}
GROUP_COUNT=${GROUP_COUNT:-2000}
CHUNK=${CHUNK:-20000}
PROBE=${PROBE:-1000}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
PORT=${PORT:-18090}

if ! command -v wrk >/dev/null; then
  echo "==> installing wrk"
  apt-get update -qq && apt-get install -y -qq wrk
fi

if [ -z "${BIN:-}" ]; then
  echo "==> cargo build --release -p paved"
  cargo build --release -p paved --locked --bin paved
  BIN=target/release/paved
fi

WORK=$(mktemp -d)
PID=
trap 'if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

echo "==> generating $COMPONENTS components and $GROUP_COUNT groups (seed 42)"
python3 scripts/gen_catalog.py --components "$COMPONENTS" --groups "$GROUP_COUNT" --seed 42 \
  > "$WORK/catalog.yaml"
python3 - "$WORK" "$CHUNK" <<'PY'
import sys
work, chunk = sys.argv[1], int(sys.argv[2])
docs = open(f"{work}/catalog.yaml").read().split("---\n")[1:]
groups = [d for d in docs if "\nkind: Group\n" in d]
components = [d for d in docs if "\nkind: Component\n" in d]
open(f"{work}/groups.yaml", "w").write("".join("---\n" + d for d in groups))
for i in range(0, len(components), chunk):
    with open(f"{work}/chunk-{i // chunk:03d}.yaml", "w") as f:
        f.write("".join("---\n" + d for d in components[i:i + chunk]))
PY
rm "$WORK/catalog.yaml"
CHUNKS=$(ls "$WORK"/chunk-*.yaml | wc -l)
for i in $(seq 0 "$CHUNKS"); do
  python3 scripts/gen_catalog.py --components "$PROBE" --groups "$GROUP_COUNT" --seed $((100 + i)) \
    --prefix "probe$i" --no-groups > "$WORK/probe-$i.yaml"
done

export PAVED_JWT_SECRET=benchmark-secret-benchmark-secret-0123
# Snapshot publications are logged at info by the repository; everything else at warn.
export RUST_LOG=warn,paved_core::catalog::repository=info PAVED_LOG_FORMAT=text
start_paved() {
  "$BIN" up --bind "127.0.0.1:$PORT" --data "$WORK/data" 2>>"$WORK/paved.log" &
  PID=$!
  for _ in $(seq 6000); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && return; sleep 0.05; done
  echo "paved did not start"; cat "$WORK/paved.log"; exit 1
}
rss() { awk -v k="$1" '$1 == k":" {printf "%.0f", $2 / 1024}' "/proc/$PID/status"; }
snapshots() { grep -c "catalog snapshot published" "$WORK/paved.log" || true; }
entities() {
  curl -fs -G -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/catalog/entities/by-query" \
    --data-urlencode limit=1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["totalItems"])'
}

start_paved
TOKEN=$("$BIN" token --data "$WORK/data" --user bench --group platform-admins)

IMPORTS="$WORK/imports.md"
# import FILE WHAT: posts one import, checks it created every document, appends a row.
import() {
  local file=$1 what=$2 before after docs seconds snaps
  before=$(snapshots)
  docs=$(grep -c '^kind: ' "$file")
  local fill
  fill=$(entities)
  seconds=$(curl -fs -o "$WORK/import.json" -w '%{time_total}' -X POST \
    -H "Authorization: Bearer $TOKEN" -H 'content-type: application/yaml' \
    --data-binary @"$file" "http://127.0.0.1:$PORT/v1/entities/import")
  python3 - "$WORK/import.json" "$docs" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["created"] == int(sys.argv[2]), {k: r[k] for k in ("created", "updated", "unchanged")}
PY
  after=$(snapshots)
  snaps=$((after - before))
  printf '| %s | %s | %s | %.2f | %s | %s MB |\n' "$fill" "$what" "$docs" "$seconds" \
    "$([ "$snaps" -gt 0 ] && echo "yes ($snaps)" || echo "")" "$(rss VmRSS)" >> "$IMPORTS"
}

echo "==> importing"
{
  echo "| entities before | import | documents | seconds | snapshot published during it | RSS after |"
  echo "|---|---|---|---|---|---|"
} > "$IMPORTS"
import "$WORK/groups.yaml" "groups"
import "$WORK/probe-0.yaml" "probe: $PROBE new components"
for i in $(seq 0 $((CHUNKS - 1))); do
  import "$WORK/chunk-$(printf %03d "$i").yaml" "chunk $((i + 1)) of $CHUNKS"
  import "$WORK/probe-$((i + 1)).yaml" "probe: $PROBE new components"
done
TOTAL=$(entities)
HWM_IMPORT=$(rss VmHWM)
RSS_IMPORT=$(rss VmRSS)
cat "$IMPORTS"

# Lua for wrk: a request generator, and for the handlers that set Server-Timing, its
# percentiles over every answer of every thread.
timing_lua() {
  cat <<'LUA'
durs = {}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body)
  local st = headers["server-timing"]
  if st then
    local d = string.match(st, "dur=([%d%.]+)")
    if d then durs[#durs + 1] = tonumber(d) end
  end
end
function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    local d = t:get("durs")
    for i = 1, #d do all[#all + 1] = d[i] end
  end
  table.sort(all)
  local function pct(p)
    if #all == 0 then return 0 end
    return all[math.max(1, math.ceil(#all * p))]
  end
  if #all > 0 then
    io.write(string.format("SERVER n=%d p50=%.3f p99=%.3f max=%.3f\n", #all, pct(0.5), pct(0.99), all[#all]))
  end
end
LUA
}
cat > "$WORK/by-name.lua" <<LUA
math.randomseed(42)
request = function()
  return wrk.format("GET", string.format("/api/catalog/entities/by-name/component/default/svc-%05d", math.random(0, $((COMPONENTS - 1)))))
end
LUA
{ timing_lua; cat <<'LUA'
request = function()
  return wrk.format("GET", "/api/catalog/entities/by-query?orderField=metadata.name,desc&limit=50")
end
LUA
} > "$WORK/ordered.lua"
{ timing_lua; cat <<'LUA'
request = function()
  return wrk.format("GET", "/api/catalog/entities/by-query?filter=kind=component&limit=1")
end
LUA
} > "$WORK/count.lua"
{ timing_lua; cat <<'LUA'
request = function()
  return wrk.format("GET", "/api/catalog/entity-facets?facet=spec.owner&filter=kind=component")
end
LUA
} > "$WORK/facets.lua"
# The same terms as scripts/bench/full-text.lua: a word (about one entity in 19) or a name
# prefix (100 names).
{ timing_lua; cat <<'LUA'
math.randomseed(42)
local words = {"payments", "ledger", "search", "billing", "checkout", "identity", "inventory", "shipping"}
request = function()
  local term
  if math.random() < 0.5 then
    term = words[math.random(1, #words)]
  else
    term = string.format("svc-%03d", math.random(0, 199))
  end
  return wrk.format("GET", "/api/catalog/entities/by-query?fullTextFilterTerm=" .. term .. "&limit=20")
end
LUA
} > "$WORK/full-text.lua"
{ timing_lua; cat <<LUA
math.randomseed(42)
request = function()
  return wrk.format("GET", string.format("/api/catalog/entities/by-query?filter=kind=component,spec.owner=team-%04d&limit=50", math.random(0, $((GROUP_COUNT - 1)))))
end
LUA
} > "$WORK/by-owner.lua"

READS="$WORK/reads.md"
run() { # name script
  local out="$WORK/${2%.lua}.wrk"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" \
    -s "$WORK/$2" "http://127.0.0.1:$PORT" > "$out"
  if grep -q "Non-2xx" "$out"; then echo "non-2xx answers in $1:"; cat "$out"; exit 1; fi
  local rps p50 p99 server
  rps=$(awk '/Requests\/sec/ {print $2}' "$out")
  p50=$(awk '$1=="50%" {print $2}' "$out")
  p99=$(awk '$1=="99%" {print $2}' "$out")
  server=$(awk '/^SERVER/ {sub(/p50=/, "", $3); sub(/p99=/, "", $4); sub(/max=/, "", $5); printf "%s ms | %s ms | %s ms", $3, $4, $5}' "$out")
  printf '| %s | %.0f | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "${server:-| |}" >> "$READS"
}

echo "==> reads ($DURATION each, $CONNECTIONS connections)"
# The first ordered query builds the order of metadata.name; time it alone.
FIRST_ORDERED=$(curl -fs -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" \
  "http://127.0.0.1:$PORT/api/catalog/entities/by-query?orderField=metadata.name,desc&limit=50")
{
  echo "| read | req/s | client p50 | client p99 | server p50 | server p99 | server max |"
  echo "|---|---|---|---|---|---|---|"
} > "$READS"
run "ordered page of 50, \`orderField=metadata.name,desc\`" ordered.lua
run "count, \`filter=kind=component&limit=1\` (totalItems)" count.lua
run "facets on \`spec.owner\`, \`filter=kind=component\`" facets.lua
run "full text, limit 20" full-text.lua
run "\`filter=kind=component,spec.owner=<random team>&limit=50\`" by-owner.lua
run "\`by-name\`, random components" by-name.lua
HWM_READS=$(rss VmHWM)
RSS_READS=$(rss VmRSS)
cat "$READS"

echo "==> restart"
kill "$PID"; while kill -0 "$PID" 2>/dev/null; do sleep 0.1; done
STARTED=$(date +%s.%N)
start_paved
LOADED=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$STARTED" "$(date +%s.%N)")
RSS_RESTART=$(rss VmRSS)
FIRST_ORDERED_RESTART=$(curl -fs -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" \
  "http://127.0.0.1:$PORT/api/catalog/entities/by-query?orderField=metadata.name,desc&limit=50")
FIRST_TEXT_RESTART=$(curl -fs -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" \
  "http://127.0.0.1:$PORT/api/catalog/entities/by-query?fullTextFilterTerm=payments&limit=20")
RSS_RESTART_QUERIED=$(rss VmRSS)
kill "$PID"; PID=

per() { python3 -c "import sys; print(f'{float(sys.argv[1]) * 1048576 / float(sys.argv[2]):,.0f}')" "$1" "$TOTAL"; }
RESULTS="$WORK/results.md"
{
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(date -u +%Y-%m-%d)"
  echo "Catalog: $COMPONENTS components + $GROUP_COUNT groups in chunks of $CHUNK, $((CHUNKS + 1)) probes of $PROBE; $TOTAL entities in the end (with paved's golden paths)"
  echo
  cat "$IMPORTS"
  echo
  cat "$READS"
  echo
  echo "First ordered page after the imports (builds the order of metadata.name): ${FIRST_ORDERED} s"
  echo
  echo "| memory | MB | bytes per entity |"
  echo "|---|---|---|"
  echo "| peak RSS, imports | $HWM_IMPORT | $(per "$HWM_IMPORT") |"
  echo "| RSS after the imports | $RSS_IMPORT | $(per "$RSS_IMPORT") |"
  echo "| peak RSS, imports and reads | $HWM_READS | $(per "$HWM_READS") |"
  echo "| RSS after the reads | $RSS_READS | $(per "$RSS_READS") |"
  echo "| RSS after a restart | $RSS_RESTART | $(per "$RSS_RESTART") |"
  echo "| RSS after a restart and its first ordered and full-text queries | $RSS_RESTART_QUERIED | $(per "$RSS_RESTART_QUERIED") |"
  echo
  echo "Restart (load the snapshot and the log from SQLite, rebuild the index, serve): ${LOADED} s"
  echo "First ordered page after the restart: ${FIRST_ORDERED_RESTART} s; first full-text query: ${FIRST_TEXT_RESTART} s"
} | tee "$RESULTS"

mkdir -p bench-results
cp "$RESULTS" "bench-results/catalog-scale-$(date -u +%Y%m%d-%H%M%S).md"
