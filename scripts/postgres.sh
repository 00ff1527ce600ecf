#!/usr/bin/env bash
# Starts a private PostgreSQL for the tests on loopback (Debian's packages; installed when
# missing) and prints its URL. Usage: scripts/postgres.sh start DIR PORT [--no-tls] | stop DIR
#
# With TLS (the default) the server presents a certificate for 127.0.0.1 and localhost, signed
# by a CA made for this server alone: DIR/ca.crt (what sslrootcert names in the tests). It
# still accepts connections without TLS. --no-tls starts one that offers no TLS at all.
set -euo pipefail
cmd=$1 dir=$2

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$d" ]; then
    echo "==> installing PostgreSQL (Debian packages)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
    d=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
  echo "$d"
}

# PostgreSQL refuses to run as root: use the postgres account the package created.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case $cmd in
  start)
    port=$3
    bin=$(bindir)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    tls="-c ssl=off"
    if [ "${4:-}" != "--no-tls" ]; then
      if [ ! -f "$dir/server.crt" ]; then
        command -v openssl >/dev/null || {
          echo "==> installing openssl" >&2
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >&2
        }
        # A throwaway CA and a server certificate it signs, both for this server only.
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=paved test CA" \
          -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
          -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
          > "$dir/server.ext"
        openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
          -CAcreateserial -days 30 -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null
        # The account the TLS tests connect as is refused without TLS: what it did, it did
        # over TLS.
        { echo "hostnossl all paved_tls_only 0.0.0.0/0 reject"; cat "$dir/pg_hba.conf"; } \
          > "$dir/pg_hba.conf.new" && mv "$dir/pg_hba.conf.new" "$dir/pg_hba.conf"
        [ "$(id -u)" = 0 ] && chown postgres "$dir/pg_hba.conf"
        chmod 600 "$dir/server.key" "$dir/ca.key"
        chmod 644 "$dir/ca.crt"
        [ "$(id -u)" = 0 ] && chown postgres "$dir/server.key" "$dir/server.crt"
      fi
      tls="-c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
    fi
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off $tls" start >/dev/null
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    bin=$(bindir)
    as_owner "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
    ;;
esac
