#!/usr/bin/env bash
# The reconciliation loop's benchmark: RESOURCES live resources per provider on the embedded
# backend, observed by an in-memory driver only the benchmark links. Pass 1 measures the
# loop's own cost per observation (no rate limit to speak of); pass 2 checks that a provider
# at RATE observations per second never sees more in any one-second window.
# Usage: scripts/bench-reconcile.sh [RESOURCES] [RATE] [POLLERS] [PROFILE]
set -euo pipefail
cd "$(dirname "$0")/.."
RESOURCES=${1:-10000}
RATE=${2:-500}
POLLERS=${3:-1}
PROFILE=${4:-release}
cargo build --profile "$PROFILE" --locked -p paved --example bench_reconcile
dir=$PROFILE
[ "$PROFILE" = dev ] && dir=debug
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(date -u +%Y-%m-%d), profile $PROFILE"
RUST_LOG=warn "./target/$dir/examples/bench_reconcile" "$RESOURCES" "$RATE" "$POLLERS"
