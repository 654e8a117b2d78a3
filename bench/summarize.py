#!/usr/bin/env python3
"""Turns bench/run.sh's runs.jsonl into one table (stdout) and bench/results.json."""
import json
import statistics
import sys
from datetime import datetime, timezone

runs_path, out_path, nproc, model, commit, command, runs = sys.argv[1:8]

# scenario -> [(label, where, key)] ; where = "result" or "extra", or "derived"
# for a figure computed from the run by DERIVED[key]
MEMORY = [("RSS bytes/conn", "extra", "rss_bytes_per_conn"), ("subscribed", "extra", "subscribed")]
FANOUT = [
    ("offered deliveries/s", "extra", "offered_deliveries_per_s"),
    ("deliveries/s", "result", "deliveries_per_s"),
    ("delivered fraction", "extra", "delivered_fraction_of_acked"),
    ("gaps+dups", "result", "gaps"),
    ("lat p50 µs", "result", "lat_p50_us"),
    ("lat p99 µs", "result", "lat_p99_us"),
    ("lat p999 µs", "result", "lat_p999_us"),
    ("server CPU µs/delivery", "extra", "server_cpu_us_per_delivery"),
    ("PostgreSQL CPU µs/message", "extra", "pg_cpu_us_per_message"),
]
LARGE_FANOUT = FANOUT + [("delivered MB/s", "extra", "delivered_mb_per_s"),
                         ("slow-consumer closes", "extra", "slow_consumer_closes")]
PUBLISH = [("acked msgs/s", "result", "msgs_per_s"), ("ack p50 µs", "result", "ack_p50_us"),
           ("ack p99 µs", "result", "ack_p99_us"), ("errors", "result", "errors"),
           ("server CPU µs/publish", "extra", "server_cpu_us_per_publish"),
           ("PostgreSQL CPU µs/publish", "extra", "pg_cpu_us_per_publish")]
LARGE_PUBLISH = [("MB/s", "extra", "mb_per_s")] + PUBLISH
STORM = [
    ("s until all caught up", "extra", "seconds_to_all_caught_up"),
    ("caught-up fraction", "extra", "caught_up_fraction"),
    ("gaps+dups", "result", "gaps"),
    ("PG read-pool queries", "extra", "pg_queries"),
    ("msgs replayed from PG", "extra", "replayed_from_pg"),
    ("peak RSS MiB", "derived", "peak_rss_mib"),
    ("RSS growth MiB", "derived", "rss_growth_mib"),
    ("server CPU s", "extra", "server_cpu_s"),
]
DERIVED = {
    "peak_rss_mib": lambda r: r["extra"]["peak_rss_kb"] / 1024,
    "rss_growth_mib": lambda r: (r["extra"]["peak_rss_kb"] - r["extra"]["rss_before_kb"]) / 1024,
}
FIGURES = {
    "pg_insert_1row_c1": [("tx/s", "result", "tx_per_s")],
    "pg_insert_1row_c8": [("tx/s", "result", "tx_per_s")],
    "pg_insert_notify_c8": [("tx/s", "result", "tx_per_s")],
    "pg_insert_100rows_c8": [("rows/s", "result", "rows_per_s")],
    "raw_fanout_1000_coalesce1": [("msgs/s", "result", "msgs_per_s"),
                                  ("sender CPU µs/msg", "result", "sender_cpu_us_per_msg")],
    "raw_fanout_1000_coalesce10": [("msgs/s", "result", "msgs_per_s"),
                                   ("sender CPU µs/msg", "result", "sender_cpu_us_per_msg")],
    "replay_50k_from_cache": [("msgs/s", "extra", "replay_msgs_per_s"), ("gaps", "result", "gaps"),
                              ("generator CPU s", "result", "loadgen_cpu_s")],
    "replay_50k_from_cache_raw": [("msgs/s", "extra", "replay_msgs_per_s"), ("gaps", "result", "gaps"),
                                  ("generator CPU s", "result", "loadgen_cpu_s")],
    "replay_50k_cache_deleted": [("msgs/s", "extra", "replay_msgs_per_s"), ("gaps", "result", "gaps")],
}


def figures_for(scenario):
    if scenario in FIGURES:
        return FIGURES[scenario]
    large = "KiB" in scenario or "MiB" in scenario
    for prefix, figs in (("mem_idle_", MEMORY), ("reconnect_storm_", STORM),
                         ("fanout_", LARGE_FANOUT if large else FANOUT), ("latency_", FANOUT),
                         ("publish_", LARGE_PUBLISH if large else PUBLISH)):
        if scenario.startswith(prefix):
            return figs
    return []


rows = [json.loads(line) for line in open(runs_path) if line.strip()]
order, by = [], {}
for r in rows:
    if r["scenario"] not in by:
        order.append(r["scenario"])
        by[r["scenario"]] = []
    by[r["scenario"]].append(r)

table = []
for sc in order:
    for label, where, key in figures_for(sc):
        vals = []
        for r in by[sc]:
            v = DERIVED[key](r) if where == "derived" else r.get(where, {}).get(key)
            if key == "gaps" and v is not None:
                v = v + r[where].get("duplicates", 0)
            if v is not None:
                vals.append(float(v))
        if not vals:
            continue
        table.append({"scenario": sc, "figure": label, "median": statistics.median(vals),
                      "min": min(vals), "max": max(vals), "runs": len(vals)})


def fmt(v):
    if v == int(v) and abs(v) >= 1:
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


header = f"machine: {nproc} cores, {model}; commit {commit}; command: {command}"
print(header)
w1 = max(len(t["scenario"]) for t in table)
w2 = max(len(t["figure"]) for t in table)
print(f"| {'scenario':<{w1}} | {'figure':<{w2}} | {'median':>12} | {'min – max':>25} | runs |")
print(f"|{'-' * (w1 + 2)}|{'-' * (w2 + 2)}|{'-' * 14}:|{'-' * 27}:|-----:|")
for t in table:
    spread = f"{fmt(t['min'])} – {fmt(t['max'])}"
    print(f"| {t['scenario']:<{w1}} | {t['figure']:<{w2}} | {fmt(t['median']):>12} | {spread:>25} | {t['runs']:>4} |")

json.dump({"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"nproc": int(nproc), "model": model}, "commit": commit, "command": command,
           "table": table, "runs": rows}, open(out_path, "w"), indent=1)
print(f"\nwritten: {out_path}")
