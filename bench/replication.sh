#!/usr/bin/env bash
# What a streaming standby costs a publisher: bench/run.sh's closed-loop
# publish load ("(b) publish", one channel) against one node whose PostgreSQL
# is, in turn,
#
#   alone   a primary with no standby
#   async   a primary with a streaming standby, asynchronous
#   sync    the same with synchronous_standby_names = 'standby' (synchronous_commit
#           on, the default): a publish is acknowledged only once the standby
#           has flushed its commit
#
# at 1, 8 and 64 publishers. Prints one table (medians over runs, with the
# spread) and writes build-bench/results-replication.json:
#
#   bench/replication.sh                     every setup, each RUNS times (default 2)
#   RUNS=3 PUBLISH_SECONDS=15 bench/replication.sh
#   RUNS=1 PUBLISH_SECONDS=1 bench/replication.sh   a smoke test of the script, not figures
#
# Each (run, setup) gets fresh clusters (scripts/pg-temp start, and standby for
# async and sync) and a fresh node, so every setup starts from the same empty
# database; the setups alternate within a run, in reverse order every other
# run, so that drift in the machine's load spreads over all three. Everything
# it started is stopped when it exits. Takes about 3 minutes beyond the build
# (RUNS=2, 8 s each).
#
# Both clusters, the node and the load generator share the machine's cores and
# its disk (fsync on): what "sync" adds here is the standby's own fsync and the
# wake-ups of the processes between (walsender, walreceiver), not a network
# round trip. A standby elsewhere adds its round trip to every commit instead,
# and takes its CPU off these cores.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
runs=${RUNS:-2}
publish_seconds=${PUBLISH_SECONDS:-8}
publishers=(1 8 64)
setups=(alone async sync)
results_json=${RESULTS:-$root/build-bench/results-replication.json}
command_label="RUNS=$runs${PUBLISH_SECONDS:+ PUBLISH_SECONDS=$publish_seconds} bench/replication.sh"
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
clk_tck=$(getconf CLK_TCK)
started=$SECONDS

tmp=$(mktemp -d /tmp/seqcast-replication.XXXXXX)
chmod 755 "$tmp"  # the postgres user must reach the clusters under it
results=$tmp/runs.jsonl
: >"$results"
server_pid=
clusters=()  # every cluster directory started, primaries before their standbys

cleanup() {
  set +e
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  local d
  for d in "${clusters[@]}"; do "$root/scripts/pg-temp" stop "$d" >/dev/null 2>&1; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[replication %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- build ------------------------------------------------------------------
# Only the two programs this needs; configured as bench/run.sh does if it is not yet.
if [[ ! -f build-bench/CMakeCache.txt ]]; then
  cmake -S . -B build-bench -DSEQCAST_BENCH=ON -DSEQCAST_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
log "building seqcast and seqcast-loadgen in build-bench/"
cmake --build build-bench -j2 --target seqcast seqcast-loadgen >/dev/null
seqcast=$root/build-bench/seqcast
loadgen=$root/build-bench/bench/seqcast-loadgen
# Others may share the machine: the load average around the measurement (after the build) goes in the header.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port

# ---- PostgreSQL ---------------------------------------------------------------
psql_() { local url=$1; shift; "$pgbin/psql" "$url" -qAtX -v ON_ERROR_STOP=1 "$@"; }

wait_sql() {  # wait_sql URL QUERY EXPECTED: poll for up to 30 s
  local got
  for _ in $(seq 1 300); do
    got=$(psql_ "$1" -c "$2" 2>/dev/null) || got=
    [[ $got == "$3" ]] && return 0
    sleep 0.1
  done
  log "$2: '$got' after 30 s, expected '$3'"
  exit 1
}

# start_pg DIR SETUP: the clusters of SETUP under DIR; sets db_url (the node's)
# and primary_url.
start_pg() {
  local dir=$1 setup=$2
  clusters+=("$dir/primary")
  primary_url=$("$root/scripts/pg-temp" start "$dir/primary")
  db_url=$primary_url
  [[ $setup == alone ]] && return 0
  clusters+=("$dir/standby")
  "$root/scripts/pg-temp" standby "$dir/standby" "$dir/primary" >/dev/null
  # Both hosts, as a deployment that fails over names them; libpq picks the writable one.
  db_url="postgresql://postgres@127.0.0.1:$(cat "$dir/primary/port"),127.0.0.1:$(cat "$dir/standby/port")/postgres?target_session_attrs=read-write"
  if [[ $setup == sync ]]; then
    # One statement per call: ALTER SYSTEM refuses to run inside a transaction block.
    psql_ "$primary_url" -c "ALTER SYSTEM SET synchronous_standby_names = 'standby'"
    psql_ "$primary_url" -c "SELECT pg_reload_conf()" >/dev/null
  fi
  wait_sql "$primary_url" "SELECT state || ' ' || sync_state FROM pg_stat_replication" \
    "streaming $([[ $setup == sync ]] && echo sync || echo async)"
  [[ $(psql_ "$primary_url" -c "SHOW synchronous_commit") == on ]] || { log "synchronous_commit is not on"; exit 1; }
}

stop_pg() {
  local d
  for d in "${clusters[@]}"; do "$root/scripts/pg-temp" stop "$d" >/dev/null; done
  clusters=()
}

# ---- the node ---------------------------------------------------------------
# As bench/run.sh starts it (no drain delay: nothing is left to drain when it
# stops), and ready once it has migrated and reaches the primary.
start_server() {  # start_server DATABASE_URL CACHE_DIR
  "$seqcast" serve --database-url "$1" --listen "127.0.0.1:$port" --cache-dir "$2" \
    --cache-channel-messages 60000 --drain-delay-seconds 0 --drain-window-seconds 0 \
    --log-level warn >>"$tmp/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 600); do
    [[ $(curl -sS -o /dev/null -w '%{http_code}' "$base/readyz" 2>/dev/null) == 200 ]] && return 0
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
    sleep 0.05
  done
  log "seqcast was not ready within 30 s"; cat "$tmp/server.log" >&2; exit 1
}
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }

# ---- the load -----------------------------------------------------------------
pub_run() {  # pub_run SETUP RUN PUBLISHERS: one closed-loop publish, recorded
  local setup=$1 r=$2 n=$3 c0 c1 j
  c0=$(cpu_ticks)
  j=$("$loadgen" publish --url "$base" --seconds "$publish_seconds" --payload-bytes 200 \
      --publishers "$n" --channels 1 --prefix "hot-" 2>>"$tmp/loadgen.log")
  c1=$(cpu_ticks)
  printf '{"setup":"%s","publishers":%s,"run":%s,"result":%s,"extra":{"server_cpu_s":%s}}\n' \
    "$setup" "$n" "$r" "$j" "$(python3 -c "print(($c1 - $c0) / $clk_tck)")" >>"$results"
  log "  $setup, $n publishers: $(python3 -c '
import json, sys
j = json.loads(sys.argv[1])
print("%.0f/s, p50 %.2f ms, p99 %.2f ms, errors %d"
      % (j["msgs_per_s"], j["ack_p50_us"] / 1000, j["ack_p99_us"] / 1000, j["errors"]))' "$j")"
}

for r in $(seq 1 "$runs"); do
  order=("${setups[@]}")
  (( r % 2 )) || order=(sync async alone)
  for setup in "${order[@]}"; do
    log "run $r: $setup"
    dir=$tmp/r$r-$setup
    mkdir -p "$dir"
    start_pg "$dir" "$setup"
    start_server "$db_url" "$dir/cache"
    for n in "${publishers[@]}"; do pub_run "$setup" "$r" "$n"; done
    stop_server
    stop_pg
    rm -rf "$dir"
  done
done

# ---- table + JSON -------------------------------------------------------------------
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain -- service storage migrations 2>/dev/null | head -1)
python3 - "$results" "$results_json" "$(nproc)" "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
  "$commit${dirty:+ (service/storage modified)}" "$command_label" "$runs" "$publish_seconds" \
  "$("$pgbin/postgres" --version)" "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  $(( SECONDS - started )) <<'EOF'
import json, statistics, sys
from datetime import datetime, timezone
(runs_path, out_path, nproc, model, commit, command, runs, seconds, pg_version,
 load_before, load_after, took) = sys.argv[1:13]
rows = [json.loads(line) for line in open(runs_path) if line.strip()]

FIGURES = [("acked/s", lambda r: r["result"]["msgs_per_s"]),
           ("p50 ms", lambda r: r["result"]["ack_p50_us"] / 1000),
           ("p99 ms", lambda r: r["result"]["ack_p99_us"] / 1000),
           ("node CPU µs/publish",
            lambda r: r["extra"]["server_cpu_s"] * 1e6 / max(1, r["result"]["acked"]))]
table = []
for n in sorted({r["publishers"] for r in rows}):
    for setup in ("alone", "async", "sync"):
        these = [r for r in rows if r["publishers"] == n and r["setup"] == setup]
        if not these:
            continue
        row = {"setup": setup, "publishers": n, "runs": len(these),
               "errors": sum(r["result"]["errors"] for r in these)}
        for label, get in FIGURES:
            vals = [get(r) for r in these]
            row[label] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
        table.append(row)

def cell(f, digits):
    return f"{f['median']:,.{digits}f} ({f['min']:,.{digits}f}–{f['max']:,.{digits}f})"

alone = {t["publishers"]: t["acked/s"]["median"] for t in table if t["setup"] == "alone"}
print(f"machine: {nproc} cores, {model}; {pg_version}, fsync on, primary and standby on this "
      f"machine (same cores, same disk); commit {commit}")
print(f"command: {command}; {seconds} s per figure, medians over {runs} runs (min–max); "
      f"load average before {load_before}, after {load_after}; took {took} s")
cols = ["setup", "publishers", "acked/s", "vs alone", "p50 ms", "p99 ms", "node CPU µs/publish", "errors"]
lines = []
for t in table:
    ratio = t["acked/s"]["median"] / alone[t["publishers"]] if alone.get(t["publishers"]) else None
    lines.append([t["setup"], str(t["publishers"]), cell(t["acked/s"], 0),
                  f"{ratio:.2f}" if ratio is not None else "", cell(t["p50 ms"], 2),
                  cell(t["p99 ms"], 2), cell(t["node CPU µs/publish"], 0), str(t["errors"])])
w = [max(len(c), *(len(l[i]) for l in lines)) for i, c in enumerate(cols)]
def line(cells):  # the setup left, figures right
    return "| " + " | ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(cells)) + " |"
print(line(cols))
print("|" + "|".join("-" * (w[i] + 2) if i == 0 else "-" * (w[i] + 1) + ":" for i in range(len(cols))) + "|")
for l in lines:
    print(line(l))

json.dump({"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"nproc": int(nproc), "model": model, "postgres": pg_version,
                       "load_before": load_before, "load_after": load_after},
           "commit": commit, "command": command, "seconds_per_figure": float(seconds),
           "took_s": int(took), "table": table, "runs": rows}, open(out_path, "w"), indent=1)
print(f"\nwritten: {out_path}")
EOF
