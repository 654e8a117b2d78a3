// The hub: which connections subscribe to which channel, the single sequencer that
// feeds them every message in seq order, and resume (replay → live without a gap).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "blocking_pool.hpp"
#include "hub/subscriber.hpp"
#include "metrics/histogram.hpp"
#include "rocksdb_replay_cache.hpp"
#include "types.hpp"

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
  // Commit → handed to subscribers, per live message (includes NOTIFY and fetch).
  metrics::histogram delivery_lag_seconds{
      {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
};

struct hub_limits {
  std::size_t page_messages = 500;   // messages per replay page
  std::size_t ring_messages = 1024;  // recent encoded frames kept per channel
  std::size_t ring_bytes = 1 << 20;  // … and their bytes per channel
  // Live messages wait up to this long for more of their channel, so each
  // connection gets them in one write: a write costs far more than a frame.
  std::chrono::milliseconds coalesce{0};
};

// Runs on its own strand (every public method posts there first; all are
// thread-safe). Asio-free: the strand and a timer are injected as functions.
//
// Invariants:
// - Single sequencer: per channel, `head` only moves by +1 as a message is
//   handed to subscribers, so they see seqs with no gap, in order.
// - Cache before hub: a message is written to the replay cache before any
//   subscriber sees it, so whatever was seen live can be resumed here.
// - A channel is tracked while it has subscribers. Its head is read from
//   PostgreSQL when tracking starts; NOTIFYs (and this node's own commits)
//   then say how far it advanced, and missing ranges are read back.
// - NOTIFY is only a hint: after the LISTEN connection comes back, the heads
//   of all tracked channels are re-read and gaps filled.
// - Resume: a subscription with `since` catches up page by page (ring, then
//   RocksDB, then PostgreSQL, which refills the cache once for all waiting
//   subscribers) and joins the live list on the strand the moment it reaches
//   the head, so nothing falls between replay and live.
class hub {
 public:
  using post_fn = std::function<void(std::function<void()>)>;
  using post_after_fn = std::function<void(std::chrono::milliseconds, std::function<void()>)>;
  // Runs a function on I/O thread `home` (see subscriber::home()).
  using post_home_fn = std::function<void(std::size_t home, std::function<void()>)>;

  hub(post_fn strand, post_after_fn timer, post_home_fn home, blocking_pool& pool,
      storage::rocksdb_replay_cache* cache, hub_limits limits = {});

  // Subscribes `who` to `channel` as subscription `id`: it first receives a
  // `subscribed` frame with the head at that moment (or an error frame); with
  // `since`, then a `reset` if that position cannot be resumed, then every
  // message after it; without, every message after the head.
  void subscribe(std::uint64_t id, std::weak_ptr<subscriber> who, std::string channel,
                 std::optional<storage::seq_t> since, std::optional<std::string> epoch);
  void unsubscribe(std::uint64_t id, std::string channel);
  // The subscriber has room for the next replay page of subscription `id`.
  void more(std::uint64_t id, std::string channel);

  // From the LISTEN connection: channels advanced.
  void on_notify(std::vector<storage::channel_advance> advances);
  // From this node's writer: messages just committed.
  void on_committed(std::vector<storage::committed_message> messages);
  // From this node's writer, before its COMMIT: these heads are about to exist
  // and will arrive through on_committed (`expected`), or will not after all.
  // While expected, their NOTIFY does not trigger a read back.
  void on_local(std::vector<storage::channel_advance> advances, bool expected);
  // The LISTEN connection was (re)opened: anything may have been missed.
  void on_listener_connected();

  // Subscribers of `channel` on this node (thread-safe, for channel info).
  std::size_t subscriber_count(const std::string& channel) const;
  std::size_t channel_count() const;
  const hub_counters& counters() const { return counters_; }

 private:
  struct pending {
    std::uint64_t id;
    std::weak_ptr<subscriber> who;
    std::optional<storage::seq_t> since;
    std::optional<std::string> epoch;
  };
  struct catch_up {
    std::weak_ptr<subscriber> who;
    storage::seq_t last = 0;    // last seq handed to it
    bool reading = false;       // a cache read is in flight
    bool waiting_more = false;  // a page was sent; waiting for more()
  };
  struct channel_state {
    storage::channel_id id = 0;  // row of the current epoch; 0 = no history
    std::string epoch;
    storage::seq_t first_seq = 1;    // oldest retained, as last read from PostgreSQL
    storage::seq_t head = 0;         // last seq handed to subscribers
    storage::seq_t target = 0;       // highest seq known to exist
    bool loading = true;             // head being read from PostgreSQL
    bool fetching = false;           // a live range read is in flight
    bool filling = false;            // a replay range read is in flight
    storage::seq_t local_until = 0;  // our own commit in flight reaches this seq (of `id`)
    std::vector<storage::channel_advance> early;  // advances seen while loading
    std::vector<pending> waiting;                 // subscribes that arrive while loading
    std::unordered_map<std::uint64_t, std::weak_ptr<subscriber>> subs;  // live
    std::unordered_map<std::uint64_t, catch_up> catching;               // resuming
    std::vector<std::uint64_t> fill_waiters;
    std::deque<frame_ptr> ring;  // recent message frames, ending at head
    std::size_t ring_bytes = 0;
    std::vector<frame_ptr> unsent;  // live frames waiting out the coalescing window
  };

  void do_subscribe(pending p, const std::string& channel);
  void start(channel_state& st, const std::string& name, const pending& p);
  void do_unsubscribe(std::uint64_t id, const std::string& channel);
  void load(const std::string& name);
  void on_loaded(const std::string& name, storage::result<storage::channel_info> info);
  void advance(const std::string& name, const storage::channel_advance& a);
  void new_incarnation(channel_state& st, const std::string& name,
                       const storage::channel_advance& a);
  void fetch(const std::string& name);
  void on_fetched(const std::string& name, storage::channel_id id,
                  storage::result<std::vector<storage::stored_message>> rows);
  void apply(channel_state& st, const std::string& name,
             std::vector<storage::stored_message>& rows);
  // Hands frames to the live subscribers, now or at the end of the coalescing window.
  void fan_out(channel_state& st, const std::string& name, std::vector<frame_ptr> frames);
  void send_unsent(channel_state& st);
  void send_all_unsent();
  void remember(channel_state& st, const frame_ptr& f);

  // The channel and its catching-up subscription `id`, if both still exist.
  std::pair<channel_state*, catch_up*> find_catch_up(const std::string& name, std::uint64_t id);
  void replay_next(const std::string& name, std::uint64_t id);
  void on_cache_page(const std::string& name, std::uint64_t id, storage::channel_id chan,
                     storage::result<std::vector<storage::stored_message>> rows);
  void fill(const std::string& name, std::uint64_t id);
  void on_filled(const std::string& name, storage::channel_id chan, storage::seq_t after,
                 storage::result<std::vector<storage::stored_message>> rows);
  void send_page(channel_state& st, std::uint64_t id, catch_up& c, std::vector<frame_ptr> frames);
  void send_reset(channel_state& st, const std::string& name, std::uint64_t id, subscriber& s,
                  std::string_view reason, storage::seq_t after);
  void promote(channel_state& st, std::uint64_t id);
  frame_ptr encode(const channel_state& st, const std::string& name,
                   const storage::stored_message& m) const;
  void forget_if_idle(const std::string& name);
  // Runs read(db) on the blocking pool, then done(result) back on the strand.
  template <class Read, class Done>
  void off_strand(Read read, Done done);
  void set_count(const std::string& name, const channel_state& st);

  post_fn strand_;
  post_after_fn timer_;
  post_home_fn post_home_;
  blocking_pool& pool_;
  storage::rocksdb_replay_cache* cache_;  // may be null (no cache)
  hub_limits limits_;
  hub_counters counters_;
  std::unordered_map<std::string, channel_state> channels_;  // on the strand only
  std::vector<std::string> unsent_channels_;                 // channels with unsent frames
  bool send_armed_ = false;                                  // the coalescing timer runs

  mutable std::mutex counts_mutex_;
  std::unordered_map<std::string, std::size_t> counts_;  // guarded by counts_mutex_
};

}  // namespace seqcast::hub
