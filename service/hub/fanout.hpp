// Hub → connections: one outbox per I/O thread, posted to only when it was empty.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "hub/subscriber.hpp"

namespace seqcast::hub {

// Everything the hub hands to connections goes through here, so that on each I/O
// thread it arrives in one FIFO, in hub order: a subscription's replay page
// before the live frames that follow it, an old epoch's frames before its reset.
//
// Frames for the connections of one I/O thread go into that thread's outbox, and
// the thread is posted to only when its outbox was empty. It then hands over
// everything queued by then in one pass and asks each connection to write once
// (subscriber::flush_here). A message that finds the way clear goes out at once;
// what arrives while the thread is busy waits in the outbox and goes out together.
//
// `hold`: while a thread's fan-out kept it busy for more than a quarter of the
// last 100 ms (until that falls under a tenth), live frames also wait up to
// `hold` for more: a write per message is what a delivery costs most, and under
// load a few milliseconds buy several messages per write. A quiet thread never
// waits. Replay pages and control frames never wait: they end a hold early.
//
// One per node, shared by the hub's shards (sharded_hub.hpp): send() and deliver()
// run on their strands, at once from several threads; each outbox is shared with its
// I/O thread and the shards under a mutex (held only to append, or to swap the list
// out). A subscription's frames all come from one shard, in its order.
// One live subscription as the fan-out hands it to its I/O thread. Weak: a list does
// not keep a closed connection alive (it unsubscribes as it goes); the thread skips
// the ones gone.
struct live_delivery {
  std::weak_ptr<subscriber> who;
  std::uint64_t id;
};
// The live subscriptions of one channel on one I/O thread, immutable once built
// (channels.hpp: live_set), shared by every message until the subscriptions change.
using live_list = std::shared_ptr<const std::vector<live_delivery>>;

class fanout {
 public:
  // Runs `fn` on I/O thread `home` after `delay` (0: as soon as it can).
  using post_home_fn =
      std::function<void(std::size_t home, std::chrono::milliseconds delay, std::function<void()>)>;
  // `homes`: the number of I/O threads (subscriber::home() is below it).
  fanout(post_home_fn post, std::size_t homes, std::chrono::milliseconds hold);

  // Live frames for the subscriptions of `lists` (index: the I/O thread; null: none
  // there): one hand-over per thread, whatever the number of subscribers, each of
  // whom is reached on its own thread. Returns how many subscriptions they went to.
  std::uint64_t send(const std::vector<live_list>& lists, const frame_batch& frames);
  // Frames of one subscription (its answer, a reset, a replay page): never held.
  void deliver(std::shared_ptr<subscriber> who, std::uint64_t id, frame_batch frames, pacing p);

 private:
  struct delivery {
    std::shared_ptr<subscriber> who;
    std::uint64_t id;
  };
  struct group {
    std::vector<delivery> to;  // deliver(): one subscription
    live_list live;            // send(): a channel's subscriptions on this thread
    frame_batch frames;
    pacing p = pacing::none;
  };
  using clock = std::chrono::steady_clock;
  struct outbox {
    std::mutex mutex;
    // All guarded by mutex.
    std::vector<group> groups;
    bool posted = false;  // a drain is on its way
    bool held = false;    // … and it waits out `hold`
    bool loaded = false;  // the thread's fan-out is busy: live frames wait
    clock::time_point window_start{};
    clock::duration busy{};  // spent in drains since window_start
  };

  void queue(std::size_t home, group g, bool urgent);
  void drain(std::size_t home);  // on I/O thread `home`

  post_home_fn post_;
  std::chrono::milliseconds hold_;
  std::vector<std::unique_ptr<outbox>> outboxes_;  // sized once: never reallocated
};

}  // namespace seqcast::hub
