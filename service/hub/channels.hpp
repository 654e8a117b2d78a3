// The hub's table of channels: what it knows of each channel it serves, and who
// subscribes to it. Everything here lives on the hub strand, except the subscriber
// counts, which other threads read.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "hub/fanout.hpp"
#include "hub/subscriber.hpp"
#include "types.hpp"
#include "util/backoff.hpp"

namespace seqcast::hub {

// A channel's live subscriptions. The fan-out hands each message to every I/O thread as
// one list of that thread's subscriptions (fanout.hpp), built here once per change and
// shared by every message until the next: the hub's work per message is per thread,
// and the work per subscriber happens on the subscriber's own thread.
class live_set {
 public:
  using map = std::unordered_map<std::uint64_t, std::weak_ptr<subscriber>>;

  void add(std::uint64_t id, std::weak_ptr<subscriber> who) {
    subs_.insert_or_assign(id, std::move(who));
    lists_.clear();
  }
  void erase(std::uint64_t id) {
    if (subs_.erase(id) != 0) lists_.clear();
  }
  bool empty() const { return subs_.empty(); }
  std::size_t size() const { return subs_.size(); }
  map::const_iterator begin() const { return subs_.begin(); }
  map::const_iterator end() const { return subs_.end(); }

  // The lists by I/O thread (`homes` of them), rebuilt after a change; subscribers
  // already gone are dropped then.
  const std::vector<live_list>& by_home(std::size_t homes) {
    homes = std::max<std::size_t>(homes, 1);
    if (lists_.size() == homes) return lists_;
    std::vector<std::vector<live_delivery>> per(homes);
    for (auto it = subs_.begin(); it != subs_.end();) {
      auto s = it->second.lock();
      if (!s) {
        it = subs_.erase(it);
        continue;
      }
      per[s->home() < homes ? s->home() : 0].push_back({it->second, it->first});
      ++it;
    }
    lists_.clear();
    for (auto& l : per) {
      lists_.push_back(
          l.empty() ? nullptr : std::make_shared<const std::vector<live_delivery>>(std::move(l)));
    }
    return lists_;
  }

 private:
  map subs_;
  std::vector<live_list> lists_;  // by home; empty: to be rebuilt
};

// A subscribe that waits for its channel's head to be read.
struct pending_subscribe {
  std::uint64_t id;
  std::weak_ptr<subscriber> who;
  std::optional<storage::seq_t> since;
  std::optional<std::string> epoch;
  std::size_t grant;  // bytes the subscriber can take for its first replay page (0: none yet)
  // Already subscribed: the channel was reloaded under it (hub::reload); no second
  // `subscribed`, only a reset if its position cannot go on.
  bool moved = false;
  // A head read of the channel began after this subscribe arrived: a position beyond
  // that head names messages the database does not have (catch_up.hpp).
  bool fresh = false;
};

// A subscription replaying history; see catch_up.hpp.
struct catching_sub {
  std::weak_ptr<subscriber> who;
  storage::seq_t last = 0;  // last seq handed to it
  std::size_t grant = 0;    // bytes it can take for its next page; 0: waiting for more()
  bool reading = false;     // a cache read for it is in flight
};

struct channel_state {
  std::uint64_t generation =
      0;                       // this state's number: reads started for another drop their results
  storage::channel_id id = 0;  // row of the current epoch; 0 = no history
  std::string epoch;
  std::vector<storage::past_epoch> past;  // epochs the row left behind (rebased), oldest first
  // Set by a reload (hub::reload): the epoch and head this node knew before, so that
  // what a failover took is counted and logged once the new head is read.
  std::optional<storage::past_epoch> before_reload;
  storage::seq_t first_seq = 1;    // oldest retained, as last read from PostgreSQL
  storage::seq_t head = 0;         // last seq handed to subscribers
  storage::seq_t target = 0;       // highest seq known to exist
  bool loading = true;             // head being read from PostgreSQL
  bool fetching = false;           // a live range read is in flight (or waits to retry)
  bool filling = false;            // a replay range read is in flight (or waits to retry)
  storage::seq_t local_until = 0;  // our own commit in flight reaches this seq (of `id`)
  util::backoff retry;             // failed reads of this channel wait this out
  std::vector<storage::channel_advance> early;  // advances seen while loading
  std::vector<pending_subscribe> waiting;       // subscribes that arrive while loading
  std::vector<pending_subscribe> verifying;     // … beyond the head: read again first
  live_set subs;                                // live
  std::unordered_map<std::uint64_t, catching_sub> catching;  // replaying
  std::vector<std::uint64_t> fill_waiters;  // catching subscriptions waiting for `filling`
  std::deque<frame_ptr> ring;               // recent message frames, ending at head
  std::size_t ring_bytes = 0;

  bool idle() const {
    return subs.empty() && catching.empty() && waiting.empty() && verifying.empty() && !loading &&
           !fetching && !filling;
  }
};

// Hub strand only, except the count readers (thread-safe).
class channel_table {
 public:
  channel_state* find(const std::string& name) {
    auto it = channels_.find(name);
    return it == channels_.end() ? nullptr : &it->second;
  }
  // The channel, created (loading) when new; `created` says which.
  channel_state& get(const std::string& name, bool& created) {
    auto [it, inserted] = channels_.try_emplace(name);
    created = inserted;
    if (inserted) it->second.generation = ++generations_;
    return it->second;
  }
  // Drops the channel if nothing needs it any more. In-flight reads find it gone
  // (or replaced) and drop their results.
  void forget_if_idle(const std::string& name) {
    auto it = channels_.find(name);
    if (it != channels_.end() && it->second.idle()) channels_.erase(it);
  }
  void erase(const std::string& name) { channels_.erase(name); }
  auto begin() { return channels_.begin(); }
  auto end() { return channels_.end(); }

  // Publishes the channel's subscriber count for other threads.
  void count(const std::string& name, const channel_state& st) {
    const std::size_t n = st.subs.size() + st.catching.size();
    std::lock_guard lock(counts_mutex_);
    if (n == 0) {
      counts_.erase(name);
    } else {
      counts_[name] = n;
    }
  }
  std::size_t subscriber_count(const std::string& name) const {
    std::lock_guard lock(counts_mutex_);
    auto it = counts_.find(name);
    return it == counts_.end() ? 0 : it->second;
  }
  std::size_t channel_count() const {
    std::lock_guard lock(counts_mutex_);
    return counts_.size();
  }

 private:
  std::unordered_map<std::string, channel_state> channels_;
  std::uint64_t generations_ = 0;
  mutable std::mutex counts_mutex_;
  std::unordered_map<std::string, std::size_t> counts_;  // guarded by counts_mutex_
};

}  // namespace seqcast::hub
