// The hub: subscriptions per channel and the single sequencer that feeds them.
#include "hub/hub.hpp"

#include "log.hpp"
#include "protocol/frames.hpp"

namespace seqcast::hub {

namespace {

constexpr std::size_t fetch_page = 1000;  // rows per PostgreSQL range read
constexpr std::chrono::milliseconds retry_delay{500};

frame_batch single(std::string text) {
  auto f = std::make_shared<frame>(frame{0, std::move(text)});
  return std::make_shared<const std::vector<frame_ptr>>(std::vector<frame_ptr>{std::move(f)});
}

}  // namespace

hub::hub(post_fn strand, post_after_fn timer, blocking_pool& pool)
    : strand_(std::move(strand)), timer_(std::move(timer)), pool_(pool) {}

void hub::subscribe(std::uint64_t id, std::weak_ptr<subscriber> who, std::string channel,
                    std::optional<storage::seq_t> since, std::optional<std::string> epoch) {
  // TODO(#3): resume from `since`/`epoch`; until then every subscribe is live-only.
  (void)since;
  (void)epoch;
  strand_([this, id, who = std::move(who), channel = std::move(channel)]() mutable {
    do_subscribe(id, std::move(who), channel);
  });
}

void hub::unsubscribe(std::uint64_t id, std::string channel) {
  strand_([this, id, channel = std::move(channel)] { do_unsubscribe(id, channel); });
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
    for (auto& m : messages)
      if (channels_.contains(m.name)) by_channel[m.name].push_back(&m);
    for (auto& [name, ms] : by_channel) {
      auto& st = channels_.at(name);
      const auto& first = *ms.front();
      const auto& last = *ms.back();
      // Our own messages go straight out when they are next in line; else
      // they only raise the target, and the range read fetches them.
      if (st.loading || st.id != first.channel || first.message.seq != st.head + 1) {
        advance(name, {last.channel, name, last.epoch, last.message.seq});
        continue;
      }
      std::vector<storage::stored_message> rows;
      rows.reserve(ms.size());
      for (auto* m : ms) rows.push_back(std::move(m->message));
      apply(st, name, rows);
    }
  });
}

void hub::on_listener_connected() {
  strand_([this] {
    std::vector<std::string> names;
    for (const auto& [name, st] : channels_)
      if (!st.loading) names.push_back(name);
    if (names.empty()) return;
    pool_.post([this, names = std::move(names)](storage::pg_reader& db) {
      auto r = db.channels(names);
      strand_([this, r = std::move(r)] {
        if (!r) {
          log::warn("hub", "re-reading heads failed error=\"{}\"", r.err().message);
          return;  // the listener reconnects again, and calls us again
        }
        for (const auto& c : r.value()) advance(c.name, {c.id, c.name, c.epoch, c.last_seq});
      });
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

void hub::set_count(const std::string& name, std::size_t n) {
  std::lock_guard lock(counts_mutex_);
  if (n == 0) {
    counts_.erase(name);
  } else {
    counts_[name] = n;
  }
}

void hub::do_subscribe(std::uint64_t id, std::weak_ptr<subscriber> who,
                       const std::string& channel) {
  auto [it, created] = channels_.try_emplace(channel);
  auto& st = it->second;
  waiting_subscribe w{id, std::move(who)};
  if (st.loading) {
    st.waiting.push_back(std::move(w));
    if (created) load(channel);
    return;
  }
  send_subscribed(st, channel, w);
}

void hub::send_subscribed(channel_state& st, const std::string& name,
                          const waiting_subscribe& w) {
  auto s = w.who.lock();
  if (!s) return;
  std::optional<std::string_view> epoch;
  if (st.id != 0) epoch = st.epoch;
  s->deliver(w.id, single(protocol::subscribed(name, epoch, st.head)));
  st.subs.emplace(w.id, w.who);
  set_count(name, st.subs.size());
}

void hub::do_unsubscribe(std::uint64_t id, const std::string& channel) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  auto& st = it->second;
  st.subs.erase(id);
  std::erase_if(st.waiting, [id](const waiting_subscribe& w) { return w.id == id; });
  set_count(channel, st.subs.size());
  // Forget the channel when nobody listens; an in-flight read finds it gone.
  if (st.subs.empty() && st.waiting.empty() && !st.loading && !st.fetching) channels_.erase(it);
}

void hub::load(const std::string& name) {
  pool_.post([this, name](storage::pg_reader& db) {
    auto info = db.channel(name);
    strand_([this, name, info = std::move(info)]() mutable { on_loaded(name, std::move(info)); });
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
        s->deliver(w.id, single(protocol::error("unavailable", "database unavailable; retry",
                                                std::string_view(name))));
      }
    }
    channels_.erase(it);
    return;
  }
  if (info) {
    st.id = info.value().id;
    st.epoch = info.value().epoch;
    st.head = st.target = info.value().last_seq;
  }
  st.loading = false;
  for (const auto& w : st.waiting) send_subscribed(st, name, w);
  st.waiting.clear();
  auto early = std::move(st.early);
  for (const auto& a : early) advance(name, a);
  if (st.subs.empty() && !st.fetching) channels_.erase(name);
}

void hub::advance(const std::string& name, const storage::channel_advance& a) {
  auto it = channels_.find(name);
  if (it == channels_.end()) return;
  auto& st = it->second;
  if (st.loading) {
    st.early.push_back(a);
    return;
  }
  if (a.id < st.id) return;  // an older incarnation's news
  if (a.id > st.id) {
    // A new incarnation (first publish, or re-created after DELETE): its
    // seqs start at 1 again.
    // TODO(#3): tell subscribers of the old epoch with a reset frame.
    st.id = a.id;
    st.epoch = a.epoch;
    st.head = st.target = 0;
  }
  st.target = std::max(st.target, a.to_seq);
  if (st.target > st.head) fetch(name);
}

void hub::fetch(const std::string& name) {
  auto& st = channels_.at(name);
  if (st.fetching) return;
  st.fetching = true;
  counters_.fetches.fetch_add(1, std::memory_order_relaxed);
  pool_.post([this, name, id = st.id, after = st.head, to = st.target](storage::pg_reader& db) {
    auto rows = db.read_range(id, after, to, fetch_page);
    strand_([this, name, id, rows = std::move(rows)]() mutable {
      on_fetched(name, id, std::move(rows));
    });
  });
}

void hub::on_fetched(const std::string& name, storage::channel_id id,
                     storage::result<std::vector<storage::stored_message>> rows) {
  auto it = channels_.find(name);
  if (it == channels_.end()) return;
  auto& st = it->second;
  st.fetching = false;
  if (st.subs.empty()) {
    channels_.erase(it);
    return;
  }
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
    // The range is not in the table (trimmed or deleted): skip to what exists.
    // TODO(#3): a reset frame for live subscribers instead of a silent skip.
    log::warn("hub", "messages missing channel={} after={} first={}", name, st.head,
              got.empty() ? st.target : got.front().seq);
    st.head = got.empty() ? st.target : got.front().seq - 1;
  }
  apply(st, name, got);
  if (st.target > st.head) fetch(name);
}

void hub::apply(channel_state& st, const std::string& name,
                std::vector<storage::stored_message>& rows) {
  std::vector<frame_ptr> frames;
  frames.reserve(rows.size());
  for (auto& m : rows) {
    if (m.seq != st.head + 1) continue;  // already delivered (our own commit raced the read)
    st.head = m.seq;
    frames.push_back(std::make_shared<const frame>(
        frame{m.seq, protocol::message(name, st.epoch, m.seq, m.ts_us, m.payload)}));
  }
  st.target = std::max(st.target, st.head);
  if (frames.empty()) return;
  counters_.messages_ingested.fetch_add(frames.size(), std::memory_order_relaxed);
  fan_out(st, std::make_shared<const std::vector<frame_ptr>>(std::move(frames)));
}

void hub::fan_out(channel_state& st, frame_batch frames) {
  std::uint64_t n = 0;
  for (auto it = st.subs.begin(); it != st.subs.end();) {
    if (auto s = it->second.lock()) {
      s->deliver(it->first, frames);
      ++n;
      ++it;
    } else {
      it = st.subs.erase(it);
    }
  }
  counters_.deliveries.fetch_add(n * frames->size(), std::memory_order_relaxed);
}

}  // namespace seqcast::hub
