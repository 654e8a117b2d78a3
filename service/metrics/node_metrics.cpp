// The node's metrics, each declared once.
#include "metrics/node_metrics.hpp"

#include <algorithm>

#include "types.hpp"

namespace seqcast::metrics {

namespace {

template <class T>
registry::read_fn load(const std::atomic<T>& a) {
  return [&a] { return static_cast<std::uint64_t>(a.load(std::memory_order_relaxed)); };
}

}  // namespace

void declare_node_metrics(registry& r, const node_sources& s) {
  const node_state& st = s.state;
  const hub::hub_counters& h = s.hub.counters();

  // Connections and subscriptions.
  r.gauge("seqcast_connections", "Open WebSocket and SSE connections.", load(st.connections));
  std::vector<std::pair<std::string, registry::read_fn>> by_kind;
  for (std::size_t k = 0; k < connection_kind_names.size(); ++k) {
    by_kind.emplace_back(std::string(connection_kind_names[k]), load(st.connections_by_kind[k]));
  }
  r.gauge_family("seqcast_connections_by_kind",
                 "Open client connections by what they speak: websocket (/v1/ws), cable "
                 "(Action Cable), sse.",
                 "kind", std::move(by_kind));
  r.gauge("seqcast_http_connections", "Open plain HTTP connections.", load(st.http_connections));
  r.counter("seqcast_refused_connections_total", "Connections refused over max_connections.",
            load(st.refused_connections));
  r.gauge("seqcast_subscriptions", "Active subscriptions.", load(st.subscriptions));
  r.gauge("seqcast_channels", "Channels with subscribers on this node.",
          [&hub = s.hub] { return static_cast<std::uint64_t>(hub.channel_count()); });

  // Publishing and delivery.
  r.counter("seqcast_publish_ok_total", "Messages acknowledged.", load(st.publish_ok));
  r.counter("seqcast_publish_rejected_total", "Publishes refused with 4xx.",
            load(st.publish_rejected));
  r.counter("seqcast_publish_unavailable_total", "Publishes refused with 503.",
            load(st.publish_unavailable));
  r.counter("seqcast_messages_ingested_total", "Messages handed to the hub.",
            load(h.messages_ingested));
  r.counter("seqcast_deliveries_total", "Message frames handed to connections.",
            load(h.deliveries));
  r.counter("seqcast_ingest_fetches_total", "PostgreSQL range reads by live ingest.",
            load(h.fetches));

  // Replay: where resumes were served from.
  r.counter("seqcast_replay_memory_messages_total", "Replayed messages served from memory.",
            load(h.replay_memory));
  r.counter("seqcast_replay_cache_messages_total",
            "Replayed messages served from the RocksDB cache.", load(h.replay_cache));
  r.counter("seqcast_replay_pg_messages_total", "Replayed messages read from PostgreSQL.",
            load(h.replay_pg));
  r.counter("seqcast_replay_pg_queries_total", "PostgreSQL range reads for replays.",
            load(h.replay_pg_queries));
  r.counter("seqcast_resets_total", "Reset frames sent.", load(h.resets));
  r.counter("seqcast_timeline_changes_total",
            "Failovers noticed: the database came back on another server timeline.",
            load(h.timeline_changes));
  r.counter("seqcast_rewinds_total",
            "Channels found behind what this node had seen after a failover (reset rewound).",
            load(h.rewinds));
  r.counter("seqcast_rewound_messages_total",
            "Messages this node had seen that the database lost in a failover.",
            load(h.rewound_messages));
  r.counter("seqcast_hub_read_retries_total",
            "Hub reads of PostgreSQL (heads, live ranges, replays) retried after a failure.",
            load(h.read_retries));

  // PostgreSQL, slow consumers, drain, queues.
  r.counter("seqcast_pg_queries_total", "PostgreSQL round trips by the read pool.",
            [&pool = s.pool] { return pool.queries(); });
  r.counter("seqcast_slow_consumer_closes_total", "Connections closed as slow consumers (1013).",
            load(st.slow_consumer_closes));
  r.counter("seqcast_listener_reconnects_total", "LISTEN connection (re)opens.",
            load(st.listener_reconnects));
  r.gauge("seqcast_draining", "1 while this node drains.",
          [&st] { return std::uint64_t{st.draining ? 1u : 0u}; });
  r.gauge("seqcast_send_queue_bytes", "Bytes queued to all connections.", [&st] {
    return static_cast<std::uint64_t>(std::max<std::int64_t>(st.send_queue_bytes.load(), 0));
  });
  r.counter("seqcast_pg_errors_total", "PostgreSQL operations that failed.",
            [] { return storage::pg_errors(); });

  // Latencies and batch sizes.
  r.histogram("seqcast_publish_seconds", "Publish latency, request to acknowledgement.",
              st.publish_seconds);
  r.histogram("seqcast_commit_batch_messages", "Messages per group-commit transaction.",
              st.batch_messages);
  r.histogram("seqcast_delivery_lag_seconds", "Commit to fan-out delay of live messages.",
              h.delivery_lag_seconds);

  // Added with the console (R2 6/7).
  r.histogram("seqcast_commit_seconds",
              "Duration of a group-commit transaction (its statements and COMMIT).",
              st.commit_seconds);
  r.gauge("seqcast_database_up",
          "1 while the LISTEN connection is up and the writer's last commit reached PostgreSQL.",
          [&st, &committer = s.committer] {
            return std::uint64_t{st.listener_connected && committer.healthy() ? 1u : 0u};
          });
  r.gauge("seqcast_ready", "1 while /readyz answers 200.",
          [&st] { return std::uint64_t{st.ready() ? 1u : 0u}; });
  r.gauge("seqcast_cache_bytes", "Approximate bytes in the RocksDB replay cache.",
          [cache = s.cache] { return cache ? cache->approximate_bytes() : 0; });
}

}  // namespace seqcast::metrics
