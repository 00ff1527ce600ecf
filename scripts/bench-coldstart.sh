#!/usr/bin/env bash
# Cold start of each Lambda function: the init duration (exec → first
# GET /runtime/invocation/next) against a Lambda Runtime API emulator on loopback
# (scripts/coldstart.py), with PAVED_BACKEND=aws on moto (bootstrapped with `paved aws
# bootstrap`), so init does what it does on AWS: read the configuration, build the SDK
# clients, load the catalog from DynamoDB, compile the guardrails.
#   scripts/bench-coldstart.sh [RUNS]
# Uses the x86_64 release binaries of scripts/package.sh (this machine cannot exec arm64).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN_DIR="$TARGET_DIR/x86_64-unknown-linux-gnu/release"
FUNCTIONS=(catalog-api requests-api provision-worker metrics-api events-ingest chatops chatops-invoke)
for f in "${FUNCTIONS[@]}"; do
  [ -x "$BIN_DIR/$f" ] || { echo "no $BIN_DIR/$f: run scripts/package.sh x86_64 first" >&2; exit 1; }
done
cargo build --quiet -p paved
MOTO_DIR=$(mktemp -d /tmp/paved-coldstart.XXXXXX)
trap 'scripts/moto.sh stop "$MOTO_DIR"; rm -rf "$MOTO_DIR"' EXIT
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ENDPOINT=$(scripts/moto.sh start "$MOTO_DIR" "$PORT")
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
eval "$("$TARGET_DIR/debug/paved" aws bootstrap --endpoint "$ENDPOINT" 2>/dev/null)"
export RUST_LOG=warn
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d); $RUNS runs each; moto on loopback" >&2
# The first run of the catalog installs the golden paths; later ones only read.
python3 scripts/coldstart.py "$BIN_DIR/catalog-api" events/catalog-api.apigw.templates.json --runs 1 >/dev/null 2>&1 || true
python3 scripts/coldstart.py "$BIN_DIR/catalog-api" events/catalog-api.apigw.templates.json --runs "$RUNS"
python3 scripts/coldstart.py "$BIN_DIR/requests-api" events/requests-api.apigw.get.json --runs "$RUNS"
python3 scripts/coldstart.py "$BIN_DIR/provision-worker" events/provision-worker.sqs.notifications.json --runs "$RUNS"
python3 scripts/coldstart.py "$BIN_DIR/metrics-api" events/metrics-api.apigw.dora-team.json --runs "$RUNS"
# The webhook and Slack functions start with a secret configured, as on AWS; the samples were
# not signed with it, so they are answered 401, after the same init.
python3 scripts/coldstart.py "$BIN_DIR/events-ingest" events/events-ingest.apigw.github-ping.json --runs "$RUNS" \
  --env PAVED_GITHUB_WEBHOOK_SECRET=coldstart
python3 scripts/coldstart.py "$BIN_DIR/chatops" events/chatops.apigw.slash-command.json --runs "$RUNS" \
  --env PAVED_SLACK_SIGNING_SECRET=coldstart
python3 scripts/coldstart.py "$BIN_DIR/chatops-invoke" events/chatops-invoke.invoke.search.json --runs "$RUNS"
