// Commits batches of publish requests to PostgreSQL: gapless seqs, idempotency, one NOTIFY.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "database.hpp"
#include "types.hpp"

namespace seqcast::storage {

// One HTTP publish: all of its items commit or none do.
struct publish_request {
  std::vector<publish_item> items;
};

struct publish_outcome {
  std::optional<error> failure;         // set: nothing of this request was published
  std::vector<publish_result> results;  // one per item, in order, when !failure
};

struct batch_outcome {
  std::optional<error> failure;              // the transaction failed: every request with it
  std::vector<publish_outcome> outcomes;     // one per request, in order
  std::vector<committed_message> committed;  // the new messages, for this node's ingest
  std::size_t outbox_moved = 0;              // outbox rows this commit moved into the log
  bool outbox_more = false;                  // it moved a full page: more may be waiting
  std::size_t outbox_conflicts = 0;          // moved rows whose idempotency key named
                                             // another payload: dropped, not published
};

// Outbox rows one commit moves at most, and their payload bytes (past the first row).
inline constexpr std::size_t outbox_page = 500;
inline constexpr std::size_t outbox_page_bytes = 8 << 20;

// Owns one PostgreSQL connection; not thread-safe: one writer thread calls it.
//
// commit() runs the whole batch in one transaction: it locks the channel rows
// in id order (so writers on several nodes never deadlock), checks idempotency
// keys, takes seqs by bumping each channel's last_seq once by its count,
// inserts all rows with one statement, NOTIFYs the advanced heads (IDs only)
// and commits. A request whose key was reused with another body fails alone
// with errc::conflict; a database failure fails every request (unavailable
// when the connection is lost; the connection is reopened on the next call).
//
// With `move_outbox`, the same transaction also moves committed outbox rows
// (transactional publishes, migrations/002_outbox.sql) into the log, ahead of the
// batch (they committed first): up to outbox_page of them (and outbox_page_bytes of
// payload past the first), in commit order, each
// as a request of its own, deleted from the outbox in that transaction — so each
// is published exactly once. Only one node moves at a time (an advisory lock
// taken with the transaction): when another holds it, this commit moves none.
class pg_publisher {
 public:
  explicit pg_publisher(database db);
  ~pg_publisher();
  pg_publisher(const pg_publisher&) = delete;
  pg_publisher& operator=(const pg_publisher&) = delete;

  // Moves the payloads out of `batch`. `before_commit`, when set, is called
  // with the heads the batch advances just before COMMIT (so this node can
  // expect its own messages and not read them back after their NOTIFY).
  using advances_fn = std::function<void(const std::vector<channel_advance>&)>;
  batch_outcome commit(std::vector<publish_request>& batch, const advances_fn& before_commit = {},
                       bool move_outbox = false);

  // Opens the connection if it is not open. Returns the failure if it cannot.
  std::optional<error> ensure_connected();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace seqcast::storage
