#!/usr/bin/env bash
# Builds every Lambda function with cargo-lambda (pinned from PyPI, with its zig for
# cross-linking) for arm64 and x86_64, and prints each bootstrap's size.
#   scripts/package.sh [arm64|x86_64 ...]     (default: both; PAVED_FUNCTIONS picks functions)
# The zips land in target/lambda/<function>/bootstrap.zip (the last architecture built);
# sizes are written to target/lambda-sizes.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/venv.sh
CARGO_LAMBDA_VERSION=1.9.2
VENV=${PAVED_CARGO_LAMBDA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/paved/cargo-lambda-$CARGO_LAMBDA_VERSION}
# PAVED_FUNCTIONS="catalog-api chatops" builds only those (dora-report alone takes most of the time).
read -r -a FUNCTIONS <<<"${PAVED_FUNCTIONS:-catalog-api requests-api requests-sweeper provision-worker metrics-api events-ingest chatops chatops-invoke dora-report}"
ARCHES=("$@"); [ ${#ARCHES[@]} -eq 0 ] && ARCHES=(arm64 x86_64)

pinned_tool "$VENV" "cargo-lambda==$CARGO_LAMBDA_VERSION" cargo-lambda
export PATH="$VENV/bin:$PATH"
TARGET_DIR=${CARGO_TARGET_DIR:-target}
mkdir -p "$TARGET_DIR"
SIZES="$TARGET_DIR/lambda-sizes.txt"
: >"$SIZES"
for arch in "${ARCHES[@]}"; do
  case "$arch" in
    arm64) flag=--arm64; triple=aarch64-unknown-linux-gnu ;;
    x86_64) flag=--x86-64; triple=x86_64-unknown-linux-gnu ;;
    *) echo "unknown architecture $arch (arm64 or x86_64)" >&2; exit 2 ;;
  esac
  rustup target add "$triple" >/dev/null 2>&1 || true
  args=()
  for f in "${FUNCTIONS[@]}"; do args+=(--bin "$f"); done
  echo "==> cargo lambda build --release $flag (${FUNCTIONS[*]})" >&2
  # The command `sam build` runs (BuildMethod: rust-cargolambda), so these are the bootstraps
  # that deploy: the workspace's release profile plus what cargo-lambda adds to it, panic=abort
  # and the architecture's target-cpu (see [profile.release] in Cargo.toml).
  cargo lambda build --release "$flag" --output-format zip "${args[@]}"
  for f in "${FUNCTIONS[@]}"; do
    # cargo-lambda keeps the unzipped binary under the target triple's release directory.
    bin="$TARGET_DIR/$triple/release/$f"
    zip="$TARGET_DIR/lambda/$f/bootstrap.zip"
    printf '%-8s %-18s bootstrap %6.2f MB   zip %6.2f MB\n' "$arch" "$f" \
      "$(echo "$(stat -c %s "$bin") / 1000000" | bc -l)" "$(echo "$(stat -c %s "$zip") / 1000000" | bc -l)" | tee -a "$SIZES"
  done
done
