# Sourced by the scripts that need a pinned Python tool from PyPI.
#   pinned_tool VENV "package==version" EXECUTABLE
# installs the package into its own virtualenv once (installing Debian's python3-venv first if
# this Python lacks venv), so a fresh machine needs nothing but python3.
pinned_tool() {
  local venv=$1 spec=$2 exe=$3
  [ -x "$venv/bin/$exe" ] && return 0
  echo "==> installing $spec into $venv" >&2
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$spec" >&2
}
