// Process-wide status that health checks and metrics read: thread-safe flags and counters.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "metrics/histogram.hpp"

namespace seqcast {

// What a client connection speaks: /v1/ws, Action Cable (/cable), or SSE.
enum class connection_kind : std::size_t { websocket, cable, sse };
inline constexpr std::array<std::string_view, 3> connection_kind_names = {"websocket", "cable",
                                                                          "sse"};

struct node_state {
  std::atomic<bool> listener_connected{false};      // LISTEN connection up
  std::atomic<bool> draining{false};                // SIGTERM or drain received: /readyz is 503
  std::atomic<bool> upgrades_closed{false};         // new WebSocket/SSE connections are refused
  std::atomic<bool> shutting_down{false};           // SIGTERM received: the process will exit
  std::atomic<std::int64_t> requests_in_flight{0};  // HTTP requests not yet answered
  std::atomic<bool> schema_current{false};          // migrations match this binary

  std::atomic<std::uint64_t> connections{0};  // open WebSocket and SSE connections
  std::array<std::atomic<std::uint64_t>, 3> connections_by_kind{};  // … by connection_kind
  std::atomic<std::uint64_t> http_connections{0};                   // plain HTTP connections
  std::atomic<std::uint64_t> refused_connections{0};                // over max_connections
  std::atomic<std::uint64_t> subscriptions{0};        // active subscriptions on this node
  std::atomic<std::uint64_t> publish_ok{0};           // messages acknowledged 201/200
  std::atomic<std::uint64_t> publish_rejected{0};     // 4xx answers to publishes
  std::atomic<std::uint64_t> publish_unavailable{0};  // 503 answers to publishes
  std::atomic<std::uint64_t> slow_consumer_closes{0};
  std::atomic<std::uint64_t> listener_reconnects{0};

  std::atomic<std::int64_t> send_queue_bytes{0};  // bytes queued to all connections

  metrics::histogram publish_seconds{
      {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  metrics::histogram batch_messages{{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000}};
  metrics::histogram commit_seconds{
      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}};

  bool ready() const { return listener_connected && schema_current && !draining; }

  // A client connection of `kind` opened or closed (counted in total and by kind).
  void connection_opened(connection_kind kind) {
    connections.fetch_add(1, std::memory_order_relaxed);
    connections_by_kind[static_cast<std::size_t>(kind)].fetch_add(1, std::memory_order_relaxed);
  }
  void connection_closed(connection_kind kind) {
    connections.fetch_sub(1, std::memory_order_relaxed);
    connections_by_kind[static_cast<std::size_t>(kind)].fetch_sub(1, std::memory_order_relaxed);
  }
  std::uint64_t connections_of(connection_kind kind) const {
    return connections_by_kind[static_cast<std::size_t>(kind)].load(std::memory_order_relaxed);
  }
};

}  // namespace seqcast
