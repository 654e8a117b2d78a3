// Catch-up: brings a resuming subscription from its position to the channel's head,
// page by page, then hands it to the live list.
//
// Invariants (everything here runs on the hub strand, like the rest of the hub):
// 1. A replaying subscription is never in the live list. It joins it (promote) on the
//    strand at the moment its last seq equals the head; the sequencer moves the head only
//    by handing a message to the live list on this same strand. So no message falls
//    between replay and live, and none comes twice. (This is why there is no merge of
//    buffered live frames with replayed ones: with one sequencer on one strand there is
//    nothing to merge.)
// 2. Nothing is sent without a grant: bytes the subscriber can take now. A page holds at
//    most `page_messages` frames and, past its first, at most the grant's bytes; its first
//    frame always comes, and a grant always has room for one message of
//    max_payload_bytes. So any backlog drains at the subscriber's pace, in bounded memory
//    on both sides, however big its messages.
// 3. Sources, in order: the ring of recent frames (contiguous, ending at the head), the
//    replay cache (read contiguous from last+1), then PostgreSQL: one read serves every
//    subscription waiting at or above its start, and refills the cache.
// 4. Every gap is announced before any message after it: a position of another epoch gets
//    `epoch_changed`, one below the oldest retained seq gets `truncated` with exactly the
//    range missed, one beyond what survived a failover (an epoch the row left behind)
//    gets `rewound` with the last seq that survived.
// 5. A failed read is retried after the channel's backoff; the subscription keeps its place.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hub/channels.hpp"
#include "hub/counters.hpp"
#include "hub/fanout.hpp"
#include "hub/history.hpp"

namespace seqcast::hub {

// What a subscribe with `since`/`epoch` needs, decided from the channel alone.
struct resume_decision {
  enum class kind { live, replay };
  kind action = kind::live;
  storage::seq_t after = 0;        // the last seq the subscription holds (after any reset)
  std::string_view reset;          // "", "epoch_changed", "truncated" or "rewound"
  storage::seq_t reset_after = 0;  // the position the reset is about ("rewound": R)
};
// The last seq of `epoch` that is still the same message in the channel's current
// epoch, when `epoch` is one the row left behind at a failover (rebased); nullopt for
// any other epoch.
std::optional<storage::seq_t> survived(const channel_state& st, std::string_view epoch);
// `fresh`: the head was read from PostgreSQL after the subscribe arrived (a position
// beyond it in the current epoch is then told `rewound` to the head: the database lost
// what it names, or never had it).
resume_decision decide_resume(const channel_state& st, std::optional<storage::seq_t> since,
                              const std::optional<std::string>& epoch, bool fresh = false);
// Whether a subscribe is for a position beyond every seq this node knows of, in the
// current epoch: the head must be read again before it can be answered.
bool beyond_head(const channel_state& st, const pending_subscribe& p);

class catch_up {
 public:
  using post_after_fn = std::function<void(std::chrono::milliseconds, std::function<void()>)>;

  // `channels`, `history`, `out` and `counters` outlive this object.
  catch_up(channel_table& channels, history& history, fanout& out, hub_counters& counters,
           post_after_fn timer, std::size_t page_messages);

  // Starts subscription `p` on the loaded channel `name`: sends `subscribed` (and a
  // reset if its position cannot be resumed), then puts it live or replays.
  void start(channel_state& st, const std::string& name, const pending_subscribe& p);
  // The subscriber has room for `grant` more bytes of subscription `id`.
  void more(const std::string& name, std::uint64_t id, std::size_t grant);
  // The channel began a new incarnation (the sequencer reset its head to 0):
  // every replaying subscription is told and starts over.
  void restart(channel_state& st, const std::string& name);

 private:
  void next(const std::string& name, std::uint64_t id);
  // Read results name the channel row and state they were read for (`gen`: see
  // channel_state::generation); a result for another is dropped.
  void on_cache_page(const std::string& name, std::uint64_t id, storage::channel_id chan,
                     std::uint64_t gen, rows_result rows);
  void fill(const std::string& name, std::uint64_t id);
  void on_filled(const std::string& name, storage::channel_id chan, std::uint64_t gen,
                 storage::seq_t after, rows_result rows);
  // Sends frames[from…] (which begin at c.last + 1) as far as the grant reaches;
  // returns how many it sent.
  std::size_t send_page(channel_state& st, std::uint64_t id, catching_sub& c,
                        const std::vector<frame_ptr>& frames, std::size_t from);
  void promote(channel_state& st, std::uint64_t id);

  channel_table& channels_;
  fanout& out_;
  history& history_;
  hub_counters& counters_;
  post_after_fn timer_;
  std::size_t page_messages_;
};

}  // namespace seqcast::hub
