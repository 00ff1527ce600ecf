#!/usr/bin/env bash
# The catalog's cold start on DynamoDB (moto in server mode): a seeded catalog is imported,
# then a fresh load is counted at the Table port (GetItem and Query calls, items, bytes, wall
# time), for the change log's snapshot layout and for the one-item-per-entity layout before it.
#
#   scripts/bench-catalog-coldstart.sh                 # 20,000 Components, 200 Groups
#   COMPONENTS=50000 GROUP_COUNT=500 scripts/bench-catalog-coldstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."

COMPONENTS=${COMPONENTS:-20000}
GROUP_COUNT=${GROUP_COUNT:-200}
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}

WORK=$(mktemp -d)
trap 'scripts/moto.sh stop "$WORK/moto" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/moto"
ENDPOINT=$(scripts/moto.sh start "$WORK/moto" "$PORT")
python3 scripts/gen_catalog.py --components "$COMPONENTS" --groups "$GROUP_COUNT" --seed 42 > "$WORK/catalog.yaml"

echo "==> cargo build --release --example catalog_cold_start"
cargo build --release --locked -p paved-tests --example catalog_cold_start
AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  "${CARGO_TARGET_DIR:-target}/release/examples/catalog_cold_start" "$ENDPOINT" "$WORK/catalog.yaml"
