#!/usr/bin/env bash
# Validates infra/template.yaml offline with cfn-lint and `sam validate --lint`, both pinned
# from PyPI into their own virtualenvs (cached under ~/.cache/paved).
set -euo pipefail
cd "$(dirname "$0")/.."
CFN_LINT_VERSION=1.58.0
SAM_VERSION=1.170.0
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/paved

install() { # venv package==version executable
  if [ ! -x "$1/bin/$3" ]; then
    echo "==> installing $2 into $1" >&2
    python3 -m venv "$1"
    "$1/bin/pip" install --quiet --disable-pip-version-check "$2"
  fi
}
install "$CACHE/cfn-lint-$CFN_LINT_VERSION" "cfn-lint==$CFN_LINT_VERSION" cfn-lint
install "$CACHE/sam-$SAM_VERSION" "aws-sam-cli==$SAM_VERSION" sam

echo "==> cfn-lint infra/template.yaml" >&2
"$CACHE/cfn-lint-$CFN_LINT_VERSION/bin/cfn-lint" infra/template.yaml
echo "==> sam validate --lint" >&2
# No credentials or network needed: the SAM transform and the linter run locally.
SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 \
  "$CACHE/sam-$SAM_VERSION/bin/sam" validate --lint --template infra/template.yaml --region us-east-1
