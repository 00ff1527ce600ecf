#!/usr/bin/env bash
# The provisioning benchmark: 1,000 concurrent requests of a 3-step template through the whole
# embedded path, then 50 requests one at a time; with both SQLite durability settings.
# Prints throughput, time-to-ready percentiles and the orchestration overhead per step.
# Usage: scripts/bench-provisioning.sh [REQUESTS] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-1000}
WORKERS=${2:-4}
cargo build --release --locked -p paved --example bench_provisioning
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(date -u +%Y-%m-%d)"
for sync in full normal; do
  echo
  RUST_LOG=warn ./target/release/examples/bench_provisioning "$REQUESTS" "$WORKERS" "$sync"
done
