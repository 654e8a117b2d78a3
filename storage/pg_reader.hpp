// Reads of the message log and channel heads; one connection, one thread at a time.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "database.hpp"
#include "types.hpp"

namespace seqcast::storage {

// Owns one PostgreSQL connection, opened on first use and reopened after a
// failure. Not thread-safe: each blocking-pool thread owns one.
//
// A read that finds its connection broken (the server restarted, a pooler or
// pg_terminate_backend cut it, a failover) is retried once on a new connection
// before it reports `unavailable`: a cut the database has recovered from is
// never visible to the caller. Writes (delete_channel, trim) are not retried.
class pg_reader {
 public:
  explicit pg_reader(database db);
  ~pg_reader();
  pg_reader(const pg_reader&) = delete;
  pg_reader& operator=(const pg_reader&) = delete;

  // The current incarnation of a channel; not_found when it has no row or no message yet.
  result<channel_info> channel(const std::string& name);

  // The current incarnations of the named channels that have any message.
  result<std::vector<channel_info>> channels(const std::vector<std::string>& names);

  // Messages with after < seq <= to of one channel row, in seq order, within `limit`.
  result<std::vector<stored_message>> read_range(channel_id id, seq_t after, seq_t to,
                                                 page_limit limit);

  // Destroys a channel's history (its row and messages); the next publish
  // starts a new epoch at seq 1. Returns whether a channel existed.
  result<bool> delete_channel(const std::string& name);

  // Channels with a message, in byte order of their names whatever the database's
  // collation: those starting with `prefix` (empty: all) and greater than `after`
  // (exclusive; empty: from the first), at most `limit`. Each with its retained
  // message count and payload bytes, read from the channel row (no scan of the log).
  result<std::vector<channel_stats>> list_channels(std::string_view prefix, std::string_view after,
                                                   std::size_t limit);

  // This node's row in `nodes`: inserted, or refreshed with last_seen = the
  // database's now().
  result<none> register_node(const node_record& n);
  // The nodes whose last_seen is within `window_seconds` of the database's now(),
  // in byte order of their names.
  result<std::vector<node_record>> nodes(int window_seconds);
  // Deletes the rows of nodes not seen for `older_than_seconds`; returns how many.
  result<std::int64_t> forget_nodes(int older_than_seconds);

  // One retention pass, on one node at a time (advisory lock): raises each
  // channel's first_seq to keep at most `keep_messages` messages younger than
  // `keep_seconds` (0 = no limit by that rule), then deletes what fell out in
  // batches of `batch` rows, each its own short transaction.
  result<trim_report> trim(std::int64_t keep_messages, std::int64_t keep_seconds,
                           std::int64_t batch);

  // Number of round trips to PostgreSQL made so far (for metrics and tests).
  std::uint64_t queries() const { return queries_.load(std::memory_order_relaxed); }

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::atomic<std::uint64_t> queries_{0};  // read by metrics from other threads

  enum class retry { once_if_cut, never };
  template <class F>
  auto run(std::string_view what, retry policy, F&& f) -> decltype(f());
};

}  // namespace seqcast::storage
