// The hub: subscriptions per channel, and the single sequencer that feeds them.
#include "hub/hub.hpp"

#include <algorithm>

#include "hub/encode.hpp"
#include "log.hpp"

namespace seqcast::hub {

hub::hub(post_fn strand, post_after_fn timer, post_home_fn home, history& history,
         hub_limits limits)
    : strand_(std::move(strand)),
      timer_(timer),
      history_(history),
      limits_(limits),
      own_counters_(std::make_unique<hub_counters>()),
      own_fanout_(std::make_unique<fanout>(std::move(home), limits.homes, limits.coalesce)),
      counters_(*own_counters_),
      fanout_(*own_fanout_),
      catch_up_(channels_, history_, fanout_, counters_, std::move(timer), limits.page_messages) {}

hub::hub(post_fn strand, post_after_fn timer, history& history, hub_limits limits,
         hub_shared shared)
    : strand_(std::move(strand)),
      timer_(timer),
      history_(history),
      limits_(limits),
      counters_(shared.counters),
      fanout_(shared.out),
      catch_up_(channels_, history_, fanout_, counters_, std::move(timer), limits.page_messages) {}

// ---- public entry points: post to the strand ----

void hub::subscribe(std::uint64_t id, std::weak_ptr<subscriber> who, std::string channel,
                    std::optional<storage::seq_t> since, std::optional<std::string> epoch,
                    std::size_t grant) {
  strand_([this, p = pending_subscribe{id, std::move(who), since, std::move(epoch), grant},
           channel = std::move(channel)]() mutable { do_subscribe(std::move(p), channel); });
}

void hub::unsubscribe(std::uint64_t id, std::string channel) {
  strand_([this, id, channel = std::move(channel)] { do_unsubscribe(id, channel); });
}

void hub::more(std::uint64_t id, std::string channel, std::size_t grant) {
  strand_([this, id, channel = std::move(channel), grant] { catch_up_.more(channel, id, grant); });
}

void hub::on_notify(std::vector<storage::channel_advance> advances) {
  strand_([this, advances = std::move(advances)] {
    for (const auto& a : advances) advance(a.name, a);
  });
}

void hub::on_committed(std::vector<storage::committed_message> messages) {
  strand_([this, messages = std::move(messages)]() mutable {
    // Group by channel (a commit lists each channel's messages in seq order).
    std::unordered_map<std::string, std::vector<storage::committed_message*>> by_channel;
    for (auto& m : messages) by_channel[m.name].push_back(&m);
    std::vector<std::pair<storage::channel_id, std::vector<storage::stored_message>>> unserved;
    for (auto& [name, ms] : by_channel) {
      const auto& first = *ms.front();
      const auto& last = *ms.back();
      std::vector<storage::stored_message> rows;
      rows.reserve(ms.size());
      for (auto* m : ms) rows.push_back(std::move(m->message));
      auto* st = channels_.find(name);
      if (!st) {
        // Not served here yet: keep them for a resume on this node.
        if (history_.cached()) unserved.emplace_back(first.channel, std::move(rows));
        continue;
      }
      if (st->local_until <= rows.back().seq) st->local_until = 0;  // what we expected is here
      // Our own messages go straight out when they are next in line; else
      // they only raise the target, and the range read fetches them.
      if (st->loading || st->id != first.channel || st->epoch != first.epoch ||
          rows.front().seq != st->head + 1) {
        advance(name, {last.channel, name, last.epoch, rows.back().seq});
      } else {
        apply(*st, name, rows);
      }
    }
    // One write for all of them: a commit may span a thousand channels.
    if (!unserved.empty()) history_.remember(std::move(unserved));
  });
}

void hub::on_local(std::vector<storage::channel_advance> advances, bool expected) {
  strand_([this, advances = std::move(advances), expected] {
    for (const auto& a : advances) {
      auto* st = channels_.find(a.name);
      if (!st || st->loading || st->id != a.id) continue;
      if (expected) {
        st->local_until = std::max(st->local_until, a.to_seq);
      } else {
        st->local_until = 0;
        if (st->target > st->head) fetch(a.name);
      }
    }
  });
}

void hub::on_timeline_changed() {
  strand_([this] { reload_all(); });
}

void hub::on_listener_connected() {
  strand_([this] {
    heads_retry_.reset();
    reread_heads(++heads_generation_);
  });
}

// While the listener was away, NOTIFYs were lost: read every tracked head again,
// until it succeeds (a newer connect of the listener takes over). Live NOTIFYs
// keep filling gaps meanwhile.
void hub::reread_heads(std::uint64_t generation) {
  if (generation != heads_generation_) return;
  std::vector<std::string> names;
  for (const auto& [name, st] : channels_)
    if (!st.loading) names.push_back(name);
  if (names.empty()) return;
  history_.heads(names, [this, generation](storage::result<std::vector<storage::channel_info>> r) {
    if (generation != heads_generation_) return;
    if (!r) {
      const auto delay = heads_retry_.next();
      log::warn("hub", "re-reading heads failed error=\"{}\" retry_in_ms={}", r.err().message,
                delay.count());
      counters_.read_retries.fetch_add(1, std::memory_order_relaxed);
      timer_(delay, [this, generation] { reread_heads(generation); });
      return;
    }
    heads_retry_.reset();
    for (const auto& c : r.value()) {
      auto* st = channels_.find(c.name);
      if (st && st->id == c.id && st->epoch == c.epoch) {
        // The same epoch, but behind what this node handed out: the database lost it
        // without a timeline to say so. Start over: every position beyond is told.
        if (c.last_seq < st->head) {
          reload(c.name);
          continue;
        }
        st->first_seq = std::max(st->first_seq, c.first_seq);
      }
      advance(c.name, {c.id, c.name, c.epoch, c.last_seq});
    }
  });
}

std::size_t hub::subscriber_count(const std::string& channel) const {
  return channels_.subscriber_count(channel);
}

std::size_t hub::channel_count() const { return channels_.channel_count(); }

// ---- subscriptions ----

void hub::do_subscribe(pending_subscribe p, const std::string& channel) {
  bool created = false;
  auto& st = channels_.get(channel, created);
  if (st.loading) {
    st.waiting.push_back(std::move(p));
    if (created) load(channel);
    return;
  }
  if (!p.fresh && beyond_head(st, p)) return verify_head(std::move(p), channel);
  catch_up_.start(st, channel, p);
}

// A position beyond the head this node knows: another node may have delivered a
// newer message whose NOTIFY is still on its way here, or the database lost it in a
// failover. Only a head read after the subscribe arrived can tell.
void hub::verify_head(pending_subscribe p, const std::string& channel) {
  auto& st = *channels_.find(channel);
  const std::uint64_t id = p.id;
  st.verifying.push_back(std::move(p));
  reread_for(channel, id);
}

void hub::reread_for(const std::string& channel, std::uint64_t id) {
  history_.head(channel, [this, channel, id, gen = channels_.find(channel)->generation](
                             storage::result<storage::channel_info> info) {
    auto* st = channels_.find(channel);
    if (!st || st->generation != gen) return;  // reloaded: it was moved to `waiting`
    auto it = std::find_if(st->verifying.begin(), st->verifying.end(),
                           [id](const pending_subscribe& w) { return w.id == id; });
    if (it == st->verifying.end()) return;  // unsubscribed meanwhile
    if (!info && info.err().code != storage::errc::not_found) {
      // No answer now: it waits, unanswered, and the read is retried after the backoff.
      const auto delay = st->retry.next();
      counters_.read_retries.fetch_add(1, std::memory_order_relaxed);
      return timer_(delay, [this, channel, id, gen] {
        auto* again = channels_.find(channel);
        if (again && again->generation == gen) reread_for(channel, id);
      });
    }
    pending_subscribe asked = std::move(*it);
    st->verifying.erase(it);
    asked.fresh = true;
    if (info) {
      const auto& c = info.value();
      advance(channel, {c.id, c.name, c.epoch, c.last_seq});  // may reload the channel
    }
    do_subscribe(std::move(asked), channel);
  });
}

void hub::do_unsubscribe(std::uint64_t id, const std::string& channel) {
  auto* st = channels_.find(channel);
  if (!st) return;
  st->subs.erase(id);
  st->catching.erase(id);
  std::erase_if(st->waiting, [id](const pending_subscribe& w) { return w.id == id; });
  std::erase_if(st->verifying, [id](const pending_subscribe& w) { return w.id == id; });
  channels_.count(channel, *st);
  channels_.forget_if_idle(channel);
}

void hub::load(const std::string& name) {
  auto& st = *channels_.find(name);
  // The head read begins after these asked (one that asks later may name a seq the
  // read predates: it is checked again, see verify_head).
  for (auto& w : st.waiting) w.fresh = true;
  history_.head(name,
                [this, name, gen = st.generation](storage::result<storage::channel_info> info) {
                  on_loaded(name, gen, std::move(info));
                });
}

channel_state& hub::renew(const std::string& name) {
  channel_state old = std::move(*channels_.find(name));
  channels_.erase(name);
  bool created = false;
  auto& st = channels_.get(name, created);
  // Live subscriptions hold everything up to the head, replaying ones up to their last.
  std::optional<std::string> epoch;
  if (old.id != 0) epoch = old.epoch;
  for (const auto& [id, who] : old.subs) {
    st.waiting.push_back({id, who, old.head, epoch, 0, true});
  }
  for (auto& [id, c] : old.catching) {
    st.waiting.push_back({id, std::move(c.who), c.last, epoch, c.grant, true});
  }
  for (auto& w : old.waiting) st.waiting.push_back(std::move(w));
  for (auto& w : old.verifying) st.waiting.push_back(std::move(w));
  if (old.id != 0 && !old.loading) st.before_reload = storage::past_epoch{old.epoch, old.head};
  return st;
}

void hub::reload(const std::string& name) {
  log::info("hub",
            "channel history changed under this node (a failover); reading it again channel={}",
            name);
  renew(name);
  load(name);
}

void hub::reload_all() {
  // Nothing read before may be served again: the new primary may lack some of it.
  if (history_.cached()) history_.forget_all();
  std::vector<std::string> names;
  for (const auto& [name, st] : channels_) names.push_back(name);
  if (!names.empty())
    log::warn("hub",
              "the database is on another timeline (a failover); replay cache emptied, "
              "reading every channel again channels={}",
              names.size());
  std::vector<std::pair<std::string, std::uint64_t>> renewed;
  for (const auto& name : names) {
    auto& st = renew(name);
    for (auto& w : st.waiting) w.fresh = true;  // the read below begins after they asked
    renewed.emplace_back(name, st.generation);
  }
  ++heads_generation_;  // a head re-read in flight is for the replaced states
  if (renewed.empty()) return;
  // One read for all of them; a failure falls back to each channel's own, retried.
  history_.heads(names, [this, renewed](storage::result<std::vector<storage::channel_info>> r) {
    std::unordered_map<std::string, storage::channel_info*> found;
    if (r) {
      for (auto& c : r.value()) found[c.name] = &c;
    }
    for (const auto& [name, gen] : renewed) {
      auto* st = channels_.find(name);
      if (!st || st->generation != gen) continue;
      if (!r) {
        load(name);
      } else if (auto it = found.find(name); it != found.end()) {
        on_loaded(name, gen, std::move(*it->second));
      } else {
        on_loaded(name, gen, storage::error{storage::errc::not_found, "channel not found"});
      }
    }
  });
}

void hub::on_loaded(const std::string& name, std::uint64_t gen,
                    storage::result<storage::channel_info> info) {
  auto* found = channels_.find(name);
  if (!found || found->generation != gen) return;  // replaced: its own read is under way
  auto& st = *found;
  if (!info && info.err().code != storage::errc::not_found) {
    // The subscribers wait (they have no answer yet) while the read is retried.
    const auto delay = st.retry.next();
    log::warn("hub", "reading channel head failed channel={} error=\"{}\" retry_in_ms={}", name,
              info.err().message, delay.count());
    counters_.read_retries.fetch_add(1, std::memory_order_relaxed);
    timer_(delay, [this, name, gen] {
      auto* again = channels_.find(name);
      if (!again || again->generation != gen) return;
      if (again->waiting.empty()) return channels_.erase(name);  // nobody waits any more
      load(name);
    });
    return;
  }
  st.retry.reset();
  if (info) {
    st.id = info.value().id;
    st.epoch = info.value().epoch;
    st.past = std::move(info.value().past);
    st.first_seq = info.value().first_seq;
    st.head = st.target = info.value().last_seq;
  }
  st.loading = false;
  if (auto before = std::exchange(st.before_reload, std::nullopt); before && info) {
    // What a failover took from this channel, as far as this node had seen it.
    // (The same epoch lower: a database that lost it without a timeline to say so.)
    const auto r = before->epoch == st.epoch ? std::optional(st.head) : survived(st, before->epoch);
    if (r && *r < before->rewound_to) {
      counters_.rewinds.fetch_add(1, std::memory_order_relaxed);
      counters_.rewound_messages.fetch_add(static_cast<std::uint64_t>(before->rewound_to - *r),
                                           std::memory_order_relaxed);
      log::warn("hub",
                "channel rewound by a failover: the database lost messages this node had seen "
                "channel={} epoch={} seen_head={} rewound_to={} lost={} new_epoch={}",
                name, before->epoch, before->rewound_to, *r, before->rewound_to - *r, st.epoch);
    }
  }
  auto waiting = std::move(st.waiting);
  st.waiting.clear();
  for (auto& w : waiting) {
    if (!w.fresh && beyond_head(st, w)) {
      verify_head(std::move(w), name);
    } else {
      catch_up_.start(st, name, w);
    }
  }
  auto early = std::move(st.early);
  st.early.clear();
  for (const auto& a : early) advance(name, a);
  channels_.forget_if_idle(name);
}

// ---- live ingest ----

void hub::advance(const std::string& name, const storage::channel_advance& a) {
  auto* found = channels_.find(name);
  if (!found) return;
  auto& st = *found;
  if (st.loading) {
    st.early.push_back(a);
    return;
  }
  if (a.id < st.id) return;  // an older incarnation's news
  if (a.id > st.id) {
    new_incarnation(st, name, a);
  } else if (a.epoch != st.epoch) {
    return reload(name);  // the row was rebased after a failover: find out how far back
  }
  st.target = std::max(st.target, a.to_seq);
  // Our own commit in flight will hand these over itself: no read back.
  if (st.target > st.head && st.target > st.local_until) fetch(name);
}

void hub::new_incarnation(channel_state& st, const std::string& name,
                          const storage::channel_advance& a) {
  // The first publish, or a re-creation after DELETE: seqs start at 1 again.
  const storage::channel_id old_id = st.id;
  st.id = a.id;
  st.epoch = a.epoch;
  st.past.clear();
  st.head = st.target = 0;
  st.local_until = 0;
  st.first_seq = 1;
  st.ring.clear();
  st.ring_bytes = 0;
  if (old_id == 0) return;  // subscribers saw no history: nothing to reset
  // The old incarnation's last frames are in the fan-out's FIFO ahead of the reset.
  if (history_.cached()) history_.forget(old_id);
  for (auto& [id, who] : st.subs) {
    if (auto s = who.lock()) {
      counters_.resets.fetch_add(1, std::memory_order_relaxed);
      fanout_.deliver(s, id, batch_of({reset_frame(st, name, "epoch_changed", 0)}), pacing::none);
    }
  }
  catch_up_.restart(st, name);
}

void hub::fetch(const std::string& name) {
  auto& st = *channels_.find(name);
  if (st.fetching) return;
  st.fetching = true;
  counters_.fetches.fetch_add(1, std::memory_order_relaxed);
  history_.read_log(st.id, st.head, st.target, limits_.fetch,
                    [this, name, id = st.id, gen = st.generation](rows_result rows) {
                      on_fetched(name, id, gen, std::move(rows));
                    });
}

void hub::on_fetched(const std::string& name, storage::channel_id id, std::uint64_t gen,
                     rows_result rows) {
  auto* found = channels_.find(name);
  if (!found || found->generation != gen) return;  // replaced: its own reads go on
  auto& st = *found;
  if (!rows && st.id == id && !(st.subs.empty() && st.catching.empty())) {
    const auto delay = st.retry.next();
    log::warn("hub", "reading messages failed channel={} error=\"{}\" retry_in_ms={}", name,
              rows.err().message, delay.count());
    counters_.read_retries.fetch_add(1, std::memory_order_relaxed);
    // `fetching` stays set until then: the channel is kept, and no other read starts.
    timer_(delay, [this, name, gen] {
      auto* again = channels_.find(name);
      if (!again || again->generation != gen) return;
      again->fetching = false;
      if (again->target > again->head && !(again->subs.empty() && again->catching.empty())) {
        return fetch(name);
      }
      channels_.forget_if_idle(name);
    });
    return;
  }
  st.fetching = false;
  if (st.subs.empty() && st.catching.empty()) return channels_.forget_if_idle(name);
  if (st.id != id) {  // the incarnation changed while we read
    if (st.target > st.head) fetch(name);
    return;
  }
  st.retry.reset();
  auto& got = rows.value();
  if (got.empty() || got.front().seq > st.head + 1) {
    // Gone from the table before we read it (trimmed, or the channel deleted):
    // live subscribers learn exactly what they missed, then continue.
    const storage::seq_t first = got.empty() ? st.target + 1 : got.front().seq;
    log::warn("hub", "messages missing channel={} after={} first={}", name, st.head, first);
    st.first_seq = std::max(st.first_seq, first);
    const storage::seq_t after = st.head;
    st.head = first - 1;
    st.ring.clear();
    st.ring_bytes = 0;
    for (auto& [sid, who] : st.subs) {
      if (auto s = who.lock()) {
        counters_.resets.fetch_add(1, std::memory_order_relaxed);
        fanout_.deliver(s, sid, batch_of({reset_frame(st, name, "truncated", after)}),
                        pacing::none);
      }
    }
  }
  apply(st, name, got);
  if (st.target > st.head) fetch(name);
}

void hub::apply(channel_state& st, const std::string& name,
                std::vector<storage::stored_message>& rows) {
  std::vector<frame_ptr> frames;
  std::vector<storage::stored_message> fresh;
  frames.reserve(rows.size());
  for (auto& m : rows) {
    if (m.seq != st.head + 1 + static_cast<storage::seq_t>(frames.size())) continue;
    frames.push_back(message_frame(st, name, m));
    fresh.push_back(std::move(m));
  }
  if (frames.empty()) return;
  // Cache before hub: what a subscriber sees can be resumed from here.
  if (history_.cached()) history_.remember(st.id, fresh);
  st.head = frames.back()->seq;
  st.target = std::max(st.target, st.head);
  for (const auto& f : frames) remember(st, f);
  counters_.messages_ingested.fetch_add(frames.size(), std::memory_order_relaxed);
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (const auto& m : fresh) {
    counters_.delivery_lag_seconds.observe(static_cast<double>(now_us - m.ts_us) / 1e6);
  }
  fan_out(st, std::move(frames));
}

void hub::remember(channel_state& st, const frame_ptr& f) {
  st.ring.push_back(f);
  st.ring_bytes += f->text.size();
  while (!st.ring.empty() &&
         (st.ring.size() > limits_.ring_messages || st.ring_bytes > limits_.ring_bytes)) {
    st.ring_bytes -= st.ring.front()->text.size();
    st.ring.pop_front();
  }
}

void hub::fan_out(channel_state& st, std::vector<frame_ptr> frames) {
  const auto batch = batch_of(std::move(frames));
  const std::uint64_t n = fanout_.send(st.subs.by_home(limits_.homes), batch);
  counters_.deliveries.fetch_add(n * batch->size(), std::memory_order_relaxed);
}

}  // namespace seqcast::hub
