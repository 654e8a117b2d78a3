#!/usr/bin/env bash
# Runs the seqcast benchmark suite with one command and prints one table
# (also written to bench/results.json):
#
#   bench/run.sh            every scenario, each RUNS times (default 2)
#   RUNS=3 bench/run.sh     more runs per scenario
#
# It starts a private PostgreSQL (scripts/pg-temp), builds seqcast and the load
# generator into build-bench/, starts one node on a free loopback port and
# stops everything it started when it exits. Takes about 5-8 minutes.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
runs=${RUNS:-2}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
clk_tck=$(getconf CLK_TCK)

tmp=$(mktemp -d /tmp/seqcast-bench.XXXXXX)
chmod 755 "$tmp"
results=$tmp/runs.jsonl
: >"$results"
server_pid=
bg_pids=()

cleanup() {
  set +e
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  "$root/scripts/pg-temp" stop "$tmp/pg" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- build ------------------------------------------------------------------
log "building into build-bench/"
cmake -S . -B build-bench -DSEQCAST_BENCH=ON -DSEQCAST_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-bench -j2 >/dev/null
seqcast=$root/build-bench/seqcast
loadgen=$root/build-bench/bench/seqcast-loadgen

# ---- PostgreSQL ---------------------------------------------------------------
log "starting a private PostgreSQL in $tmp/pg"
pg_url=$("$root/scripts/pg-temp" start "$tmp/pg")

# ---- helpers ----------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
ws=ws://127.0.0.1:$port/v1/ws

start_server() {
  "$seqcast" serve --database-url "$pg_url" --listen "127.0.0.1:$port" --cache-dir "$tmp/cache" \
    --cache-channel-messages 60000 --log-level warn >>"$tmp/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 200); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
    sleep 0.05
  done
  log "seqcast did not become healthy"; cat "$tmp/server.log" >&2; exit 1
}
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }

# record SCENARIO RUN LOADGEN_JSON [EXTRA_JSON]: one line of runs.jsonl
record() {
  printf '{"scenario":"%s","run":%s,"result":%s,"extra":%s}\n' "$1" "$2" "$3" "${4:-{\}}" >>"$results"
}

wait_file() {  # wait_file PATH SECONDS
  for _ in $(seq 1 $(( $2 * 20 ))); do [[ -s $1 ]] && return 0; sleep 0.05; done
  return 1
}

# ---- (a) ceilings: PostgreSQL ---------------------------------------------------
log "(a) pgbench ceilings"
psql_() { "$pgbin/psql" "$pg_url" -qAtX -v ON_ERROR_STOP=1 "$@"; }
psql_ -c "DROP TABLE IF EXISTS bench_rows; CREATE TABLE bench_rows(ch int, seq bigint, ts timestamptz default now(), payload text)"
printf "INSERT INTO bench_rows(ch, seq, payload) VALUES (1, 1, repeat('x', 200));\n" >"$tmp/single.sql"
printf "BEGIN;\nINSERT INTO bench_rows(ch, seq, payload) VALUES (1, 1, repeat('x', 200));\nNOTIFY bench_ch, '1 1';\nCOMMIT;\n" >"$tmp/notify.sql"
printf "INSERT INTO bench_rows(ch, seq, payload) SELECT 1, g, repeat('x', 200) FROM generate_series(1, 100) g;\n" >"$tmp/batch.sql"
pgbench_tps() {  # pgbench_tps SCRIPT CLIENTS
  "$pgbin/pgbench" -n -T 5 -c "$2" -j 2 -f "$1" "$pg_url" 2>/dev/null | awk '/^tps = / {print $3; exit}'
}
for r in $(seq 1 "$runs"); do
  for c in 1 8; do
    t=$(pgbench_tps "$tmp/single.sql" "$c"); record "pg_insert_1row_c$c" "$r" "{\"tx_per_s\":$t}"
  done
  t=$(pgbench_tps "$tmp/notify.sql" 8); record "pg_insert_notify_c8" "$r" "{\"tx_per_s\":$t}"
  t=$(pgbench_tps "$tmp/batch.sql" 8)
  record "pg_insert_100rows_c8" "$r" "{\"tx_per_s\":$t,\"rows_per_s\":$(python3 -c "print($t*100)")}"
  psql_ -c "TRUNCATE bench_rows"
done
psql_ -c "DROP TABLE bench_rows"

# ---- (a) ceilings: raw loopback fan-out ------------------------------------------
log "(a) raw loopback fan-out ceiling"
for r in $(seq 1 "$runs"); do
  for k in 1 10; do
    j=$("$loadgen" raw-fanout --connections 1000 --messages 200 --bytes 260 --coalesce "$k")
    record "raw_fanout_1000_coalesce$k" "$r" "$j"
  done
done

start_server
log "seqcast serving on $base (pid $server_pid)"

# ---- (d) memory per idle subscribed WebSocket (fresh node each run) --------------
mem_run() {  # mem_run NAME RUN CONNECTIONS PROCESSES
  local name=$1 r=$2 conns=$3 procs=$4 per=$(( $3 / $4 )) rss0 rss1 i
  stop_server; start_server; sleep 0.5
  rm -f "$tmp"/ready.*
  rss0=$(rss_kb)
  local pids=()
  for i in $(seq 1 "$procs"); do
    "$loadgen" subscribe --ws "$ws" --connections "$per" --channels 1 --prefix "idle-" --hold 8 \
      --ready-file "$tmp/ready.$i" --timeout 60 >"$tmp/mem.$i.json" 2>>"$tmp/loadgen.log" &
    pids+=($!); bg_pids+=($!)
  done
  for i in $(seq 1 "$procs"); do wait_file "$tmp/ready.$i" 50 || log "memory: generator $i not ready"; done
  sleep 1
  rss1=$(rss_kb)
  for p in "${pids[@]}"; do wait "$p" || true; done
  local subscribed
  subscribed=$(cat "$tmp"/ready.* | awk '{s += $1} END {print s + 0}')
  record "$name" "$r" "$(cat "$tmp/mem.1.json")" \
    "{\"connections\":$conns,\"subscribed\":$subscribed,\"rss_before_kb\":$rss0,\"rss_after_kb\":$rss1,\"rss_bytes_per_conn\":$(( (rss1 - rss0) * 1024 / (subscribed > 0 ? subscribed : 1) ))}"
}
log "(d) memory per idle subscribed connection"
for r in $(seq 1 "$runs"); do
  mem_run mem_idle_1000 "$r" 1000 1
  mem_run mem_idle_10000 "$r" 10000 2
done

# ---- (b) publish -------------------------------------------------------------------
log "(b) publish"
pub_run() {  # pub_run NAME RUN ARGS...
  local name=$1 r=$2 c0 c1 j
  shift 2
  c0=$(cpu_ticks)
  j=$("$loadgen" publish --url "$base" --seconds 5 --payload-bytes 200 "$@" 2>>"$tmp/loadgen.log")
  c1=$(cpu_ticks)
  local acked
  acked=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['acked'])" "$j")
  record "$name" "$r" "$j" "{\"server_cpu_s\":$(python3 -c "print(($c1-$c0)/$clk_tck)"),\"server_cpu_us_per_publish\":$(python3 -c "print(($c1-$c0)/$clk_tck*1e6/max(1,$acked))")}"
}
for r in $(seq 1 "$runs"); do
  for n in 1 8 64; do
    pub_run "publish_${n}pub_1ch" "$r" --publishers "$n" --channels 1 --prefix "hot$r-"
    pub_run "publish_${n}pub_1000ch" "$r" --publishers "$n" --channels 1000 --prefix "many$r-"
  done
  pub_run "publish_batch100_8pub_1000ch" "$r" --publishers 8 --channels 1000 --batch 100 --prefix "many$r-"
done

# ---- (c) fan-out: 1 channel x 1000 subscribers at 200 msg/s for 10 s -------------------
log "(c) fan-out 1 x 1000 at 200 msg/s"
for r in $(seq 1 "$runs"); do
  rm -f "$tmp/ready.fan"
  "$loadgen" subscribe --ws "$ws" --connections 1000 --channels 1 --prefix "fan$r-" --expect 2000 \
    --ready-file "$tmp/ready.fan" --timeout 90 >"$tmp/fan.json" 2>>"$tmp/loadgen.log" &
  sub_pid=$!; bg_pids+=($sub_pid)
  wait_file "$tmp/ready.fan" 60 || log "fan-out: subscribers not ready"
  sleep 0.5
  c0=$(cpu_ticks)
  # 50 paced publishers x 40 messages: each waits for its ack, so the offered 200/s holds while acks take < 250 ms.
  pj=$("$loadgen" publish --url "$base" --publishers 50 --rate 200 --count 40 --seconds 60 --channels 1 \
       --prefix "fan$r-" --payload-bytes 200 2>>"$tmp/loadgen.log")
  wait "$sub_pid" || true
  c1=$(cpu_ticks)
  sj=$(cat "$tmp/fan.json")
  extra=$(python3 - "$sj" "$pj" "$c0" "$c1" "$clk_tck" <<'EOF'
import json, sys
s, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
cpu = (float(sys.argv[4]) - float(sys.argv[3])) / float(sys.argv[5])
d = max(1, s["deliveries"])
print(json.dumps({"published": p["acked"], "publish_errors": p["errors"],
                  "delivered_fraction_of_acked": s["deliveries"] / max(1, s["connections"] * p["acked"]),
                  "server_cpu_s": cpu, "server_cpu_us_per_delivery": cpu * 1e6 / d}))
EOF
)
  record "fanout_1ch_1000sub_200mps" "$r" "$sj" "$extra"
done

# ---- (e) replay of 50 000 messages to one client -------------------------------------
log "(e) replay 50 000 messages"
"$loadgen" publish --url "$base" --publishers 1 --batch 500 --count 100 --seconds 120 --channels 1 \
  --prefix "replay-" --payload-bytes 200 >"$tmp/replay-fill.json" 2>>"$tmp/loadgen.log"
replay_run() {
  local name=$1 r=$2 c0 c1 j
  c0=$(cpu_ticks)
  j=$("$loadgen" subscribe --ws "$ws" --connections 1 --channels 1 --prefix "replay-" --since 0 --expect 50000 \
      --no-latency --timeout 120 2>>"$tmp/loadgen.log")
  c1=$(cpu_ticks)
  record "$name" "$r" "$j" "$(python3 -c "
import json; j = json.loads('''$j''')
t = j['seconds_to_all']
print(json.dumps({'replay_msgs_per_s': j['deliveries'] / t if t > 0 else 0, 'server_cpu_s': ($c1 - $c0) / $clk_tck}))")"
}
for r in $(seq 1 "$runs"); do replay_run replay_50k_from_cache "$r"; done
for r in $(seq 1 "$runs"); do
  stop_server; rm -rf "$tmp/cache"; start_server
  replay_run replay_50k_cache_deleted "$r"
done
stop_server

# ---- table + JSON -------------------------------------------------------------------
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain -- service storage 2>/dev/null | head -1)
python3 "$root/bench/summarize.py" "$results" "$root/bench/results.json" \
  "$(nproc)" "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
  "$commit${dirty:+ (service/storage modified)}" "RUNS=$runs bench/run.sh" "$runs"
