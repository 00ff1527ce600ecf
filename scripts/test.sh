#!/usr/bin/env bash
# The test command: installs and starts what the tests need, then runs every test.
# Works on a fresh machine with the Rust toolchain, Python 3 and Node.js/npm.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> installing @backstage/catalog-client (npm ci)"
npm ci --prefix tests/backstage-client --no-audit --no-fund --loglevel=error

echo "==> cargo test --workspace"
cargo test --workspace --locked "$@"
