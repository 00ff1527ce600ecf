#!/usr/bin/env bash
# Validates infra/template.yaml offline with cfn-lint and `sam validate --lint`, both pinned
# from PyPI into their own virtualenvs (cached under ~/.cache/paved).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/venv.sh
CFN_LINT_VERSION=1.58.0
SAM_VERSION=1.170.0
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/paved

pinned_tool "$CACHE/cfn-lint-$CFN_LINT_VERSION" "cfn-lint==$CFN_LINT_VERSION" cfn-lint
pinned_tool "$CACHE/sam-$SAM_VERSION" "aws-sam-cli==$SAM_VERSION" sam

echo "==> cfn-lint infra/template.yaml" >&2
"$CACHE/cfn-lint-$CFN_LINT_VERSION/bin/cfn-lint" infra/template.yaml
echo "==> sam validate --lint" >&2
# No credentials or network needed: the SAM transform and the linter run locally.
SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 \
  "$CACHE/sam-$SAM_VERSION/bin/sam" validate --lint --template infra/template.yaml --region us-east-1
