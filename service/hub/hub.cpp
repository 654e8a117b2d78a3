// The hub: subscriptions per channel, the single sequencer that feeds them, and resume.
#include "hub/hub.hpp"

#include "log.hpp"
#include "protocol/frames.hpp"

namespace seqcast::hub {

namespace {

constexpr std::size_t fetch_page = 1000;  // rows per PostgreSQL range read
constexpr std::chrono::milliseconds retry_delay{500};

frame_batch batch_of(std::vector<frame_ptr> frames) {
  return std::make_shared<const std::vector<frame_ptr>>(std::move(frames));
}

frame_ptr control(frame::kind type, std::string text, std::int64_t reset_to = -1) {
  return make_frame(frame{type, 0, std::move(text), reset_to, 0, {}});
}

}  // namespace

hub::hub(post_fn strand, post_after_fn timer, post_home_fn home, blocking_pool& pool,
         storage::rocksdb_replay_cache* cache, hub_limits limits)
    : strand_(std::move(strand)),
      timer_(std::move(timer)),
      post_home_(std::move(home)),
      pool_(pool),
      cache_(cache),
      limits_(limits) {}

template <class Read, class Done>
void hub::off_strand(Read read, Done done) {
  pool_.post([this, read = std::move(read), done = std::move(done)](storage::pg_reader& db) {
    strand_([result = read(db), done]() mutable { done(std::move(result)); });
  });
}

// ---- public entry points: post to the strand ----

void hub::subscribe(std::uint64_t id, std::weak_ptr<subscriber> who, std::string channel,
                    std::optional<storage::seq_t> since, std::optional<std::string> epoch) {
  strand_([this, p = pending{id, std::move(who), since, std::move(epoch)},
           channel = std::move(channel)]() mutable { do_subscribe(std::move(p), channel); });
}

void hub::unsubscribe(std::uint64_t id, std::string channel) {
  strand_([this, id, channel = std::move(channel)] { do_unsubscribe(id, channel); });
}

void hub::more(std::uint64_t id, std::string channel) {
  strand_([this, id, channel = std::move(channel)] {
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    auto c = it->second.catching.find(id);
    if (c == it->second.catching.end()) return;
    c->second.waiting_more = false;
    replay_next(channel, id);
  });
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
    std::vector<storage::rocksdb_replay_cache::channel_messages> unserved;
    for (auto& [name, ms] : by_channel) {
      const auto& first = *ms.front();
      const auto& last = *ms.back();
      std::vector<storage::stored_message> rows;
      rows.reserve(ms.size());
      for (auto* m : ms) rows.push_back(std::move(m->message));
      auto it = channels_.find(name);
      if (it == channels_.end()) {
        // Not served here yet: keep them for a resume on this node.
        if (cache_) unserved.emplace_back(first.channel, std::move(rows));
        continue;
      }
      auto& st = it->second;
      if (st.local_until <= rows.back().seq) st.local_until = 0;  // what we expected is here
      // Our own messages go straight out when they are next in line; else
      // they only raise the target, and the range read fetches them.
      if (st.loading || st.id != first.channel || rows.front().seq != st.head + 1) {
        advance(name, {last.channel, name, last.epoch, rows.back().seq});
      } else {
        apply(st, name, rows);
      }
    }
    // One write for all of them: a commit may span a thousand channels.
    if (!unserved.empty()) (void)cache_->put(unserved);
  });
}

void hub::on_local(std::vector<storage::channel_advance> advances, bool expected) {
  strand_([this, advances = std::move(advances), expected] {
    for (const auto& a : advances) {
      auto it = channels_.find(a.name);
      if (it == channels_.end() || it->second.loading || it->second.id != a.id) continue;
      auto& st = it->second;
      if (expected) {
        st.local_until = std::max(st.local_until, a.to_seq);
      } else {
        st.local_until = 0;
        if (st.target > st.head) fetch(a.name);
      }
    }
  });
}

void hub::on_listener_connected() {
  strand_([this] {
    std::vector<std::string> names;
    for (const auto& [name, st] : channels_)
      if (!st.loading) names.push_back(name);
    if (names.empty()) return;
    off_strand([names](storage::pg_reader& db) { return db.channels(names); },
               [this](storage::result<std::vector<storage::channel_info>> r) {
                 if (!r) {
                   log::warn("hub", "re-reading heads failed error=\"{}\"", r.err().message);
                   return;  // the listener reconnects again, and calls us again
                 }
                 for (const auto& c : r.value()) {
                   auto it = channels_.find(c.name);
                   if (it != channels_.end() && it->second.id == c.id) {
                     it->second.first_seq = std::max(it->second.first_seq, c.first_seq);
                   }
                   advance(c.name, {c.id, c.name, c.epoch, c.last_seq});
                 }
               });
  });
}

std::size_t hub::subscriber_count(const std::string& channel) const {
  std::lock_guard lock(counts_mutex_);
  auto it = counts_.find(channel);
  return it == counts_.end() ? 0 : it->second;
}

std::size_t hub::channel_count() const {
  std::lock_guard lock(counts_mutex_);
  return counts_.size();
}

// ---- subscriptions ----

void hub::set_count(const std::string& name, const channel_state& st) {
  const std::size_t n = st.subs.size() + st.catching.size();
  std::lock_guard lock(counts_mutex_);
  if (n == 0) {
    counts_.erase(name);
  } else {
    counts_[name] = n;
  }
}

void hub::do_subscribe(pending p, const std::string& channel) {
  auto [it, created] = channels_.try_emplace(channel);
  auto& st = it->second;
  if (st.loading) {
    st.waiting.push_back(std::move(p));
    if (created) load(channel);
    return;
  }
  start(st, channel, p);
}

void hub::start(channel_state& st, const std::string& name, const pending& p) {
  auto s = p.who.lock();
  if (!s) return;
  std::optional<std::string_view> epoch;
  if (st.id != 0) epoch = st.epoch;
  // The head is the last seq known to exist, even if this node still reads
  // it back; a live-only subscriber skips everything up to it.
  const storage::seq_t head = std::max(st.head, st.target);
  s->deliver(p.id,
             batch_of({control(frame::kind::subscribed, protocol::subscribed(name, epoch, head),
                               p.since ? -1 : head)}),
             false);
  if (!p.since) {
    st.subs.emplace(p.id, p.who);
    return set_count(name, st);
  }
  storage::seq_t after = *p.since;
  // The position names another incarnation (or history that no longer
  // exists): it cannot be resumed; start over from the oldest retained.
  const bool other_epoch = p.epoch && (st.id == 0 || *p.epoch != st.epoch);
  if (other_epoch || (st.id == 0 && after > 0)) {
    after = st.id == 0 ? 0 : st.first_seq - 1;
    send_reset(st, name, p.id, *s, "epoch_changed", after);
  } else if (after + 1 < st.first_seq) {
    send_reset(st, name, p.id, *s, "truncated", after);
    after = st.first_seq - 1;
  }
  if (after >= st.head) {
    st.subs.emplace(p.id, p.who);
    return set_count(name, st);
  }
  st.catching.emplace(p.id, catch_up{p.who, after});
  set_count(name, st);
  replay_next(name, p.id);
}

void hub::send_reset(channel_state& st, const std::string& name, std::uint64_t id, subscriber& s,
                     std::string_view reason, storage::seq_t after) {
  const storage::seq_t first = st.id == 0 ? 1 : std::max<storage::seq_t>(st.first_seq, 1);
  std::optional<std::pair<std::int64_t, std::int64_t>> missed;
  if (reason == "truncated") missed = std::make_pair(after + 1, first - 1);
  std::optional<std::string_view> epoch;
  if (st.id != 0) epoch = st.epoch;
  counters_.resets.fetch_add(1, std::memory_order_relaxed);
  s.deliver(id,
            batch_of({control(
                frame::kind::reset,
                protocol::reset(name, epoch, first, std::max(st.head, st.target), reason, missed),
                first - 1)}),
            false);
}

void hub::do_unsubscribe(std::uint64_t id, const std::string& channel) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  auto& st = it->second;
  st.subs.erase(id);
  st.catching.erase(id);
  std::erase_if(st.waiting, [id](const pending& w) { return w.id == id; });
  set_count(channel, st);
  forget_if_idle(channel);
}

void hub::forget_if_idle(const std::string& name) {
  auto it = channels_.find(name);
  if (it == channels_.end()) return;
  const auto& st = it->second;
  // In-flight reads find the channel gone and drop their results.
  if (st.subs.empty() && st.catching.empty() && st.waiting.empty() && !st.loading && !st.fetching &&
      !st.filling) {
    channels_.erase(it);
  }
}

void hub::load(const std::string& name) {
  off_strand([name](storage::pg_reader& db) { return db.channel(name); },
             [this, name](storage::result<storage::channel_info> info) {
               on_loaded(name, std::move(info));
             });
}

void hub::on_loaded(const std::string& name, storage::result<storage::channel_info> info) {
  auto it = channels_.find(name);
  if (it == channels_.end()) return;
  auto& st = it->second;
  if (!info && info.err().code != storage::errc::not_found) {
    log::warn("hub", "reading channel head failed channel={} error=\"{}\"", name,
              info.err().message);
    for (const auto& w : st.waiting) {
      if (auto s = w.who.lock()) {
        s->deliver(w.id,
                   batch_of({control(frame::kind::error,
                                     protocol::error("unavailable", "database unavailable; retry",
                                                     std::string_view(name)))}),
                   false);
      }
    }
    channels_.erase(it);
    return;
  }
  if (info) {
    st.id = info.value().id;
    st.epoch = info.value().epoch;
    st.first_seq = info.value().first_seq;
    st.head = st.target = info.value().last_seq;
  }
  st.loading = false;
  auto waiting = std::move(st.waiting);
  for (const auto& w : waiting) start(st, name, w);
  auto early = std::move(st.early);
  for (const auto& a : early) advance(name, a);
  forget_if_idle(name);
}

// ---- live ingest ----

void hub::advance(const std::string& name, const storage::channel_advance& a) {
  auto it = channels_.find(name);
  if (it == channels_.end()) return;
  auto& st = it->second;
  if (st.loading) {
    st.early.push_back(a);
    return;
  }
  if (a.id < st.id) return;  // an older incarnation's news
  if (a.id > st.id) new_incarnation(st, name, a);
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
  st.head = st.target = 0;
  st.local_until = 0;
  st.first_seq = 1;
  st.ring.clear();
  st.ring_bytes = 0;
  if (old_id == 0) return;  // subscribers saw no history: nothing to reset
  send_unsent(st);          // the old incarnation's last messages go before the reset
  if (cache_) cache_->drop(old_id);
  for (auto& [id, who] : st.subs) {
    if (auto s = who.lock()) send_reset(st, name, id, *s, "epoch_changed", 0);
  }
  for (auto& [id, c] : st.catching) {
    if (auto s = c.who.lock()) send_reset(st, name, id, *s, "epoch_changed", 0);
    c.last = 0;
  }
}

void hub::fetch(const std::string& name) {
  auto& st = channels_.at(name);
  if (st.fetching) return;
  st.fetching = true;
  counters_.fetches.fetch_add(1, std::memory_order_relaxed);
  off_strand([id = st.id, after = st.head, to = st.target](
                 storage::pg_reader& db) { return db.read_range(id, after, to, fetch_page); },
             [this, name, id = st.id](storage::result<std::vector<storage::stored_message>> rows) {
               on_fetched(name, id, std::move(rows));
             });
}

void hub::on_fetched(const std::string& name, storage::channel_id id,
                     storage::result<std::vector<storage::stored_message>> rows) {
  auto it = channels_.find(name);
  if (it == channels_.end()) return;
  auto& st = it->second;
  st.fetching = false;
  if (st.subs.empty() && st.catching.empty()) return forget_if_idle(name);
  if (st.id != id) {  // the incarnation changed while we read
    if (st.target > st.head) fetch(name);
    return;
  }
  if (!rows) {
    log::warn("hub", "reading messages failed channel={} error=\"{}\"", name, rows.err().message);
    timer_(retry_delay, [this, name] {
      auto again = channels_.find(name);
      if (again != channels_.end() && again->second.target > again->second.head) fetch(name);
    });
    return;
  }
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
      if (auto s = who.lock()) send_reset(st, name, sid, *s, "truncated", after);
    }
  }
  apply(st, name, got);
  if (st.target > st.head) fetch(name);
}

frame_ptr hub::encode(const channel_state& st, const std::string& name,
                      const storage::stored_message& m) const {
  std::string text = protocol::message(name, st.epoch, m.seq, m.ts_us, m.payload);
  const std::size_t offset = text.size() - m.payload.size() - 1;
  return make_frame(frame{frame::kind::message, m.seq, std::move(text), -1, offset, {}});
}

void hub::apply(channel_state& st, const std::string& name,
                std::vector<storage::stored_message>& rows) {
  std::vector<frame_ptr> frames;
  std::vector<storage::stored_message> fresh;
  frames.reserve(rows.size());
  for (auto& m : rows) {
    if (m.seq != st.head + 1 + static_cast<storage::seq_t>(frames.size())) continue;
    frames.push_back(encode(st, name, m));
    fresh.push_back(std::move(m));
  }
  if (frames.empty()) return;
  // Cache before hub: what a subscriber sees can be resumed from here.
  if (cache_) {
    if (auto r = cache_->put(st.id, fresh); !r) {
      log::warn("hub", "cache write failed error=\"{}\"", r.err().message);
    }
  }
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
  fan_out(st, name, std::move(frames));
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

void hub::fan_out(channel_state& st, const std::string& name, std::vector<frame_ptr> frames) {
  if (limits_.coalesce.count() == 0) {
    st.unsent = std::move(frames);
    return send_unsent(st);
  }
  if (st.unsent.empty()) unsent_channels_.push_back(name);
  st.unsent.insert(st.unsent.end(), std::make_move_iterator(frames.begin()),
                   std::make_move_iterator(frames.end()));
  if (send_armed_) return;
  send_armed_ = true;
  timer_(limits_.coalesce, [this] { send_all_unsent(); });
}

void hub::send_all_unsent() {
  send_armed_ = false;
  for (const auto& name : unsent_channels_) {
    if (auto it = channels_.find(name); it != channels_.end()) send_unsent(it->second);
  }
  unsent_channels_.clear();
}

void hub::send_unsent(channel_state& st) {
  if (st.unsent.empty()) return;
  const auto frames = batch_of(std::move(st.unsent));
  st.unsent.clear();
  // One post per I/O thread, not per subscriber: the thread then hands the
  // frames to each of its connections in turn.
  struct delivery {
    std::shared_ptr<subscriber> who;
    std::uint64_t id;
  };
  std::vector<std::vector<delivery>> by_home;
  std::uint64_t n = 0;
  for (auto it = st.subs.begin(); it != st.subs.end();) {
    if (auto s = it->second.lock()) {
      ++n;
      const std::size_t h = s->home();
      if (h >= by_home.size()) by_home.resize(h + 1);
      by_home[h].push_back({std::move(s), it->first});
      ++it;
    } else {
      it = st.subs.erase(it);
    }
  }
  for (std::size_t h = 0; h < by_home.size(); ++h) {
    if (by_home[h].empty()) continue;
    post_home_(h, [list = std::move(by_home[h]), frames] {
      for (const auto& d : list) d.who->deliver_here(d.id, frames);
    });
  }
  counters_.deliveries.fetch_add(n * frames->size(), std::memory_order_relaxed);
}

// ---- resume: ring, then RocksDB, then PostgreSQL ----

std::pair<hub::channel_state*, hub::catch_up*> hub::find_catch_up(const std::string& name,
                                                                  std::uint64_t id) {
  auto it = channels_.find(name);
  if (it == channels_.end()) return {nullptr, nullptr};
  auto cit = it->second.catching.find(id);
  if (cit == it->second.catching.end()) return {nullptr, nullptr};
  return {&it->second, &cit->second};
}

void hub::replay_next(const std::string& name, std::uint64_t id) {
  auto [found, catching] = find_catch_up(name, id);
  if (!catching) return;
  auto& st = *found;
  auto& c = *catching;
  if (c.reading || c.waiting_more) return;
  if (c.last >= st.head) return promote(st, id);
  if (!st.ring.empty() && st.ring.front()->seq <= c.last + 1) {
    // The ring holds contiguous seqs ending at head.
    auto from = st.ring.begin() + (c.last + 1 - st.ring.front()->seq);
    const auto n = std::min<std::size_t>(limits_.page_messages,
                                         static_cast<std::size_t>(st.ring.end() - from));
    std::vector<frame_ptr> frames(from, from + static_cast<std::ptrdiff_t>(n));
    counters_.replay_memory.fetch_add(n, std::memory_order_relaxed);
    return send_page(st, id, c, std::move(frames));
  }
  if (!cache_) return fill(name, id);
  c.reading = true;
  // RocksDB scans run on the pool too, off the I/O threads.
  off_strand(
      [this, chan = st.id, after = c.last, to = st.head](storage::pg_reader&) {
        return cache_->read(chan, after, to, limits_.page_messages);
      },
      [this, name, id, chan = st.id](storage::result<std::vector<storage::stored_message>> rows) {
        on_cache_page(name, id, chan, std::move(rows));
      });
}

void hub::on_cache_page(const std::string& name, std::uint64_t id, storage::channel_id chan,
                        storage::result<std::vector<storage::stored_message>> rows) {
  auto [found, catching] = find_catch_up(name, id);
  if (!catching) return;
  auto& st = *found;
  auto& c = *catching;
  c.reading = false;
  if (st.id != chan) return replay_next(name, id);  // reset to a new incarnation meanwhile
  if (!rows || rows.value().empty() || rows.value().front().seq != c.last + 1) {
    if (!rows) log::warn("hub", "cache read failed error=\"{}\"", rows.err().message);
    return fill(name, id);
  }
  std::vector<frame_ptr> frames;
  frames.reserve(rows.value().size());
  for (const auto& m : rows.value()) frames.push_back(encode(st, name, m));
  counters_.replay_cache.fetch_add(frames.size(), std::memory_order_relaxed);
  send_page(st, id, c, std::move(frames));
}

void hub::fill(const std::string& name, std::uint64_t id) {
  auto& st = channels_.at(name);
  if (std::find(st.fill_waiters.begin(), st.fill_waiters.end(), id) == st.fill_waiters.end()) {
    st.fill_waiters.push_back(id);
  }
  if (st.filling) return;
  st.filling = true;
  const storage::seq_t after = st.catching.at(id).last;
  counters_.replay_pg_queries.fetch_add(1, std::memory_order_relaxed);
  off_strand([chan = st.id, after, to = st.head](
                 storage::pg_reader& db) { return db.read_range(chan, after, to, fetch_page); },
             [this, name, chan = st.id,
              after](storage::result<std::vector<storage::stored_message>> rows) {
               on_filled(name, chan, after, std::move(rows));
             });
}

void hub::on_filled(const std::string& name, storage::channel_id chan, storage::seq_t after,
                    storage::result<std::vector<storage::stored_message>> rows) {
  auto it = channels_.find(name);
  if (it == channels_.end()) return;
  auto& st = it->second;
  st.filling = false;
  auto waiters = std::move(st.fill_waiters);
  st.fill_waiters.clear();
  if (st.id != chan) {
    for (auto w : waiters) replay_next(name, w);
    return forget_if_idle(name);
  }
  if (!rows) {
    log::warn("hub", "replay read failed channel={} error=\"{}\"", name, rows.err().message);
    timer_(retry_delay, [this, name, waiters] {
      for (auto w : waiters) replay_next(name, w);
    });
    return;
  }
  auto& got = rows.value();
  counters_.replay_pg.fetch_add(got.size(), std::memory_order_relaxed);
  if (cache_ && !got.empty()) (void)cache_->put(chan, got);
  // Rows come back from the first retained seq after `after`: anything below
  // it is gone from PostgreSQL.
  const storage::seq_t first = got.empty() ? st.head + 1 : got.front().seq;
  if (first > after + 1) st.first_seq = std::max(st.first_seq, first);
  std::vector<frame_ptr> frames;  // encoded once for every waiter
  frames.reserve(got.size());
  for (const auto& m : got) frames.push_back(encode(st, name, m));
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
      replay_next(name, w);
      continue;
    }
    if (c.last + 1 < first) {
      send_reset(st, name, w, *s, "truncated", c.last);
      c.last = first - 1;
    }
    if (frames.empty() || c.last + 1 > frames.back()->seq) {
      replay_next(name, w);
      continue;
    }
    auto from = frames.begin() + (c.last + 1 - frames.front()->seq);
    std::vector<frame_ptr> page(from, frames.end());
    send_page(st, w, c, std::move(page));
  }
  set_count(name, st);
  forget_if_idle(name);
}

void hub::send_page(channel_state& st, std::uint64_t id, catch_up& c,
                    std::vector<frame_ptr> frames) {
  auto s = c.who.lock();
  if (!s) {
    st.catching.erase(id);
    return;
  }
  c.last = frames.back()->seq;
  counters_.deliveries.fetch_add(frames.size(), std::memory_order_relaxed);
  if (c.last >= st.head) {
    s->deliver(id, batch_of(std::move(frames)), false);
    return promote(st, id);
  }
  c.waiting_more = true;
  s->deliver(id, batch_of(std::move(frames)), true);
}

void hub::promote(channel_state& st, std::uint64_t id) {
  auto it = st.catching.find(id);
  if (it == st.catching.end()) return;
  st.subs.emplace(id, std::move(it->second.who));
  st.catching.erase(it);
}

}  // namespace seqcast::hub
