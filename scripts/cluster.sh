#!/usr/bin/env bash
# A hotline cluster on this machine's loopback (docs/CLUSTER.md): Redis (the ACD, AOF on) + PostgreSQL
# (records, journeys, dialect memory, dispatch log) + 3 engine nodes + Kamailio in front. Ctrl-C stops all.
#
#   scripts/cluster.sh            (or `make cluster`)
#
#   callers   -> sip:95519@127.0.0.1:5060         Kamailio (deploy/kamailio/cluster.cfg)
#   engines   -> 127.0.0.2, .3, .4 : SIP 5060, HTTP 8080, RTP 20000-29999 (each on its own address)
#   Redis     -> 127.0.0.1:6379       PostgreSQL -> 127.0.0.1:5432 (database ivr, user ivr, trust)
#
# State lives in var/cluster/ (PostgreSQL's data survives a restart; delete the folder to start afresh).
# Settings (environment): CLUSTER_NODES (3), SIP_PORT (5060), PROXY (127.0.0.1:5060), PG_PORT (5432),
# REDIS_PORT (6379), IVR_API_TOKEN (default: var/cluster/api-token, made once), IVR_PG_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
IVR=$ROOT/.venv/bin/ivr
VAR=$ROOT/var/cluster
NODES=${CLUSTER_NODES:-3}
SIP_PORT=${SIP_PORT:-5060}
PROXY=${PROXY:-127.0.0.1:5060}
PG_PORT=${PG_PORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
mkdir -p "$VAR/logs"

# PostgreSQL: IVR_PG_BIN, else Debian's newest /usr/lib/postgresql/*/bin, else initdb on PATH.
pg_bin=${IVR_PG_BIN:-}
if [ -z "$pg_bin" ]; then
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
    [ -x "$d/initdb" ] && { pg_bin=$d; break; }
  done
fi
[ -z "$pg_bin" ] && command -v initdb >/dev/null && pg_bin=$(dirname "$(command -v initdb)")
for need in redis-server kamailio; do
  command -v "$need" >/dev/null || { echo "$need not found: run scripts/install-system-deps.sh" >&2; exit 1; }
done
[ -n "$pg_bin" ] || { echo "PostgreSQL not found (apt install postgresql, or set IVR_PG_BIN)" >&2; exit 1; }

# PostgreSQL refuses to run as root: its programs then run as the `postgres` user.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping the cluster..." >&2
  # Engines first (SIGTERM drains their calls), then the proxy and Redis, then PostgreSQL.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  as_pg "$pg_bin/pg_ctl" -D "$VAR/pg" -m fast stop >/dev/null 2>&1 || true
}
trap stop INT TERM EXIT

if [ ! -f "$VAR/pg/PG_VERSION" ]; then
  mkdir -p "$VAR/pg"
  [ "$(id -u)" -eq 0 ] && chown postgres "$VAR" "$VAR/pg"
  as_pg "$pg_bin/initdb" -D "$VAR/pg" -A trust -U ivr -E UTF8 >"$VAR/logs/initdb.log"
fi
[ "$(id -u)" -eq 0 ] && chown postgres "$VAR/logs"
as_pg "$pg_bin/pg_ctl" -D "$VAR/pg" -l "$VAR/logs/postgresql.log" -w \
  -o "-p $PG_PORT -k $VAR/pg -c listen_addresses=127.0.0.1" start >/dev/null
as_pg "$pg_bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U ivr -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'ivr'" | grep -q 1 \
  || as_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U ivr ivr
DB=postgresql://ivr@127.0.0.1:$PG_PORT/ivr

mkdir -p "$VAR/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$VAR/redis" --appendonly yes --appendfsync everysec \
  --save "" >"$VAR/logs/redis.log" 2>&1 &
pids+=($!)

if [ -z "${IVR_API_TOKEN:-}" ]; then
  [ -f "$VAR/api-token" ] || (umask 077; "$ROOT/.venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$VAR/api-token")
  IVR_API_TOKEN=$(cat "$VAR/api-token")
fi
export IVR_API_TOKEN

"$IVR" prompts build >/dev/null
list=$VAR/dispatcher.list
: >"$list"
for n in $(seq 1 "$NODES"); do
  host=127.0.0.$((n + 1))
  echo "1 sip:$host:$SIP_PORT" >>"$list"
  IVR_NODE_ID=node-$n IVR_DB=$DB IVR_ACD_BACKEND=redis IVR_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0 \
  IVR_SIP_HOST=$host IVR_SIP_PORT=$SIP_PORT IVR_HTTP_HOST=$host IVR_HTTP_PORT=8080 \
  IVR_RTP_PORT_MIN=$((20000 + (n - 1) * 10000 / NODES)) IVR_RTP_PORT_MAX=$((20000 + n * 10000 / NODES - 1)) \
    "$IVR" serve >"$VAR/logs/node-$n.log" 2>&1 &
  pids+=($!)
done

kamailio -f "$ROOT/deploy/kamailio/cluster.cfg" -DD -E -m 64 -M 8 -Y "$VAR" \
  -A "LISTEN=udp:$PROXY" -A "DISPATCHER_LIST=\"$list\"" >"$VAR/logs/kamailio.log" 2>&1 &
pids+=($!)

for n in $(seq 1 "$NODES"); do
  url=http://127.0.0.$((n + 1)):8080/readyz
  for _ in $(seq 1 120); do
    curl -fsS "$url" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsS "$url" >/dev/null 2>&1 || echo "node-$n is not ready: see $VAR/logs/node-$n.log" >&2
done
cat <<EOF
hotline cluster up: $NODES engine nodes behind Kamailio (logs in $VAR/logs)
  call it:     sipp -sn uac -s 95519 $PROXY -m 1     (or a softphone: sip:95519@$PROXY)
  agents:      register to sip:<user>@$PROXY (config/agents.yaml)
  dashboards:  $(for n in $(seq 1 "$NODES"); do printf 'http://127.0.0.%d:8080/  ' $((n + 1)); done)
  API token:   $IVR_API_TOKEN
  calls:       curl -H "Authorization: Bearer \$IVR_API_TOKEN" http://127.0.0.2:8080/api/calls
Ctrl-C stops everything.
EOF
# Wait for Ctrl-C (a node that dies stays dead: that is the point of a cluster, see docs/CLUSTER.md).
wait
