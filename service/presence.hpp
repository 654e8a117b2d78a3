// This node's row in the `nodes` table, refreshed every few seconds, so that every node
// sharing the database can list the others (GET /v1/nodes, the console's nodes panel).
#pragma once

#include <chrono>
#include <memory>

#include "blocking_pool.hpp"
#include "node_identity.hpp"
#include "node_state.hpp"

namespace seqcast {

// Thread-safe; Asio-free (a ticker in main calls tick()). The database work runs on
// the blocking pool. A refresh that fails (the database is away) is logged once and
// tried again at the next tick: presence never blocks an I/O thread, never changes
// readiness, never stops the node.
class presence {
 public:
  // How often a node refreshes its row, and how long a row counts as a live node
  // after its last refresh (the contract's window of GET /v1/nodes).
  static constexpr std::chrono::seconds period{5};
  static constexpr int window_seconds = 30;
  // Rows of nodes not seen for this long are deleted (a node that went away for good).
  static constexpr int forget_seconds = 86400;

  // `state` must outlive the pool's jobs (main owns both).
  presence(blocking_pool& pool, node_identity self, const node_state& state);

  // Posts one refresh (name, address, version, start, connections by kind,
  // draining) to the pool, unless the previous one has not finished yet.
  void tick();

 private:
  struct shared;
  blocking_pool& pool_;
  std::shared_ptr<shared> s_;
};

}  // namespace seqcast
