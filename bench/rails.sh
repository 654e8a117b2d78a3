#!/usr/bin/env bash
# Rails broadcasts three ways, on one machine, in one run (issue "Rails back ends"):
#   pg      Action Cable's own PostgreSQL adapter, served by puma (bench/rails/config.ru)
#   http    seqcast's Rails adapter in http mode: a POST per broadcast to a seqcast node
#   outbox  seqcast's Rails adapter in outbox mode: seqcast.publish() in the app's
#           transaction; the node moves it into the log
# The app side is bench/rails/broadcast.rb (ActionCable.server.broadcast, one
# transaction per broadcast, payload {sent_us, n}); the browsers are the C++ load
# generator speaking Action Cable's JSON protocol (to puma's Action Cable, or to
# seqcast's /cable), which takes each delivery's latency from sent_us: broadcast
# call to frame received.
#
#   bench/rails.sh              every scenario, RUNS (default 2) times each
#     trickle: 10 subscribers of one stream, 10 broadcasts/s from one thread
#     quiet:  SUBS (100) subscribers of one stream, 100 broadcasts/s from one thread
#     busy:   10 subscribers, THREADS (8) threads broadcasting as fast as they return
#
# Needs Debian's ruby, ruby-actioncable, ruby-activerecord, ruby-pg and puma
# (installed when missing). Prints a table; JSON lines in build-bench/rails.jsonl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
runs=${RUNS:-2}
subs=${SUBS:-100}
threads=${THREADS:-8}
seconds=${SECONDS_PER_RUN:-10}

log() { printf '[rails-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

missing=()
for p in ruby ruby-actioncable ruby-activerecord ruby-pg puma; do
  dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed$' || missing+=("$p")
done
if (( ${#missing[@]} > 0 )); then
  log "installing ${missing[*]}"
  as_root=(); [[ $(id -u) -eq 0 ]] || as_root=(sudo)
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi

log "building into build-bench/"
cmake -S . -B build-bench -DSEQCAST_BENCH=ON -DSEQCAST_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-bench -j2 >/dev/null
seqcast=$root/build-bench/seqcast
loadgen=$root/build-bench/bench/seqcast-loadgen

tmp=$(mktemp -d /tmp/seqcast-rails-bench.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  "$root/scripts/pg-temp" stop "$tmp/pg" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {  # wait_http URL
  for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  log "$1 did not answer"; exit 1
}

log "PostgreSQL in $tmp/pg"
admin_url=$("$root/scripts/pg-temp" start "$tmp/pg")
"$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/psql" "$admin_url" -qAtX -c "CREATE DATABASE bench"
db_url=${admin_url%/postgres}/bench

node_port=$(free_port)
"$seqcast" serve --database-url "$db_url" --listen "127.0.0.1:$node_port" --cache-dir "$tmp/cache" \
  --log-level warn >>"$tmp/seqcast.log" 2>&1 &
node_pid=$!; pids+=("$node_pid")
wait_http "http://127.0.0.1:$node_port/readyz"

puma_port=$(free_port)
(cd bench/rails && DATABASE_URL=$db_url exec puma -q -b "tcp://127.0.0.1:$puma_port" -t 4:16 config.ru) \
  >>"$tmp/puma.log" 2>&1 &
puma_pid=$!; pids+=("$puma_pid")
for _ in $(seq 1 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$puma_port") 2>/dev/null && break
  sleep 0.1
done
log "seqcast on :$node_port (pid $node_pid), Action Cable on puma :$puma_port (pid $puma_pid)"

cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
out=$root/build-bench/rails.jsonl
: >"$out"

# run MODE SCENARIO RUN SUBSCRIBERS BROADCAST_ENV...
run() {
  local mode=$1 scenario=$2 r=$3 n=$4 ws channel_args=() server_pid sj bj c0 c1
  shift 4
  local prefix="r$r-$mode-$scenario-"
  if [[ $mode == pg ]]; then
    ws=ws://127.0.0.1:$puma_port/; channel_args=(--cable-channel BenchChannel); server_pid=$puma_pid
  else
    ws=ws://127.0.0.1:$node_port/cable; server_pid=$node_pid
  fi
  "$loadgen" subscribe --ws "$ws" --cable json "${channel_args[@]}" --connections "$n" --channels 1 \
    --prefix "$prefix" --hold $(( seconds + 5 )) --timeout $(( seconds + 60 )) \
    --ready-file "$tmp/ready" >"$tmp/sub.json" 2>>"$tmp/loadgen.log" &
  local sub_pid=$!
  for _ in $(seq 1 600); do [[ -s $tmp/ready ]] && break; sleep 0.05; done
  rm -f "$tmp/ready"
  c0=$(cpu_s "$server_pid")
  bj=$(env "$@" PREFIX="$prefix" CHANNELS=1 DURATION="$seconds" DATABASE_URL="$db_url" \
       SEQCAST_URL="http://127.0.0.1:$node_port" ruby bench/rails/broadcast.rb "$mode" 2>>"$tmp/broadcast.log")
  c1=$(cpu_s "$server_pid")
  wait "$sub_pid" || true
  sj=$(cat "$tmp/sub.json")
  python3 - "$mode" "$scenario" "$r" "$n" "$bj" "$sj" "$c0" "$c1" >>"$out" <<'PY'
import json, sys
mode, scenario, r, n, b, s, c0, c1 = sys.argv[1:9]
b, s = json.loads(b), json.loads(s)
print(json.dumps({"mode": mode, "scenario": scenario, "run": int(r), "subscribers": int(n),
                  "broadcasts": b["broadcasts"], "errors": b["errors"], "broadcasts_per_s": b["broadcasts_per_s"],
                  "deliveries": s["deliveries"], "delivered_fraction": s["deliveries"] / max(1, int(n) * b["broadcasts"]),
                  "lat_p50_ms": s["lat_p50_us"] / 1000, "lat_p99_ms": s["lat_p99_us"] / 1000,
                  "server_cpu_s": float(c1) - float(c0)}))
PY
  log "$(tail -n 1 "$out")"
}

for r in $(seq 1 "$runs"); do
  for mode in pg http outbox; do
    run "$mode" trickle "$r" 10 THREADS=1 RATE=10
    run "$mode" quiet "$r" "$subs" THREADS=1 RATE=100
    run "$mode" busy "$r" 10 THREADS="$threads" RATE=0
  done
done

python3 - "$out" "$(nproc)" "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
  "$(git rev-parse --short HEAD)" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"machine: {sys.argv[2]} cores, {sys.argv[3]}; commit {sys.argv[4]}; command: bench/rails.sh")
print("| adapter | scenario | broadcasts/s | delivered | p50 ms | p99 ms | server CPU s | runs |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
names = {"pg": "Action Cable postgresql (puma)", "http": "seqcast http", "outbox": "seqcast outbox"}
for scenario in ("trickle", "quiet", "busy"):
    for mode in ("pg", "http", "outbox"):
        rs = [x for x in rows if x["mode"] == mode and x["scenario"] == scenario]
        if not rs: continue
        med = lambda k: statistics.median(x[k] for x in rs)
        span = lambda k, f: f"{f(min(x[k] for x in rs))}–{f(max(x[k] for x in rs))}"
        print(f"| {names[mode]} | {scenario} | {med('broadcasts_per_s'):,.0f} ({span('broadcasts_per_s', lambda v: f'{v:,.0f}')}) "
              f"| {med('delivered_fraction'):.4f} | {med('lat_p50_ms'):.2f} ({span('lat_p50_ms', lambda v: f'{v:.2f}')}) "
              f"| {med('lat_p99_ms'):.2f} ({span('lat_p99_ms', lambda v: f'{v:.2f}')}) | {med('server_cpu_s'):.2f} | {len(rs)} |")
PY
