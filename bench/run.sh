#!/usr/bin/env bash
# Runs the seqcast benchmark suite with one command and prints one table
# (also written to bench/results.json):
#
#   bench/run.sh            every scenario, each RUNS times (default 2)
#   RUNS=3 bench/run.sh     more runs per scenario
#   QUICK=1 bench/run.sh    every scenario shrunk to seconds: a smoke test of the
#                           suite, not figures (JSON in build-bench/results-quick.json)
#   ONLY=REGEX bench/run.sh only the scenarios whose names match (grep -E), e.g.
#                           ONLY='^fanout_1ch_1000sub_200mps' (JSON in
#                           build-bench/results-only.json; the ceilings too if they match)
#   NODE_CPUS=0 bench/run.sh       the node pinned with taskset to these CPUs (the
#                           generators and PostgreSQL are not pinned)
#   NODE_FLAGS='--threads 1'       extra flags for every `seqcast serve`
#   SEQCAST=path bench/run.sh      another seqcast binary (an A/B against an older build)
#
# It starts a private PostgreSQL (scripts/pg-temp), builds seqcast and the load
# generator into build-bench/, starts one node on a free loopback port and
# stops everything it started when it exits. Takes about 10 minutes (RUNS=2, 2 cores).
#
# Scenarios with many connections spread them over several generator
# processes: a process may hold at most 20 000 descriptors (ulimit -n), and one
# single-threaded generator could not keep up with the node anyway. Their
# results are merged: counts summed, latency percentiles taken over every
# process's samples.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
runs=${RUNS:-2}
quick=${QUICK:-0}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
clk_tck=$(getconf CLK_TCK)

tmp=$(mktemp -d /tmp/seqcast-bench.XXXXXX)
chmod 755 "$tmp"
results=$tmp/runs.jsonl
: >"$results"
server_pid=
bg_pids=()
sub_pids=()

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
only=${ONLY:-}
wanted() { [[ -z $only ]] || grep -qE -- "$only" <<<"$1"; }  # wanted SCENARIO_NAME

# ---- sizes ------------------------------------------------------------------
# QUICK=1 runs every code path with small counts and short durations. The
# scenario names stay the same, so its table only shows that the suite works.
gens=2  # generator processes for the scenarios with thousands of connections: one per core
if (( quick )); then
  pg_seconds=1 raw_messages=20 publish_seconds=1 fan_seconds=2 replay_messages=5000
  mem_small=500 mem_big=2000 big_subs=1000 storm_clients=1000 large_seconds=2
  results_json=${RESULTS:-$root/build-bench/results-quick.json}
  command_label="QUICK=1 RUNS=$runs bench/run.sh"
else
  pg_seconds=5 raw_messages=200 publish_seconds=5 fan_seconds=10 replay_messages=50000
  mem_small=1000 mem_big=19000 big_subs=10000 storm_clients=10000 large_seconds=5
  results_json=${RESULTS:-$root/bench/results.json}
  [[ -n ${ONLY:-} ]] && results_json=${RESULTS:-$root/build-bench/results-only.json}
  command_label="RUNS=$runs bench/run.sh"
fi

for v in NODE_CPUS NODE_FLAGS SEQCAST ONLY; do
  [[ -n ${!v:-} ]] && command_label="$v='${!v}' $command_label"
done

# ---- build ------------------------------------------------------------------
log "building into build-bench/"
cmake -S . -B build-bench -DSEQCAST_BENCH=ON -DSEQCAST_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-bench -j2 >/dev/null
seqcast=${SEQCAST:-$root/build-bench/seqcast}
loadgen=$root/build-bench/bench/seqcast-loadgen

# ---- PostgreSQL ---------------------------------------------------------------
log "starting a private PostgreSQL in $tmp/pg"
pg_url=$("$root/scripts/pg-temp" start "$tmp/pg")

# ---- helpers ----------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
ws=ws://127.0.0.1:$port/v1/ws

# No drain delay: the suite restarts the node a dozen times, and with no
# clients left the default 5 s wait after SIGTERM is only time lost.
start_server() {  # start_server [SERVE FLAGS...]: flags beyond the suite's defaults
  local pin=()
  [[ -n ${NODE_CPUS:-} ]] && pin=(taskset -c "$NODE_CPUS")
  # shellcheck disable=SC2086  # NODE_FLAGS: words on purpose
  "${pin[@]}" "$seqcast" serve --database-url "$pg_url" --listen "127.0.0.1:$port" --cache-dir "$tmp/cache" \
    --cache-channel-messages 60000 --drain-delay-seconds 0 --drain-window-seconds 0 \
    --log-level warn ${NODE_FLAGS:-} "$@" >>"$tmp/server.log" 2>&1 &
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
# The private PostgreSQL's CPU ticks so far: the postmaster and its live children
# (the backends, the WAL writer, …), and what its exited children used.
pg_ticks() {
  python3 - "$tmp/pg/data/postmaster.pid" <<'EOF'
import os, sys
pm = open(sys.argv[1]).readline().strip()
total = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    if pid == pm:
        total += sum(int(x) for x in f[11:15])  # utime stime cutime cstime
    elif f[1] == pm:
        total += int(f[11]) + int(f[12])
print(total)
EOF
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status"; }
metrics() { curl -fsS "$base/metrics" >"$1"; }  # metrics FILE: the node's /metrics now

# record SCENARIO RUN LOADGEN_JSON [EXTRA_JSON]: one line of runs.jsonl
record() {
  printf '{"scenario":"%s","run":%s,"result":%s,"extra":%s}\n' "$1" "$2" "$3" "${4:-{\}}" >>"$results"
}

wait_file() {  # wait_file PATH SECONDS
  for _ in $(seq 1 $(( $2 * 20 ))); do [[ -s $1 ]] && return 0; sleep 0.05; done
  return 1
}

# rss_sampler FILE: the node's peak VmRSS (kB), sampled every 100 ms, kept in
# FILE until killed. Unlike VmHWM it covers only the window it runs in.
rss_sampler() {
  local peak=0 v
  while v=$(rss_kb 2>/dev/null); do
    (( v > peak )) && { peak=$v; echo "$peak" >"$1"; }
    sleep 0.1
  done
}

# metrics_delta BEFORE AFTER: JSON of every /metrics counter that changed
# between two snapshots, named without the seqcast_ prefix (histogram series
# are left out).
metrics_delta() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
def read(path):
    out = {}
    for line in open(path):
        if line.startswith("#") or "{" in line or not line.strip():
            continue
        name, value = line.split()[:2]
        out[name.removeprefix("seqcast_")] = float(value)
    return out
a, b = read(sys.argv[1]), read(sys.argv[2])
print(json.dumps({k: b[k] - a.get(k, 0) for k in b if b[k] != a.get(k, 0)}))
EOF
}

# merge_subscribers JSON...: the results of several generator processes as
# one, in the shape of a single process's. Counts are summed. Rates use the
# span from the first delivery in any process to the last in any (their
# steady clocks are the machine's one CLOCK_MONOTONIC). Latency percentiles
# are taken over every sample, read from the .lat file beside each JSON.
merge_subscribers() {
  python3 - "$@" <<'EOF'
import array, json, os, sys
parts = [json.load(open(p)) for p in sys.argv[1:]]
lat = array.array("q")
for p in sys.argv[1:]:
    lat_path = p.removesuffix(".json") + ".lat"
    if os.path.exists(lat_path):
        with open(lat_path, "rb") as f:
            lat.frombytes(f.read())
lat = sorted(lat)
def pct(q):  # the load generator's own rank rule
    return lat[min(len(lat) - 1, int(q * (len(lat) - 1) + 0.5))] if lat else 0
m = {"mode": "subscribe", "processes": len(parts), "expect": parts[0]["expect"]}
for k in ("connections", "subscribed", "failed", "deliveries", "delivered_bytes", "gaps",
          "duplicates", "resets", "loadgen_cpu_s"):
    m[k] = sum(p[k] for p in parts)
m["delivered_fraction"] = m["deliveries"] / max(1, m["connections"] * m["expect"])
firsts = [p["first_msg_mono_s"] for p in parts if p["deliveries"] > 0]
lasts = [p["last_msg_mono_s"] for p in parts if p["deliveries"] > 0]
span = max(lasts) - min(firsts) if firsts else 0.0
m["delivery_span_s"] = span
m["deliveries_per_s"] = m["deliveries"] / span if span > 0 else 0.0
# Until the last connection had all its messages: from all subscribed (in the
# last process to get there), and from the first process's start. -1 if some
# connection never got them all.
done = [p["all_done_mono_s"] for p in parts]
all_done = all(d > 0 for d in done)
m["seconds_to_all"] = max(done) - max(p["ready_mono_s"] for p in parts) if all_done else -1
m["seconds_start_to_all"] = max(done) - min(p["started_mono_s"] for p in parts) if all_done else -1
m["seconds_to_subscribe"] = max(p["ready_mono_s"] for p in parts) - min(p["started_mono_s"] for p in parts)
m["lat_samples"] = len(lat)
m["lat_p50_us"], m["lat_p99_us"], m["lat_p999_us"] = pct(0.50), pct(0.99), pct(0.999)
print(json.dumps(m))
EOF
}

# subscribers TAG N PROCESSES [SUBSCRIBE ARGS...]: N subscribers split over
# PROCESSES generators, numbered on from one to the next (--first-index), in
# the background. Results in $tmp/TAG.K.json (and .lat, .ready); pids in sub_pids.
subscribers() {
  local tag=$1 n=$2 procs=$3 k per
  shift 3
  per=$(( n / procs ))
  rm -f "$tmp/$tag".*
  sub_pids=()
  for k in $(seq 0 $(( procs - 1 ))); do
    "$loadgen" subscribe --ws "$ws" --connections "$per" --first-index $(( k * per )) \
      --ready-file "$tmp/$tag.$k.ready" --latency-file "$tmp/$tag.$k.lat" "$@" \
      >"$tmp/$tag.$k.json" 2>>"$tmp/loadgen.log" &
    sub_pids+=($!); bg_pids+=($!)
  done
}
wait_subscribers_ready() {  # wait_subscribers_ready TAG PROCESSES SECONDS
  local k
  for k in $(seq 0 $(( $2 - 1 ))); do
    wait_file "$tmp/$1.$k.ready" "$3" || log "$1: generator $k not ready after $3 s"
  done
}
wait_subscribers() { local p; for p in "${sub_pids[@]}"; do wait "$p" || true; done; }

# ---- (a) ceilings: PostgreSQL ---------------------------------------------------
log "(a) pgbench ceilings"
psql_() { "$pgbin/psql" "$pg_url" -qAtX -v ON_ERROR_STOP=1 "$@"; }
psql_ -c "DROP TABLE IF EXISTS bench_rows; CREATE TABLE bench_rows(ch int, seq bigint, ts timestamptz default now(), payload text)"
printf "INSERT INTO bench_rows(ch, seq, payload) VALUES (1, 1, repeat('x', 200));\n" >"$tmp/single.sql"
printf "BEGIN;\nINSERT INTO bench_rows(ch, seq, payload) VALUES (1, 1, repeat('x', 200));\nNOTIFY bench_ch, '1 1';\nCOMMIT;\n" >"$tmp/notify.sql"
printf "INSERT INTO bench_rows(ch, seq, payload) SELECT 1, g, repeat('x', 200) FROM generate_series(1, 100) g;\n" >"$tmp/batch.sql"
pgbench_tps() {  # pgbench_tps SCRIPT CLIENTS
  "$pgbin/pgbench" -n -T "$pg_seconds" -c "$2" -j 2 -f "$1" "$pg_url" 2>/dev/null | awk '/^tps = / {print $3; exit}'
}
for r in $(seq 1 "$runs"); do
  wanted pg_insert || break
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
  wanted raw_fanout || break
  for k in 1 10; do
    j=$("$loadgen" raw-fanout --connections 1000 --messages "$raw_messages" --bytes 260 --coalesce "$k")
    record "raw_fanout_1000_coalesce$k" "$r" "$j"
  done
done

# ---- (d) memory per idle subscribed WebSocket (fresh node each run) --------------
mem_run() {  # mem_run NAME RUN CONNECTIONS PROCESSES
  wanted "$1" || return 0
  local name=$1 r=$2 conns=$3 procs=$4 rss0 rss1 j subscribed
  # 19 000 is also the default max_connections, which counts every open
  # connection: some headroom, so that no stray HTTP connection is refused.
  # The node's descriptors stay under the 20 000 limit.
  [[ -n $server_pid ]] && stop_server
  start_server --max-connections 19500
  sleep 0.5
  rss0=$(rss_kb)
  subscribers mem "$conns" "$procs" --channels 1 --prefix "idle-" --hold 8 --no-latency --timeout 90
  wait_subscribers_ready mem "$procs" 80
  sleep 1
  rss1=$(rss_kb)
  wait_subscribers
  j=$(merge_subscribers "$tmp"/mem.*.json)
  subscribed=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['subscribed'])" "$j")
  record "$name" "$r" "$j" \
    "{\"connections\":$conns,\"processes\":$procs,\"subscribed\":$subscribed,\"rss_before_kb\":$rss0,\"rss_after_kb\":$rss1,\"rss_bytes_per_conn\":$(( (rss1 - rss0) * 1024 / (subscribed > 0 ? subscribed : 1) ))}"
}
log "(d) memory per idle subscribed connection"
for r in $(seq 1 "$runs"); do
  mem_run mem_idle_1000 "$r" "$mem_small" 1
  # 19 000 (10 000 in the first baseline): as many as the node's descriptor
  # limit allows, so the fixed per-node memory weighs least.
  mem_run mem_idle_19000 "$r" "$mem_big" "$gens"
done
stop_server
start_server
log "seqcast serving on $base (pid $server_pid)"

# ---- (b) publish -------------------------------------------------------------------
log "(b) publish"
pub_run() {  # pub_run NAME RUN ARGS...
  wanted "$1" || return 0
  local name=$1 r=$2 c0 c1 g0 g1 j
  shift 2
  c0=$(cpu_ticks)
  g0=$(pg_ticks)
  # ARGS come last, so they may override these (the load generator keeps the last value).
  j=$("$loadgen" publish --url "$base" --seconds "$publish_seconds" --payload-bytes 200 "$@" \
      2>>"$tmp/loadgen.log")
  c1=$(cpu_ticks)
  g1=$(pg_ticks)
  record "$name" "$r" "$j" "$(python3 - "$j" "$c0" "$c1" "$clk_tck" "$g0" "$g1" <<'EOF'
import json, sys
j = json.loads(sys.argv[1])
cpu = (float(sys.argv[3]) - float(sys.argv[2])) / float(sys.argv[4])
pg = (float(sys.argv[6]) - float(sys.argv[5])) / float(sys.argv[4])
print(json.dumps({"server_cpu_s": cpu, "server_cpu_us_per_publish": cpu * 1e6 / max(1, j["acked"]),
                  "pg_cpu_s": pg, "pg_cpu_us_per_publish": pg * 1e6 / max(1, j["acked"]),
                  "mb_per_s": j["msgs_per_s"] * j["payload_bytes"] / 1e6}))
EOF
)"
}
for r in $(seq 1 "$runs"); do
  for n in 1 8 64; do
    pub_run "publish_${n}pub_1ch" "$r" --publishers "$n" --channels 1 --prefix "hot$r-"
    pub_run "publish_${n}pub_1000ch" "$r" --publishers "$n" --channels 1000 --prefix "many$r-"
  done
  pub_run "publish_batch100_8pub_1000ch" "$r" --publishers 8 --channels 1000 --batch 100 --prefix "many$r-"
  # HTTP pipelining: 8 publishes written back to back on each of 8 connections (and 16
  # on one), their answers read in order; ack latency is per round of 8 (16).
  pub_run "publish_8pub_pipeline8_1ch" "$r" --publishers 8 --pipeline 8 --channels 1 --prefix "pipe$r-"
  pub_run "publish_1pub_pipeline16_1ch" "$r" --publishers 1 --pipeline 16 --channels 1 --prefix "pipe1$r-"
done

# ---- (c) fan-out ---------------------------------------------------------------------
# fanout_run NAME RUN SUBSCRIBERS CHANNELS PROCESSES RATE PUBLISHERS BATCH PAYLOAD_BYTES [SUBSCRIBE ARGS...]
#
# SUBSCRIBERS (over PROCESSES generators; subscriber i on channel i % CHANNELS,
# so each channel has SUBSCRIBERS / CHANNELS) receive RATE msgs/s in all,
# spread evenly over the channels, for fan_seconds. Publishing is paced:
# each of PUBLISHERS sends one request (BATCH messages through /v1/publish,
# or one message if BATCH is 0) every PUBLISHERS x max(1, BATCH) / RATE
# seconds and waits for its ack. The offered rate thus holds while acks are
# faster than that interval; offered_deliveries_per_s is what was actually
# acknowledged, times the subscribers per channel.
fanout_run() {
  wanted "$1" || return 0
  local name=$1 r=$2 subs=$3 channels=$4 procs=$5 rate=$6 publishers=$7 batch=$8 bytes=$9 g0 g1
  local total=$(( rate * fan_seconds )) per_request=$(( batch > 0 ? batch : 1 ))
  local prefix="f$r-$name-" c0 c1 pj sj
  shift 9
  if (( total % (publishers * per_request) || total % channels || subs % channels || subs % procs )); then
    log "$name: the sizes do not divide evenly"; exit 1
  fi
  subscribers fan "$subs" "$procs" --channels "$channels" --prefix "$prefix" \
    --expect $(( total / channels )) --timeout $(( 60 + 10 * fan_seconds )) "$@"
  wait_subscribers_ready fan "$procs" 60
  sleep 0.5
  metrics "$tmp/metrics.0"
  c0=$(cpu_ticks)
  g0=$(pg_ticks)
  pj=$("$loadgen" publish --url "$base" --publishers "$publishers" --rate "$rate" --batch "$batch" \
       --count $(( total / (publishers * per_request) )) --seconds $(( 30 + 3 * fan_seconds )) \
       --channels "$channels" --prefix "$prefix" --payload-bytes "$bytes" 2>>"$tmp/loadgen.log")
  wait_subscribers
  c1=$(cpu_ticks)
  g1=$(pg_ticks)
  metrics "$tmp/metrics.1"
  sj=$(merge_subscribers "$tmp"/fan.*.json)
  record "$name" "$r" "$sj" "$(python3 - "$sj" "$pj" "$c0" "$c1" "$clk_tck" $(( subs / channels )) \
    "$(metrics_delta "$tmp/metrics.0" "$tmp/metrics.1")" "$g0" "$g1" <<'EOF'
import json, sys
s, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
cpu = (float(sys.argv[4]) - float(sys.argv[3])) / float(sys.argv[5])
pg = (float(sys.argv[9]) - float(sys.argv[8])) / float(sys.argv[5])
per_channel = int(sys.argv[6])
m = json.loads(sys.argv[7])
span = s["delivery_span_s"]
print(json.dumps({
    "published": p["acked"], "publish_errors": p["errors"], "publish_msgs_per_s": p["msgs_per_s"],
    "offered_deliveries_per_s": p["msgs_per_s"] * per_channel,
    "delivered_fraction_of_acked": s["deliveries"] / max(1, per_channel * p["acked"]),
    "delivered_mb_per_s": s["delivered_bytes"] / span / 1e6 if span > 0 else 0,
    "slow_consumer_closes": m.get("slow_consumer_closes_total", 0),
    "server_cpu_s": cpu, "server_cpu_us_per_delivery": cpu * 1e6 / max(1, s["deliveries"]),
    "pg_cpu_s": pg, "pg_cpu_us_per_message": pg * 1e6 / max(1, p["acked"])}))
EOF
)"
}
log "(c) fan-out"
for r in $(seq 1 "$runs"); do
  # A quiet app: publish -> deliver latency (from the commit's timestamp, so the
  # durable commit is included) when nothing queues anywhere.
  fanout_run latency_1ch_100sub_200mps "$r" 100 1 1 200 2 0 200
  fanout_run latency_1ch_10sub_10mps "$r" 10 1 1 10 1 0 200
  # 1 x 1 000 at 200 msg/s (200 000 deliveries/s offered): one generator
  # process, as in the first baseline.
  fanout_run fanout_1ch_1000sub_200mps "$r" 1000 1 1 200 50 0 200
  # The same over Action Cable (/cable, a $pubsub stream_name identifier): each
  # message is encoded once per (channel, identifier), not once per connection.
  fanout_run fanout_1ch_1000sub_200mps_cable_json "$r" 1000 1 1 200 50 0 200 \
    --ws "${ws%/v1/ws}/cable" --cable json
  fanout_run fanout_1ch_1000sub_200mps_cable_ext "$r" 1000 1 1 200 50 0 200 \
    --ws "${ws%/v1/ws}/cable" --cable ext-json
  # 1 x 1 000 at 100 msg/s (100 000 deliveries/s offered): over generator
  # processes, since one alone tops out at about that rate (see the profile
  # in docs/performance.md) and would be measured instead of the node.
  fanout_run fanout_1ch_1000sub_100mps "$r" 1000 1 "$gens" 100 25 0 200
  # 1 x 10 000 at 10 msg/s: 100 000 deliveries/s offered.
  fanout_run fanout_1ch_10000sub_10mps "$r" "$big_subs" 1 "$gens" 10 5 0 200
  # 1 000 channels x 10 at 2 000 msg/s in all: 20 000 deliveries/s offered.
  # Published 20 to a request through /v1/publish (100 requests/s): 2 000
  # single publishes/s would cost the node's two cores more than the fan-out
  # being measured.
  fanout_run fanout_1000ch_10sub_2000mps "$r" "$big_subs" $(( big_subs / 10 )) "$gens" 2000 20 20 200
done

# ---- (f) reconnect storm: clients resume 100 messages back, all at once --------------
storm_run() {  # storm_run NAME RUN CLIENTS PROCESSES
  wanted "$1" || return 0
  local name=$1 r=$2 clients=$3 procs=$4 head rss0 c0 c1 sampler sj
  local prefix="storm$r-"
  # A fresh node, so that its VmHWM covers only this publish and the storm.
  # Its memory holds none of the channel (no subscriber when it was
  # published): the replays come from the RocksDB cache, as after a restart.
  stop_server
  start_server
  "$loadgen" publish --url "$base" --publishers 1 --batch 100 --count 2 --seconds 60 --channels 1 \
    --prefix "$prefix" --payload-bytes 200 >/dev/null 2>>"$tmp/loadgen.log"
  head=$(curl -fsS "$base/v1/channels/${prefix}0" |
         python3 -c 'import json,sys; print(json.load(sys.stdin)["last_seq"])')
  metrics "$tmp/metrics.0"
  rss0=$(rss_kb)
  echo "$rss0" >"$tmp/storm.peak"
  c0=$(cpu_ticks)
  rss_sampler "$tmp/storm.peak" &
  sampler=$!; bg_pids+=("$sampler")
  # 500 handshakes in flight per generator: the pace is then set by the node
  # answering them, not by a full listen backlog dropping SYNs (the kernel's
  # 1 s SYN retry would dominate the figure).
  subscribers storm "$clients" "$procs" --channels 1 --prefix "$prefix" --since $(( head - 100 )) \
    --expect 100 --no-latency --connect-batch 500 --timeout 120
  wait_subscribers
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
  c1=$(cpu_ticks)
  metrics "$tmp/metrics.1"
  sj=$(merge_subscribers "$tmp"/storm.*.json)
  record "$name" "$r" "$sj" "$(python3 - "$sj" "$c0" "$c1" "$clk_tck" "$rss0" "$(cat "$tmp/storm.peak")" \
    "$(hwm_kb)" "$(metrics_delta "$tmp/metrics.0" "$tmp/metrics.1")" <<'EOF'
import json, sys
s = json.loads(sys.argv[1])
cpu = (float(sys.argv[3]) - float(sys.argv[2])) / float(sys.argv[4])
m = json.loads(sys.argv[8])
print(json.dumps({
    "seconds_to_all_caught_up": s["seconds_start_to_all"],
    "caught_up_fraction": s["deliveries"] / max(1, s["connections"] * s["expect"]),
    "pg_queries": m.get("pg_queries_total", 0),
    "replay_pg_queries": m.get("replay_pg_queries_total", 0),
    "replayed_from_memory": m.get("replay_memory_messages_total", 0),
    "replayed_from_cache": m.get("replay_cache_messages_total", 0),
    "replayed_from_pg": m.get("replay_pg_messages_total", 0),
    "rss_before_kb": int(sys.argv[5]), "peak_rss_kb": int(sys.argv[6]), "vm_hwm_kb": int(sys.argv[7]),
    "server_cpu_s": cpu, "metrics_delta": m}))
EOF
)"
}
log "(f) reconnect storm"
for r in $(seq 1 "$runs"); do storm_run reconnect_storm_10000 "$r" "$storm_clients" "$gens"; done
stop_server
start_server

# ---- (e) replay of 50 000 messages to one client -------------------------------------
log "(e) replay $replay_messages messages"
if wanted replay_50k_from_cache || wanted replay_50k_from_cache_raw || wanted replay_50k_cache_deleted; then
  "$loadgen" publish --url "$base" --publishers 1 --batch 500 --count $(( replay_messages / 500 )) \
    --seconds 120 --channels 1 --prefix "replay-" --payload-bytes 200 >"$tmp/replay-fill.json" 2>>"$tmp/loadgen.log"
fi
replay_run() {  # replay_run NAME RUN [LOADGEN FLAGS...]
  wanted "$1" || return 0
  local name=$1 r=$2 c0 c1 j
  shift 2
  c0=$(cpu_ticks)
  j=$("$loadgen" subscribe --ws "$ws" --connections 1 --channels 1 --prefix "replay-" --since 0 \
      --expect "$replay_messages" --no-latency --timeout 120 "$@" 2>>"$tmp/loadgen.log")
  c1=$(cpu_ticks)
  record "$name" "$r" "$j" "$(python3 -c "
import json; j = json.loads('''$j''')
t = j['seconds_to_all']
print(json.dumps({'replay_msgs_per_s': j['deliveries'] / t if t > 0 else 0, 'server_cpu_s': ($c1 - $c0) / $clk_tck}))")"
}
# With the generator's Beast client, then with its raw socket reader (--raw): the
# first costs the generator ≈ 3 µs a frame, so there the generator is the limit; the
# second measures the node.
for r in $(seq 1 "$runs"); do
  replay_run replay_50k_from_cache "$r"
  replay_run replay_50k_from_cache_raw "$r" --raw
done
for r in $(seq 1 "$runs"); do
  stop_server; rm -rf "$tmp/cache"; start_server
  replay_run replay_50k_cache_deleted "$r"
done

# ---- (g) large payloads: 64 KiB and 1 MiB ----------------------------------------------
# A node of its own. Payloads up to 2 MiB: 1 MiB is the default limit, and a
# 1 MiB JSON payload sits exactly on it. 256 MiB of send queue per connection,
# more than a fan-out below sends in all (at most 80 MiB), so that no
# subscriber is closed as a slow consumer however far behind it falls; with
# the default 8 MiB one eight 1 MiB frames behind would be. Queued frames are
# shared between connections, not copied, so this costs no memory per
# connection.
log "(g) large payloads"
stop_server
start_server --max-payload-bytes $(( 2 << 20 )) --send-queue-bytes $(( 256 << 20 ))
for r in $(seq 1 "$runs"); do
  pub_run publish_64KiB_4pub_4ch "$r" --publishers 4 --channels 4 --prefix "big$r-" \
    --payload-bytes 65536 --seconds "$large_seconds"
  pub_run publish_1MiB_4pub_4ch "$r" --publishers 4 --channels 4 --prefix "huge$r-" \
    --payload-bytes 1048576 --seconds "$large_seconds"
  # 100 subscribers, offered 64 KiB x 100/s x 100 = 660 MB/s and 1 MiB x 8/s x
  # 100 = 840 MB/s: above what smoke runs on this machine delivered (250-520
  # MB/s), so delivered MB/s is the node's ceiling here, and the latency is
  # then mostly queueing. Over generator processes: one alone is CPU-bound
  # (UTF-8 validation of every text frame, copies) below what the node sends.
  fanout_run fanout_1ch_100sub_64KiB_100mps "$r" 100 1 "$gens" 100 10 0 65536
  fanout_run fanout_1ch_100sub_1MiB_8mps "$r" 100 1 "$gens" 8 4 0 1048576
done
stop_server

# ---- table + JSON -------------------------------------------------------------------
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain -- service storage 2>/dev/null | head -1)
python3 "$root/bench/summarize.py" "$results" "$results_json" \
  "$(nproc)" "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
  "$commit${dirty:+ (service/storage modified)}" "$command_label" "$runs"
