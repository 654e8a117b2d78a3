// The hub's history over the RocksDB replay cache and PostgreSQL.
#include "hub/storage_history.hpp"

#include "log.hpp"
#include "timeline.hpp"

namespace seqcast::hub {

template <class Read, class Done>
void storage_history::off_strand(Read read, Done done) {
  pool_.post([this, read = std::move(read), done = std::move(done)](storage::pg_reader& db) {
    strand_([result = read(db), done]() mutable { done(std::move(result)); });
  });
}

void storage_history::head(std::string name,
                           std::function<void(storage::result<storage::channel_info>)> done) {
  off_strand([name = std::move(name)](storage::pg_reader& db) { return db.channel(name); },
             std::move(done));
}

void storage_history::heads(
    std::vector<std::string> names,
    std::function<void(storage::result<std::vector<storage::channel_info>>)> done) {
  off_strand([names = std::move(names)](storage::pg_reader& db) { return db.channels(names); },
             std::move(done));
}

void storage_history::read_cache(storage::channel_id id, storage::seq_t after, storage::seq_t to,
                                 storage::page_limit limit, std::function<void(rows_result)> done) {
  // RocksDB scans run on the pool too, off the I/O threads and the hub strand.
  off_strand([this, id, after, to,
              limit](storage::pg_reader&) { return cache_->read(id, after, to, limit); },
             std::move(done));
}

void storage_history::read_log(storage::channel_id id, storage::seq_t after, storage::seq_t to,
                               storage::page_limit limit, std::function<void(rows_result)> done) {
  off_strand([id, after, to,
              limit](storage::pg_reader& db) { return db.read_range(id, after, to, limit); },
             std::move(done));
}

void storage_history::remember(storage::channel_id id,
                               const std::vector<storage::stored_message>& messages) {
  if (auto r = cache_->put(id, messages); !r) {
    log::warn("hub", "cache write failed error=\"{}\"", r.err().message);
  }
}

void storage_history::remember(
    std::vector<std::pair<storage::channel_id, std::vector<storage::stored_message>>> many) {
  if (auto r = cache_->put(many); !r) {
    log::warn("hub", "cache write failed error=\"{}\"", r.err().message);
  }
}

void storage_history::forget(storage::channel_id id) { cache_->drop(id); }

void storage_history::forget_all() {
  const auto identity =
      storage::rocksdb_replay_cache::identity(database_id_, storage::current_timeline());
  if (auto r = cache_->drop_all(identity); !r) {
    // Left as it was, the identity names the old timeline: the next open empties it.
    log::error("hub", "emptying the cache failed error=\"{}\"", r.err().message);
  }
}

}  // namespace seqcast::hub
