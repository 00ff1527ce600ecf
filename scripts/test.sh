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
# A free loopback port unless one is given, so a busy 5432 (or a second run) is no problem.
PG_PORT=${PAVED_TEST_POSTGRES_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
PAVED_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$PG_DIR" "$PG_PORT")
export PAVED_TEST_POSTGRES_URL

echo "==> cargo test --workspace"
cargo test --workspace --locked "$@"
