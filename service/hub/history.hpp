// Where the hub reads a channel's past from: its head, and ranges of messages, from the
// replay cache or from PostgreSQL. An interface, so that the hub's sequencing and
// catch-up can be tested against an in-memory twin (tests/support/memory_history.hpp).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "types.hpp"

namespace seqcast::hub {

using rows_result = storage::result<std::vector<storage::stored_message>>;

// Reads run off the hub strand (never blocking it); each `done` is called exactly
// once, back on the hub strand. The write methods are called on the hub strand; for
// each channel they are the only writes to the cache (one shard owns a channel,
// sharded_hub.hpp), while the shards together may write at once.
class history {
 public:
  virtual ~history() = default;

  // The current incarnation of a channel (errc::not_found: no history yet).
  virtual void head(std::string name,
                    std::function<void(storage::result<storage::channel_info>)> done) = 0;
  // The current incarnations of those of `names` that have any message.
  virtual void heads(
      std::vector<std::string> names,
      std::function<void(storage::result<std::vector<storage::channel_info>>)> done) = 0;

  // Whether there is a cache to read and write at all.
  virtual bool cached() const = 0;
  // Seqs after+1, after+2, … ≤ to of channel row `id` from the cache, within
  // `limit`, stopping at the first one it does not hold.
  virtual void read_cache(storage::channel_id id, storage::seq_t after, storage::seq_t to,
                          storage::page_limit limit, std::function<void(rows_result)> done) = 0;
  // Messages after < seq ≤ to of channel row `id` from PostgreSQL, within `limit`;
  // the first may be above after+1 when older ones were trimmed.
  virtual void read_log(storage::channel_id id, storage::seq_t after, storage::seq_t to,
                        storage::page_limit limit, std::function<void(rows_result)> done) = 0;

  // Cache writes (hub strand only).
  virtual void remember(storage::channel_id id,
                        const std::vector<storage::stored_message>& messages) = 0;
  virtual void remember(
      std::vector<std::pair<storage::channel_id, std::vector<storage::stored_message>>> many) = 0;
  virtual void forget(storage::channel_id id) = 0;
  // Forgets every cached message: the database changed timeline (a failover).
  virtual void forget_all() = 0;
};

}  // namespace seqcast::hub
