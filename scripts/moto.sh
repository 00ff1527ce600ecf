#!/usr/bin/env bash
# moto in server mode (a real AWS emulator speaking the wire protocol), pinned from PyPI into
# its own virtualenv, for the tests of the AWS drivers and adapters.
#   scripts/moto.sh start DIR PORT   → prints the endpoint URL once moto answers
#   scripts/moto.sh stop DIR
set -euo pipefail
. "$(dirname "$0")/lib/venv.sh"
MOTO_VERSION=5.2.5
VENV=${PAVED_MOTO_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/paved/moto-$MOTO_VERSION}

case "${1:-}" in
  start)
    DIR=$2; PORT=$3
    pinned_tool "$VENV" "moto[server]==$MOTO_VERSION" moto_server
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$DIR/moto.log" 2>&1 &
    echo $! >"$DIR/moto.pid"
    for _ in $(seq 1 100); do
      if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "http://127.0.0.1:$PORT/moto-api/" >/dev/null 2>&1; then
        echo "http://127.0.0.1:$PORT"
        exit 0
      fi
      sleep 0.2
    done
    echo "moto did not start; see $DIR/moto.log" >&2
    cat "$DIR/moto.log" >&2
    exit 1
    ;;
  stop)
    DIR=$2
    if [ -f "$DIR/moto.pid" ]; then kill "$(cat "$DIR/moto.pid")" 2>/dev/null || true; fi
    ;;
  *)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
