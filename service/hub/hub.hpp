// The hub: which connections subscribe to which channel, and the single sequencer that
// feeds them every message in seq order. Resume lives next door, in catch_up.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hub/catch_up.hpp"
#include "hub/channels.hpp"
#include "hub/counters.hpp"
#include "hub/fanout.hpp"
#include "hub/history.hpp"
#include "hub/subscriber.hpp"
#include "types.hpp"
#include "util/backoff.hpp"

namespace seqcast::hub {

struct hub_limits {
  std::size_t page_messages = 500;   // messages per replay page (bytes: the subscriber's grant)
  std::size_t ring_messages = 1024;  // recent encoded frames kept per channel
  std::size_t ring_bytes = 1 << 20;  // … and their bytes per channel
  storage::page_limit fetch{1000, 4 << 20};  // one live range read from PostgreSQL
  // How long live frames may wait for more while an I/O thread is loaded
  // (fanout.hpp: never on a quiet one); 0: never.
  std::chrono::milliseconds coalesce{0};
  std::size_t homes = 1;  // I/O threads (subscriber::home() is below it)
};

// What the shards of a node share (sharded_hub.hpp): the counters, and the fan-out
// into the I/O threads, so that each thread has one outbox, one post when it was
// empty and one measure of its load, whichever shards feed it.
struct hub_shared {
  hub_counters& counters;
  fanout& out;
};

// Runs on its own strand (every public method posts there first; all are
// thread-safe). Asio-free: the strand and a timer are injected as functions.
//
// Invariants:
// - Single sequencer: per channel, `head` only moves by +1 as a message is
//   handed to the live subscribers, so they see seqs with no gap, in order.
// - Cache before hub: a message is written to the replay cache before any
//   subscriber sees it, so whatever was seen live can be resumed here.
// - A channel is tracked while it has subscribers. Its head is read from
//   PostgreSQL when tracking starts; NOTIFYs (and this node's own commits)
//   then say how far it advanced, and missing ranges are read back.
// - NOTIFY is only a hint: after the LISTEN connection comes back, the heads
//   of all tracked channels are re-read (retried until it succeeds) and gaps filled.
// - A failed read is never the end: head loads, live range reads and replay reads
//   are retried with backoff while anyone waits for them.
// - A failover to a standby that lacked the last commits rebases channels onto a new
//   epoch (storage/timeline.hpp). The hub then reloads them: each state starts over
//   from a fresh head read with its subscriptions moved in, and a position beyond what
//   survived gets `rewound`. Reads started for a replaced state drop their results.
// - A subscribe beyond every seq this node knows of (in the current epoch) is answered
//   only after a head read that began after it: a NOTIFY on its way, or a loss (`rewound`).
// - Resume: see catch_up.hpp. The hub calls into it; it never calls back.
class hub {
 public:
  using post_fn = std::function<void(std::function<void()>)>;
  using post_after_fn = std::function<void(std::chrono::milliseconds, std::function<void()>)>;
  // Runs a function on I/O thread `home` (see subscriber::home()) after a delay.
  using post_home_fn = fanout::post_home_fn;

  // A hub of its own, with its own counters and fan-out (`home` reaches the I/O
  // threads). `history` calls back on `strand` and outlives the hub.
  hub(post_fn strand, post_after_fn timer, post_home_fn home, history& history,
      hub_limits limits = {});
  // A shard of the node's sharded_hub: counters and fan-out shared with the other
  // shards (they outlive it). `limits.homes` and `limits.coalesce` are the fan-out's.
  hub(post_fn strand, post_after_fn timer, history& history, hub_limits limits, hub_shared shared);

  // Subscribes `who` to `channel` as subscription `id`: it first receives a
  // `subscribed` frame with the head at that moment; with `since`, then a
  // `reset` if that position cannot be resumed, then every message after it,
  // paced by grants (`grant` bytes now; more with more()); without, every
  // message after the head.
  void subscribe(std::uint64_t id, std::weak_ptr<subscriber> who, std::string channel,
                 std::optional<storage::seq_t> since, std::optional<std::string> epoch,
                 std::size_t grant);
  void unsubscribe(std::uint64_t id, std::string channel);
  // The subscriber can take `grant` more bytes of replay for subscription `id`.
  void more(std::uint64_t id, std::string channel, std::size_t grant);

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
  // The database came back on another server timeline (a failover): the cache may hold
  // messages it lost, and every channel is read again (storage/timeline.hpp). Counted by
  // the caller (timeline_changes): the sharded hub calls every shard for one change.
  void on_timeline_changed();

  // Subscribers of `channel` on this node (thread-safe, for channel info).
  std::size_t subscriber_count(const std::string& channel) const;
  std::size_t channel_count() const;
  const hub_counters& counters() const { return counters_; }

 private:
  void do_subscribe(pending_subscribe p, const std::string& channel);
  void do_unsubscribe(std::uint64_t id, const std::string& channel);
  // A subscribe beyond every seq this node knows of: the head is read again first.
  void verify_head(pending_subscribe p, const std::string& channel);
  void reread_for(const std::string& channel, std::uint64_t id);
  void load(const std::string& name);
  void on_loaded(const std::string& name, std::uint64_t gen,
                 storage::result<storage::channel_info> info);
  // Starts the channel over from a fresh head read, its subscriptions moved into the new
  // state where they stand (their positions resume there, or get a reset).
  void reload(const std::string& name);
  channel_state& renew(const std::string& name);
  void reload_all();
  void reread_heads(std::uint64_t generation);
  void advance(const std::string& name, const storage::channel_advance& a);
  void new_incarnation(channel_state& st, const std::string& name,
                       const storage::channel_advance& a);
  void fetch(const std::string& name);
  void on_fetched(const std::string& name, storage::channel_id id, std::uint64_t gen,
                  rows_result rows);
  void apply(channel_state& st, const std::string& name,
             std::vector<storage::stored_message>& rows);
  // Hands frames to the live subscribers (fanout.hpp).
  void fan_out(channel_state& st, std::vector<frame_ptr> frames);
  void remember(channel_state& st, const frame_ptr& f);

  post_fn strand_;
  post_after_fn timer_;
  history& history_;
  hub_limits limits_;
  std::unique_ptr<hub_counters> own_counters_;  // when not shared
  std::unique_ptr<fanout> own_fanout_;          // when not shared
  hub_counters& counters_;
  fanout& fanout_;
  channel_table channels_;              // on the strand only (counts: any thread)
  catch_up catch_up_;                   // on the strand only
  std::uint64_t heads_generation_ = 0;  // one re-read of heads per listener connect
  util::backoff heads_retry_;
};

}  // namespace seqcast::hub
