// The node's hub, sharded by channel.
#include "hub/sharded_hub.hpp"

#include <stdexcept>

namespace seqcast::hub {

sharded_hub::sharded_hub(std::size_t n, fanout::post_home_fn home, std::size_t homes,
                         std::chrono::milliseconds hold, const make_fn& make)
    : fanout_(std::move(home), homes, hold) {
  if (n == 0) throw std::invalid_argument("sharded_hub: at least one shard");
  shards_.reserve(n);
  for (std::size_t k = 0; k < n; ++k) shards_.push_back(make(k, {counters_, fanout_}));
}

std::size_t sharded_hub::index(const std::string& channel) const {
  if (shards_.size() == 1) return 0;
  return std::hash<std::string>{}(channel) % shards_.size();
}

template <class T, class Call>
void sharded_hub::split(std::vector<T> items, Call call) {
  if (shards_.size() == 1) return call(*shards_.front(), std::move(items));
  std::vector<std::vector<T>> parts(shards_.size());
  for (auto& item : items) parts[index(item.name)].push_back(std::move(item));
  for (std::size_t k = 0; k < parts.size(); ++k) {
    if (!parts[k].empty()) call(*shards_[k], std::move(parts[k]));
  }
}

void sharded_hub::subscribe(std::uint64_t id, std::weak_ptr<subscriber> who, std::string channel,
                            std::optional<storage::seq_t> since, std::optional<std::string> epoch,
                            std::size_t grant) {
  auto& shard = shard_of(channel);
  shard.subscribe(id, std::move(who), std::move(channel), since, std::move(epoch), grant);
}

void sharded_hub::unsubscribe(std::uint64_t id, std::string channel) {
  auto& shard = shard_of(channel);
  shard.unsubscribe(id, std::move(channel));
}

void sharded_hub::more(std::uint64_t id, std::string channel, std::size_t grant) {
  auto& shard = shard_of(channel);
  shard.more(id, std::move(channel), grant);
}

void sharded_hub::on_notify(std::vector<storage::channel_advance> advances) {
  split(std::move(advances), [](hub& h, auto part) { h.on_notify(std::move(part)); });
}

void sharded_hub::on_committed(std::vector<storage::committed_message> messages) {
  split(std::move(messages), [](hub& h, auto part) { h.on_committed(std::move(part)); });
}

void sharded_hub::on_local(std::vector<storage::channel_advance> advances, bool expected) {
  split(std::move(advances),
        [expected](hub& h, auto part) { h.on_local(std::move(part), expected); });
}

void sharded_hub::on_listener_connected() {
  for (auto& h : shards_) h->on_listener_connected();
}

void sharded_hub::on_timeline_changed() {
  counters_.timeline_changes.fetch_add(1, std::memory_order_relaxed);
  for (auto& h : shards_) h->on_timeline_changed();
}

std::size_t sharded_hub::subscriber_count(const std::string& channel) const {
  return shards_[index(channel)]->subscriber_count(channel);
}

std::size_t sharded_hub::channel_count() const {
  std::size_t n = 0;
  for (const auto& h : shards_) n += h->channel_count();
  return n;
}

}  // namespace seqcast::hub
