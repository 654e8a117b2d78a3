// The hub: which connections subscribe to which channel, and the single sequencer that
// feeds them every message of a channel, in seq order, without gaps or duplicates.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "blocking_pool.hpp"
#include "hub/subscriber.hpp"
#include "types.hpp"

namespace seqcast::hub {

struct hub_counters {
  std::atomic<std::uint64_t> messages_ingested{0};  // messages handed to subscribers (per node)
  std::atomic<std::uint64_t> deliveries{0};         // message frames × subscribers
  std::atomic<std::uint64_t> fetches{0};            // PostgreSQL range reads by ingest
};

// Runs on its own strand (every method posts there first; all are thread-safe).
// Asio-free: the strand and timers are injected as functions.
//
// Invariants:
// - Single sequencer: per channel, `head` only moves by +1 as a message is
//   handed to subscribers, so they see seqs with no gap, in order.
// - A channel is tracked while it has subscribers on this node. Its head is
//   read from PostgreSQL when tracking starts; after that, NOTIFYs (and this
//   node's own commits) say how far it advanced, and missing ranges are read
//   back from PostgreSQL in batches.
// - NOTIFY is only a hint: after the LISTEN connection comes back, the heads
//   of all tracked channels are re-read and gaps filled.
class hub {
 public:
  using post_fn = std::function<void(std::function<void()>)>;
  using post_after_fn = std::function<void(std::chrono::milliseconds, std::function<void()>)>;

  hub(post_fn strand, post_after_fn timer, blocking_pool& pool);

  // Subscribes `who` to `channel` as subscription `id`. `who` first receives a
  // `subscribed` frame with the head at that moment (or an error frame), then
  // every later message. `since`/`epoch` request a resume (see resume docs).
  void subscribe(std::uint64_t id, std::weak_ptr<subscriber> who, std::string channel,
                 std::optional<storage::seq_t> since, std::optional<std::string> epoch);
  void unsubscribe(std::uint64_t id, std::string channel);

  // From the LISTEN connection: channels advanced.
  void on_notify(std::vector<storage::channel_advance> advances);
  // From this node's writer: messages just committed.
  void on_committed(std::vector<storage::committed_message> messages);
  // The LISTEN connection was (re)opened: anything may have been missed.
  void on_listener_connected();

  // Subscribers of `channel` on this node (thread-safe, for channel info).
  std::size_t subscriber_count(const std::string& channel) const;
  std::size_t channel_count() const;
  const hub_counters& counters() const { return counters_; }

 private:
  struct waiting_subscribe {
    std::uint64_t id;
    std::weak_ptr<subscriber> who;
  };
  struct channel_state {
    storage::channel_id id = 0;  // row of the current epoch; 0 = no history
    std::string epoch;
    storage::seq_t head = 0;     // last seq handed to subscribers
    storage::seq_t target = 0;   // highest seq known to exist
    bool loading = true;         // head being read from PostgreSQL
    bool fetching = false;       // a range read is in flight
    std::vector<storage::channel_advance> early;  // advances seen while loading
    std::vector<waiting_subscribe> waiting;      // subscribes that arrive while loading
    std::unordered_map<std::uint64_t, std::weak_ptr<subscriber>> subs;
  };

  void do_subscribe(std::uint64_t id, std::weak_ptr<subscriber> who, const std::string& channel);
  void do_unsubscribe(std::uint64_t id, const std::string& channel);
  void load(const std::string& name);
  void on_loaded(const std::string& name, storage::result<storage::channel_info> info);
  void advance(const std::string& name, const storage::channel_advance& a);
  void fetch(const std::string& name);
  void on_fetched(const std::string& name, storage::channel_id id,
                  storage::result<std::vector<storage::stored_message>> rows);
  void apply(channel_state& st, const std::string& name,
             std::vector<storage::stored_message>& rows);
  void fan_out(channel_state& st, frame_batch frames);
  void send_subscribed(channel_state& st, const std::string& name, const waiting_subscribe& w);
  void set_count(const std::string& name, std::size_t n);

  post_fn strand_;
  post_after_fn timer_;
  blocking_pool& pool_;
  hub_counters counters_;
  std::unordered_map<std::string, channel_state> channels_;  // on the strand only

  mutable std::mutex counts_mutex_;
  std::unordered_map<std::string, std::size_t> counts_;  // guarded by counts_mutex_
};

}  // namespace seqcast::hub
