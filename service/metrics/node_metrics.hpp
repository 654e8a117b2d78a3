// The node's metrics, each declared once: what /metrics, /v1/stats and the console's
// charts show, from the counters of the objects that keep them.
#pragma once

#include "blocking_pool.hpp"
#include "hub/sharded_hub.hpp"
#include "metrics/registry.hpp"
#include "node_state.hpp"
#include "publish/group_committer.hpp"
#include "rocksdb_replay_cache.hpp"

namespace seqcast::metrics {

// What the metrics read; each must outlive every reader of the registry.
struct node_sources {
  const node_state& state;
  const hub::sharded_hub& hub;
  const blocking_pool& pool;
  const storage::rocksdb_replay_cache* cache;  // null: no cache (0 bytes)
  const publish::group_committer& committer;
};

// Declares every metric of a node in `r`. The names and meanings of those that
// existed before the registry are unchanged (dashboards and tests read them).
void declare_node_metrics(registry& r, const node_sources& s);

}  // namespace seqcast::metrics
