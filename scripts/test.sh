#!/usr/bin/env bash
# The test command: installs and starts what the tests need, then runs every test.
# Works on a fresh machine with the Rust toolchain, Python 3 and Node.js/npm.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> validating the SAM template (cfn-lint, sam validate --lint)"
scripts/validate-template.sh

echo "==> headless Chromium for the HTML report test"
if ! command -v chromium >/dev/null 2>&1 && [ -z "${PAVED_CHROMIUM:-}" ]; then
  SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

echo "==> installing @backstage/catalog-client (npm ci)"
npm ci --prefix tests/backstage-client --no-audit --no-fund --loglevel=error
echo "==> installing @octokit/webhooks-examples (GitHub's real webhook payloads; npm ci)"
npm ci --prefix tests/webhook-examples --no-audit --no-fund --loglevel=error

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "==> starting PostgreSQL on loopback for the driver tests"
PG_DIR=$(mktemp -d /tmp/paved-test-pg.XXXXXX)
PG_PLAIN_DIR=$(mktemp -d /tmp/paved-test-pg-plain.XXXXXX)
MOTO_DIR=$(mktemp -d /tmp/paved-test-moto.XXXXXX)
trap 'scripts/postgres.sh stop "$PG_DIR"; rm -rf "$PG_DIR"; scripts/postgres.sh stop "$PG_PLAIN_DIR"; rm -rf "$PG_PLAIN_DIR"; scripts/moto.sh stop "$MOTO_DIR"; rm -rf "$MOTO_DIR"' EXIT
# Free loopback ports unless given, so a busy 5432 (or a second run) is no problem.
PG_PORT=${PAVED_TEST_POSTGRES_PORT:-$(free_port)}
# TLS with a certificate for 127.0.0.1 signed by a CA made for it (its file: the _CA variable).
PAVED_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$PG_DIR" "$PG_PORT")
PAVED_TEST_POSTGRES_CA=$PG_DIR/ca.crt
# A second server that offers no TLS, for the test that sslmode=require refuses it.
PAVED_TEST_POSTGRES_PLAIN_URL=$(scripts/postgres.sh start "$PG_PLAIN_DIR" "$(free_port)" --no-tls)
export PAVED_TEST_POSTGRES_URL PAVED_TEST_POSTGRES_CA PAVED_TEST_POSTGRES_PLAIN_URL

echo "==> starting moto (AWS emulator, server mode) on loopback for the AWS drivers"
PAVED_TEST_AWS_ENDPOINT=$(scripts/moto.sh start "$MOTO_DIR" "${PAVED_TEST_MOTO_PORT:-$(free_port)}")
export PAVED_TEST_AWS_ENDPOINT
# The SDK's own environment, for code that loads its configuration the usual way.
export AWS_ENDPOINT_URL=$PAVED_TEST_AWS_ENDPOINT AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing

echo "==> cargo test --workspace"
cargo test --workspace --all-features --locked "$@"

echo "==> fuzzing every public route with schemathesis (scripts/fuzz-api.sh): no 5xx"
scripts/fuzz-api.sh
