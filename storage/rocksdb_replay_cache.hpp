// The replay cache: recent messages of the channels this node serves, in RocksDB.
// Disposable: PostgreSQL is the truth, and every read is checked for contiguity.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "types.hpp"

namespace rocksdb {
class WriteBatch;
}

namespace seqcast::storage {

struct cache_limits {
  std::size_t channel_messages = 10000;  // newest messages kept per channel
  std::uint64_t max_bytes = 256ull
                            << 20;  // approximate total; least recently written channels go first
};

// Thread-safe. Writes (put, drop, drop_all) are serialized by a mutex: the writers are
// the hub's shards, each the only writer of its channels' keys.
//
// Keys are (channel row id, seq). A channel row id names one epoch, so entries
// of an old epoch are never read for a new one. The cache records the identity
// of the database (and timeline) it was filled from; opened against another, it
// empties itself first.
class rocksdb_replay_cache {
 public:
  // What the cache records as the source of its messages: the database and the server
  // timeline they were read on (a failover to a standby starts another, which may lack
  // some of them).
  static std::string identity(const std::string& database_id, std::int32_t timeline);

  // Opens or creates the cache in `dir`. Returns unavailable when RocksDB cannot open it.
  static result<std::unique_ptr<rocksdb_replay_cache>> open(const std::string& dir,
                                                            const std::string& database_id,
                                                            cache_limits limits);
  ~rocksdb_replay_cache();
  rocksdb_replay_cache(const rocksdb_replay_cache&) = delete;
  rocksdb_replay_cache& operator=(const rocksdb_replay_cache&) = delete;

  // Stores messages of one channel (in seq order) in one write batch, then
  // trims the channel to its depth and the cache to its byte budget.
  result<none> put(channel_id channel, const std::vector<stored_message>& messages);
  // The same for several channels in one write batch.
  using channel_messages = std::pair<channel_id, std::vector<stored_message>>;
  result<none> put(const std::vector<channel_messages>& channels);

  // The messages after < seq <= to, in order, within `limit`, stopping at the
  // first missing seq: the result is always after+1, after+2, … (maybe empty).
  result<std::vector<stored_message>> read(channel_id channel, seq_t after, seq_t to,
                                           page_limit limit) const;

  // Forgets a channel row (its epoch ended).
  void drop(channel_id channel);
  // Forgets every message, and records that what comes next is from `database_id`
  // (a failover: the database may no longer have some of what is here).
  result<none> drop_all(const std::string& database_id);

  std::uint64_t approximate_bytes() const { return total_bytes_.load(std::memory_order_relaxed); }
  bool emptied_on_open() const { return emptied_on_open_; }

 private:
  rocksdb_replay_cache();
  void stage(rocksdb::WriteBatch& batch, channel_id channel,
             const std::vector<stored_message>& messages);
  // With the writer mutex held.
  result<none> write(rocksdb::WriteBatch& batch);
  void evict_over_budget();
  void drop_locked(channel_id channel);

  struct impl;
  std::unique_ptr<impl> impl_;
  std::atomic<std::uint64_t> total_bytes_{0};
  bool emptied_on_open_ = false;
};

}  // namespace seqcast::storage
