// The hub's history over the real storage: the RocksDB replay cache and PostgreSQL
// reads on the blocking pool.
#pragma once

#include <functional>

#include "blocking_pool.hpp"
#include "hub/history.hpp"
#include "rocksdb_replay_cache.hpp"

namespace seqcast::hub {

// One per hub shard. Reads run on `pool`; their results are posted back with `strand`
// (the shard's). Cache writes run where they are called (the shard's strand); the
// shards share the pool and the cache. `cache` may be null.
class storage_history final : public history {
 public:
  using post_fn = std::function<void(std::function<void()>)>;
  // `database_id`: what the cache's identity names (rocksdb_replay_cache::identity).
  storage_history(blocking_pool& pool, storage::rocksdb_replay_cache* cache, post_fn strand,
                  std::string database_id = {})
      : pool_(pool),
        cache_(cache),
        strand_(std::move(strand)),
        database_id_(std::move(database_id)) {}

  void head(std::string name,
            std::function<void(storage::result<storage::channel_info>)> done) override;
  void heads(
      std::vector<std::string> names,
      std::function<void(storage::result<std::vector<storage::channel_info>>)> done) override;
  bool cached() const override { return cache_ != nullptr; }
  void read_cache(storage::channel_id id, storage::seq_t after, storage::seq_t to,
                  storage::page_limit limit, std::function<void(rows_result)> done) override;
  void read_log(storage::channel_id id, storage::seq_t after, storage::seq_t to,
                storage::page_limit limit, std::function<void(rows_result)> done) override;
  void remember(storage::channel_id id,
                const std::vector<storage::stored_message>& messages) override;
  void remember(std::vector<std::pair<storage::channel_id, std::vector<storage::stored_message>>>
                    many) override;
  void forget(storage::channel_id id) override;
  void forget_all() override;

 private:
  // Runs read(db) on the pool, then done(result) on the strand.
  template <class Read, class Done>
  void off_strand(Read read, Done done);

  blocking_pool& pool_;
  storage::rocksdb_replay_cache* cache_;
  post_fn strand_;
  std::string database_id_;
};

}  // namespace seqcast::hub
