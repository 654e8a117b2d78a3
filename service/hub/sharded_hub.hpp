// The node's hub, sharded by channel: one hub (hub.hpp) per shard, each the single
// sequencer of its channels on its own strand, so that a node's ingest, fan-out and
// replay work spreads over its cores.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hub/hub.hpp"

namespace seqcast::hub {

// A channel belongs to one shard for the life of the process (a hash of its name), so
// everything about it — its head, its subscriptions, its cache writes, its replays —
// happens on one strand in one order, as in a hub of its own. Shards share nothing on
// the per-message path: a call naming channels is split by shard and each part posted
// to its shard; nothing is locked to route. Calls about every channel (the listener
// came back, a failover) go to every shard.
//
// What the shards share: the counters (atomics), the fan-out into the I/O threads (one
// outbox per thread, so one post and one load measure per thread whichever shards feed
// it), the blocking pool, and the replay cache (its writes are serialized inside it). A failover
// empties the cache from every shard, each on its own strand before it reads its channels again, so
// none of them reads what a lost timeline left there; what one shard's emptying takes from
// another's fresh writes is a hole, read from PostgreSQL (the cache is never the truth).
//
// All methods are thread-safe, as the hub's are.
class sharded_hub {
 public:
  // Builds shard `k` of `n` on what the shards share.
  using make_fn = std::function<std::unique_ptr<hub>(std::size_t k, hub_shared shared)>;
  // `home`, `homes`, `hold`: the fan-out's (fanout.hpp).
  sharded_hub(std::size_t n, fanout::post_home_fn home, std::size_t homes,
              std::chrono::milliseconds hold, const make_fn& make);

  // The shard that owns `channel`.
  hub& shard_of(const std::string& channel) { return *shards_[index(channel)]; }
  std::size_t size() const { return shards_.size(); }

  // As hub's, routed to the channel's shard.
  void subscribe(std::uint64_t id, std::weak_ptr<subscriber> who, std::string channel,
                 std::optional<storage::seq_t> since, std::optional<std::string> epoch,
                 std::size_t grant);
  void unsubscribe(std::uint64_t id, std::string channel);
  void more(std::uint64_t id, std::string channel, std::size_t grant);

  // As hub's, split by shard (each shard gets its channels' part, in the same order).
  void on_notify(std::vector<storage::channel_advance> advances);
  void on_committed(std::vector<storage::committed_message> messages);
  void on_local(std::vector<storage::channel_advance> advances, bool expected);

  // As hub's, to every shard.
  void on_listener_connected();
  void on_timeline_changed();

  std::size_t subscriber_count(const std::string& channel) const;
  std::size_t channel_count() const;
  const hub_counters& counters() const { return counters_; }

 private:
  std::size_t index(const std::string& channel) const;
  // Splits `items` by the shard of their `name` and calls `call(shard, part)` for each
  // shard with a part.
  template <class T, class Call>
  void split(std::vector<T> items, Call call);

  hub_counters counters_;  // these two before the shards, which use them
  fanout fanout_;
  std::vector<std::unique_ptr<hub>> shards_;
};

}  // namespace seqcast::hub
