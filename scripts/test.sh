#!/usr/bin/env bash
# The test command: installs and starts what the tests need, then runs every test.
# Works on a fresh machine with the Rust toolchain, Python 3 and Node.js/npm.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> installing @backstage/catalog-client (npm ci)"
npm ci --prefix tests/backstage-client --no-audit --no-fund --loglevel=error

echo "==> starting PostgreSQL on loopback for the driver tests"
PG_DIR=$(mktemp -d /tmp/paved-test-pg.XXXXXX)
trap 'scripts/postgres.sh stop "$PG_DIR"; rm -rf "$PG_DIR"' EXIT
PAVED_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$PG_DIR" "${PAVED_TEST_POSTGRES_PORT:-54329}")
export PAVED_TEST_POSTGRES_URL

echo "==> cargo test --workspace"
cargo test --workspace --locked "$@"
