#!/usr/bin/env bash
# make cluster: three nodes on loopback with the built-in demo config, each
# with its own data dir under ./data-cluster, every partition on all three
# (replicas 3). Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/throughline}
DATA=${DATA:-./data-cluster}
pids=()
stop() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait
}
trap stop INT TERM
for i in 1 2 3; do
  join=""
  [ "$i" != 1 ] && join="--join 127.0.0.1:7946"
  mkdir -p "$DATA/n$i"
  # shellcheck disable=SC2086
  "$BIN" serve --name "n$i" --data "$DATA/n$i" --http "127.0.0.1:808$i" \
    --gossip "127.0.0.1:794$((5 + i))" --remote "127.0.0.1:809$i" --raft "127.0.0.1:810$i" \
    --replicas 3 --bootstrap-expect 3 $join 2>"$DATA/n$i.log" &
  pids+=($!)
done
for i in 1 2 3; do
  for _ in $(seq 1 150); do
    curl -sf "http://127.0.0.1:808$i/readyz" >/dev/null 2>&1 && break
    sleep 0.2
  done
done
echo "cluster of three (demo config; logs in $DATA/n*.log):"
for i in 1 2 3; do
  state=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:808$i/readyz" || true)
  echo "  n$i  http://127.0.0.1:808$i  gossip 127.0.0.1:794$((5 + i))  remote 127.0.0.1:809$i  raft 127.0.0.1:810$i  readyz $state"
done
echo "  GET /v1/cluster: curl -H 'Authorization: Bearer sup-secret' http://127.0.0.1:8081/v1/cluster"
echo "Ctrl-C stops the three nodes."
wait
