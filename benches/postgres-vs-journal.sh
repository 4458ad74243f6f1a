#!/usr/bin/env bash
# Acknowledged `rr place` per second, 50 connections x 1 in flight, on the journal and on
# PostgreSQL, run alternately (3 rounds of 3 s; the medians go in docs/performance.md).
#
#   benches/postgres-vs-journal.sh postgres://postgres@127.0.0.1:5432/postgres
#
# The URL names a PostgreSQL where the user may create databases: each round uses a new
# database `ixnbench`, dropped and created with psql. Build first:
#   cargo build --release -p ixn-server -p ixn-cli -p ixn-benches
set -euo pipefail
admin=${1:?give a PostgreSQL URL, such as postgres://postgres@127.0.0.1:5432/postgres}
cd "$(dirname "$0")/.."
bin=target/release
bench_url="${admin%/*}/ixnbench"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin/ixn-load" config --agents 100 --connections 200 > "$work/load.toml"
for round in 1 2 3; do
  rm -rf "$work/data"
  printf 'journal  round %s: ' "$round"
  "$bin/ixn-load" rr place -c 50 --server-bin "$bin/ixn-server" --data-dir "$work/data" --duration 3s 2>/dev/null \
    | sed -n 's/^ *requests\/s *//p'
  psql -q "$admin" -c "DROP DATABASE IF EXISTS ixnbench" -c "CREATE DATABASE ixnbench" > /dev/null
  "$bin/ixn-server" --config "$work/load.toml" --store "$bench_url" --listen 127.0.0.1:0 --http off \
    --log-level warn > "$work/server.out" &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$work/server.out" && break; sleep 0.1; done
  addr=$(sed -n 's/^ixn-server listening on //p' "$work/server.out")
  # Registering waits until the server holds the store.
  "$bin/ixn" send --addr "$addr" --as media:MediaServer '{"message":"Ping"}' > /dev/null
  printf 'postgres round %s: ' "$round"
  "$bin/ixn-load" rr place -c 50 --addr "$addr" --server-pid "$pid" --duration 3s 2>/dev/null \
    | sed -n 's/^ *requests\/s *//p'
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
