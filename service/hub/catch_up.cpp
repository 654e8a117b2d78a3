// Catch-up: replay from the ring, the cache or PostgreSQL, paced by grants, then live.
#include "hub/catch_up.hpp"

#include <algorithm>

#include "hub/encode.hpp"
#include "log.hpp"

namespace seqcast::hub {

std::optional<storage::seq_t> survived(const channel_state& st, std::string_view epoch) {
  std::optional<storage::seq_t> r;
  for (const auto& p : st.past) {
    if (p.epoch == epoch)
      r = p.rewound_to;
    else if (r)
      r = std::min(*r, p.rewound_to);  // a later failover rewound further
  }
  return r;
}

bool beyond_head(const channel_state& st, const pending_subscribe& p) {
  return p.since && st.id != 0 && (!p.epoch || *p.epoch == st.epoch) &&
         *p.since > std::max(st.head, st.target);
}

resume_decision decide_resume(const channel_state& st, std::optional<storage::seq_t> since,
                              const std::optional<std::string>& epoch, bool fresh) {
  resume_decision d;
  if (!since) return d;  // live only
  d.after = *since;
  const bool other_epoch = epoch && (st.id == 0 || *epoch != st.epoch);
  if (fresh && !other_epoch && st.id != 0 && d.after > std::max(st.head, st.target)) {
    // The database's head, read after the client asked, is below its position: a
    // failover lost what it names (or it never existed). Never wait for that seq, which
    // will name another message.
    d.reset = "rewound";
    d.reset_after = d.after = std::max(st.head, st.target);
    return d;
  }
  const auto rewound_to = other_epoch && st.id != 0 ? survived(st, *epoch) : std::nullopt;
  if (rewound_to) {
    // An epoch the row left behind at a failover: its seqs up to R are the same
    // messages now; beyond R, the position names messages the database lost.
    if (d.after > *rewound_to) {
      d.reset = "rewound";
      d.reset_after = *rewound_to;
      d.after = std::max(*rewound_to, st.first_seq - 1);
    }
  } else if (other_epoch || (st.id == 0 && d.after > 0)) {
    // The position names another incarnation (or history that no longer exists):
    // it cannot be resumed; start over from the oldest retained.
    d.reset = "epoch_changed";
    d.reset_after = d.after = st.id == 0 ? 0 : st.first_seq - 1;
  }
  if (d.reset.empty() && d.after + 1 < st.first_seq) {
    d.reset = "truncated";
    d.reset_after = d.after;
    d.after = st.first_seq - 1;
  }
  if (d.after < st.head) d.action = resume_decision::kind::replay;
  return d;
}

catch_up::catch_up(channel_table& channels, history& history, fanout& out, hub_counters& counters,
                   post_after_fn timer, std::size_t page_messages)
    : channels_(channels),
      out_(out),
      history_(history),
      counters_(counters),
      timer_(std::move(timer)),
      page_messages_(std::max<std::size_t>(page_messages, 1)) {}

void catch_up::start(channel_state& st, const std::string& name, const pending_subscribe& p) {
  auto s = p.who.lock();
  if (!s) return;
  const auto d = decide_resume(st, p.since, p.epoch, p.fresh);
  std::vector<frame_ptr> first;
  if (!p.moved) first.push_back(subscribed_frame(st, name, !p.since));
  if (!d.reset.empty()) {
    counters_.resets.fetch_add(1, std::memory_order_relaxed);
    first.push_back(reset_frame(st, name, d.reset, d.reset_after));
  }
  if (d.action == resume_decision::kind::live) {
    out_.deliver(s, p.id, batch_of(std::move(first)), pacing::caught_up);
    st.subs.add(p.id, p.who);
    return channels_.count(name, st);
  }
  // Without a grant the subscriber is asked for one; with one, the first page follows.
  out_.deliver(s, p.id, batch_of(std::move(first)),
               p.grant == 0 ? pacing::want_more : pacing::none);
  st.catching.emplace(p.id, catching_sub{p.who, d.after, p.grant});
  channels_.count(name, st);
  next(name, p.id);
}

void catch_up::more(const std::string& name, std::uint64_t id, std::size_t grant) {
  auto* st = channels_.find(name);
  if (!st) return;
  auto it = st->catching.find(id);
  if (it == st->catching.end()) {
    // Moved by a reload and waiting for the head: its first page takes this grant.
    for (auto& w : st->waiting)
      if (w.id == id) w.grant = grant;
    return;  // live already, or gone
  }
  it->second.grant = grant;
  next(name, id);
}

void catch_up::restart(channel_state& st, const std::string& name) {
  std::vector<std::uint64_t> ids;
  for (auto& [id, c] : st.catching) {
    if (auto s = c.who.lock()) {
      counters_.resets.fetch_add(1, std::memory_order_relaxed);
      out_.deliver(s, id, batch_of({reset_frame(st, name, "epoch_changed", 0)}), pacing::none);
    }
    c.last = 0;
    ids.push_back(id);
  }
  for (auto id : ids) next(name, id);
}

void catch_up::next(const std::string& name, std::uint64_t id) {
  auto* found = channels_.find(name);
  if (!found) return;
  auto& st = *found;
  auto it = st.catching.find(id);
  if (it == st.catching.end()) return;
  auto& c = it->second;
  if (c.reading) return;
  if (c.last >= st.head) return promote(st, id);
  if (c.grant == 0) return;  // waits for more()
  if (!st.ring.empty() && st.ring.front()->seq <= c.last + 1) {
    // The ring holds contiguous seqs ending at head.
    auto from = st.ring.begin() + static_cast<std::ptrdiff_t>(c.last + 1 - st.ring.front()->seq);
    const auto n =
        std::min<std::size_t>(page_messages_, static_cast<std::size_t>(st.ring.end() - from));
    const std::vector<frame_ptr> frames(from, from + static_cast<std::ptrdiff_t>(n));
    counters_.replay_memory.fetch_add(send_page(st, id, c, frames, 0), std::memory_order_relaxed);
    return;
  }
  if (!history_.cached()) return fill(name, id);
  c.reading = true;
  history_.read_cache(st.id, c.last, st.head, {page_messages_, c.grant},
                      [this, name, id, chan = st.id, gen = st.generation](rows_result rows) {
                        on_cache_page(name, id, chan, gen, std::move(rows));
                      });
}

void catch_up::on_cache_page(const std::string& name, std::uint64_t id, storage::channel_id chan,
                             std::uint64_t gen, rows_result rows) {
  auto* st = channels_.find(name);
  if (!st || st->generation != gen) return;  // reloaded meanwhile: its own reads go on
  auto it = st->catching.find(id);
  if (it == st->catching.end()) return;
  auto& c = it->second;
  c.reading = false;
  if (st->id != chan) return next(name, id);  // reset to a new incarnation meanwhile
  if (!rows || rows.value().empty() || rows.value().front().seq != c.last + 1) {
    if (!rows) log::warn("hub", "cache read failed error=\"{}\"", rows.err().message);
    return fill(name, id);
  }
  std::vector<frame_ptr> frames;
  frames.reserve(rows.value().size());
  for (const auto& m : rows.value()) frames.push_back(message_frame(*st, name, m));
  counters_.replay_cache.fetch_add(send_page(*st, id, c, frames, 0), std::memory_order_relaxed);
}

void catch_up::fill(const std::string& name, std::uint64_t id) {
  auto& st = *channels_.find(name);
  if (std::find(st.fill_waiters.begin(), st.fill_waiters.end(), id) == st.fill_waiters.end()) {
    st.fill_waiters.push_back(id);
  }
  if (st.filling) return;
  st.filling = true;
  const auto& c = st.catching.at(id);
  counters_.replay_pg_queries.fetch_add(1, std::memory_order_relaxed);
  history_.read_log(st.id, c.last, st.head, {page_messages_, c.grant},
                    [this, name, chan = st.id, gen = st.generation, after = c.last](
                        rows_result rows) { on_filled(name, chan, gen, after, std::move(rows)); });
}

void catch_up::on_filled(const std::string& name, storage::channel_id chan, std::uint64_t gen,
                         storage::seq_t after, rows_result rows) {
  auto* found = channels_.find(name);
  if (!found || found->generation != gen) return;  // reloaded meanwhile: its own reads go on
  auto& st = *found;
  if (!rows && st.id == chan) {
    const auto delay = st.retry.next();
    log::warn("hub", "replay read failed channel={} error=\"{}\" retry_in_ms={}", name,
              rows.err().message, delay.count());
    counters_.read_retries.fetch_add(1, std::memory_order_relaxed);
    // `filling` stays set until then: the channel is kept, and nobody else reads meanwhile.
    timer_(delay, [this, name, gen] {
      auto* again = channels_.find(name);
      if (!again || again->generation != gen) return;
      again->filling = false;
      auto waiters = std::move(again->fill_waiters);
      again->fill_waiters.clear();
      for (auto w : waiters) next(name, w);
      channels_.forget_if_idle(name);
    });
    return;
  }
  st.filling = false;
  auto waiters = std::move(st.fill_waiters);
  st.fill_waiters.clear();
  if (st.id != chan) {
    for (auto w : waiters) next(name, w);
    return channels_.forget_if_idle(name);
  }
  st.retry.reset();
  auto& got = rows.value();
  counters_.replay_pg.fetch_add(got.size(), std::memory_order_relaxed);
  if (history_.cached() && !got.empty()) history_.remember(chan, got);
  // Rows come back from the first retained seq after `after`: anything below
  // it is gone from PostgreSQL.
  const storage::seq_t first = got.empty() ? st.head + 1 : got.front().seq;
  if (first > after + 1) st.first_seq = std::max(st.first_seq, first);
  std::vector<frame_ptr> frames;  // encoded once for every waiter
  frames.reserve(got.size());
  for (const auto& m : got) frames.push_back(message_frame(st, name, m));
  for (auto w : waiters) {
    auto cit = st.catching.find(w);
    if (cit == st.catching.end()) continue;
    auto& c = cit->second;
    auto s = c.who.lock();
    if (!s) {
      st.catching.erase(cit);
      continue;
    }
    if (c.last < after) {  // not covered by this read
      next(name, w);
      continue;
    }
    if (c.last + 1 < first) {
      counters_.resets.fetch_add(1, std::memory_order_relaxed);
      out_.deliver(s, w, batch_of({reset_frame(st, name, "truncated", c.last)}), pacing::none);
      c.last = first - 1;
    }
    if (frames.empty() || c.last + 1 > frames.back()->seq || c.grant == 0) {
      next(name, w);
      continue;
    }
    send_page(st, w, c, frames, static_cast<std::size_t>(c.last + 1 - frames.front()->seq));
  }
  channels_.count(name, st);
  channels_.forget_if_idle(name);
}

std::size_t catch_up::send_page(channel_state& st, std::uint64_t id, catching_sub& c,
                                const std::vector<frame_ptr>& frames, std::size_t from) {
  auto s = c.who.lock();
  if (!s) {
    st.catching.erase(id);
    return 0;
  }
  std::vector<frame_ptr> page;
  std::size_t bytes = 0;
  for (std::size_t i = from; i < frames.size() && page.size() < page_messages_; ++i) {
    const std::size_t size = queued_size(*frames[i]);
    if (!page.empty() && bytes + size > c.grant) break;
    bytes += size;
    page.push_back(frames[i]);
  }
  if (page.empty()) {
    promote(st, id);
    return 0;
  }
  const std::size_t n = page.size();
  c.last = page.back()->seq;
  c.grant = 0;
  counters_.deliveries.fetch_add(n, std::memory_order_relaxed);
  if (c.last >= st.head) {
    out_.deliver(s, id, batch_of(std::move(page)), pacing::caught_up);
    st.subs.add(id, std::move(c.who));
    st.catching.erase(id);
  } else {
    out_.deliver(s, id, batch_of(std::move(page)), pacing::want_more);
  }
  return n;
}

void catch_up::promote(channel_state& st, std::uint64_t id) {
  auto it = st.catching.find(id);
  if (it == st.catching.end()) return;
  if (auto s = it->second.who.lock()) out_.deliver(s, id, batch_of({}), pacing::caught_up);
  st.subs.add(id, std::move(it->second.who));
  st.catching.erase(it);
}

}  // namespace seqcast::hub
