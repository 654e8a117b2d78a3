// Replay pacing on the connection's side: how many bytes of history the hub may send
// it at once (grants), so that a replay never outruns the connection's send queue.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "hub/subscriber.hpp"

namespace seqcast::session {

// Not thread-safe: owned by one connection, on its I/O thread.
//
// At most half of the send queue's bound is granted at once, in grants of at least
// `min_grant` (room for one largest message): asked when the queue is at low water
// (a quarter), so queued history never passes three quarters of the bound, whatever
// the messages' size and however many subscriptions replay at once. Subscriptions
// that ask while none is free wait their turn in order.
class replay_credit {
 public:
  replay_credit(std::size_t queue_limit, std::size_t min_grant)
      : total_(std::max(queue_limit / 2, min_grant)),
        grant_(std::max(min_grant, total_ / 3)),
        min_grant_(min_grant) {}

  // The grant to send with the subscribe of a replaying subscription `id` (0: none
  // free now; the hub then asks for one, and it waits its turn).
  std::size_t open(std::uint64_t id, bool replays) {
    if (!replays) return 0;
    return take(id);
  }

  // A delivery with pacing `p` arrived for subscription `id`.
  void on_delivery(std::uint64_t id, hub::pacing p) {
    if (p == hub::pacing::none) return;
    release(id);
    if (p == hub::pacing::want_more) {
      if (asked_.insert(id).second) waiting_.push_back(id);
    } else {
      asked_.erase(id);
    }
  }

  // The subscription ended: what it held is free again.
  void close(std::uint64_t id) {
    release(id);
    asked_.erase(id);
  }

  bool anyone_waiting() const { return !asked_.empty(); }

  // Grants to waiting subscriptions, in order, while credit lasts: give(id, bytes).
  // Call when the send queue is at low water.
  template <class Give>
  void grant_waiting(Give&& give) {
    while (!waiting_.empty()) {
      const std::uint64_t id = waiting_.front();
      if (!asked_.contains(id)) {  // closed or caught up since it asked
        waiting_.pop_front();
        continue;
      }
      const std::size_t g = take(id);
      if (g == 0) return;
      waiting_.pop_front();
      asked_.erase(id);
      give(id, g);
    }
  }

  std::size_t outstanding() const { return outstanding_; }

 private:
  std::size_t take(std::uint64_t id) {
    const std::size_t free = total_ - outstanding_;
    if (free < min_grant_) return 0;
    const std::size_t g = std::min(grant_, free);
    outstanding_ += g;
    held_[id] += g;
    return g;
  }

  void release(std::uint64_t id) {
    auto it = held_.find(id);
    if (it == held_.end()) return;
    outstanding_ -= it->second;
    held_.erase(it);
  }

  std::size_t total_;
  std::size_t grant_;
  std::size_t min_grant_;
  std::size_t outstanding_ = 0;
  std::unordered_map<std::uint64_t, std::size_t> held_;  // grants not yet used, by subscription
  std::unordered_set<std::uint64_t> asked_;              // waiting for a grant
  std::deque<std::uint64_t> waiting_;                    // … in the order they asked
};

}  // namespace seqcast::session
