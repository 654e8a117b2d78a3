// The hub's counters, read by /metrics from any thread.
#pragma once

#include <atomic>
#include <cstdint>

#include "metrics/histogram.hpp"

namespace seqcast::hub {

struct hub_counters {
  std::atomic<std::uint64_t> messages_ingested{0};  // messages handed to subscribers (per node)
  std::atomic<std::uint64_t> deliveries{0};         // message frames × subscribers
  std::atomic<std::uint64_t> fetches{0};            // PostgreSQL range reads by live ingest
  std::atomic<std::uint64_t> replay_memory{0};      // replayed messages from the in-memory ring
  std::atomic<std::uint64_t> replay_cache{0};       // replayed messages from RocksDB
  std::atomic<std::uint64_t> replay_pg{0};          // replayed messages read from PostgreSQL
  std::atomic<std::uint64_t> replay_pg_queries{0};  // PostgreSQL range reads for replays
  std::atomic<std::uint64_t> resets{0};             // reset frames sent
  std::atomic<std::uint64_t> read_retries{0};       // PostgreSQL reads retried after a failure
  std::atomic<std::uint64_t> timeline_changes{0};   // failovers this node noticed
  std::atomic<std::uint64_t> rewinds{0};            // channels found rewound by a failover
  std::atomic<std::uint64_t> rewound_messages{0};   // … messages this node had seen beyond R
  // Commit → handed to subscribers, per live message (includes NOTIFY and fetch).
  metrics::histogram delivery_lag_seconds{
      {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
};

}  // namespace seqcast::hub
