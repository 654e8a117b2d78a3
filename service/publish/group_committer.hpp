// Group commit: publishes that arrive while a transaction is in flight go together in the next.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "pg_publisher.hpp"

namespace seqcast::publish {

struct committer_limits {
  std::size_t max_batch_requests = 1000;    // requests per transaction
  std::size_t max_batch_bytes = 8 << 20;    // payload bytes per transaction
  std::size_t max_queued_bytes = 64 << 20;  // beyond this, publishes are refused (503)
  // After a commit of several requests, wait at most this long for as many to
  // queue again: the publishers just answered are about to send their next.
  std::chrono::microseconds regroup_wait{1000};
  // Look at the outbox this often even without a wake-up (a NOTIFY missed while
  // the listener was away, or rows another node took the lock for and then died).
  std::chrono::milliseconds outbox_poll{1000};
};

// Thread-safe. Owns the writer thread and its PostgreSQL connection.
//
// The writer takes everything queued (up to the limits) into one transaction,
// so one COMMIT and one NOTIFY serve many publishes with no artificial delay.
// `done` runs on the writer thread after the COMMIT (or the failure); it must
// only post to the caller's strand. After a batch commits, `on_committed`
// gets its new messages, so this node need not read them back.
// While PostgreSQL is unreachable, publishes fail fast with errc::unavailable
// and the writer retries the connection with backoff.
//
// The writer also moves the outbox (transactional publishes) into the log, in
// the same transactions: after wake_outbox(), and every outbox_poll.
class group_committer {
 public:
  using done_fn = std::function<void(storage::publish_outcome)>;
  using committed_fn = std::function<void(std::vector<storage::committed_message>)>;
  using batch_fn = std::function<void(std::size_t messages, std::chrono::microseconds took)>;
  // Heads a batch is about to commit (`expected`), or no longer will (`!expected`).
  using local_fn = std::function<void(std::vector<storage::channel_advance>, bool expected)>;

  group_committer(const storage::database& db, committed_fn on_committed,
                  committer_limits limits = {}, batch_fn on_batch = {}, local_fn on_local = {});
  ~group_committer();  // commits what is queued, then joins
  group_committer(const group_committer&) = delete;
  group_committer& operator=(const group_committer&) = delete;

  void submit(storage::publish_request request, done_fn done);

  // Rows were committed to the outbox (its NOTIFY, or the listener reconnected):
  // the next commit moves them. Thread-safe, never blocks.
  void wake_outbox();

  // False while PostgreSQL is unreachable by the writer.
  bool healthy() const;

 private:
  struct pending {
    storage::publish_request request;
    done_fn done;
    std::size_t bytes;
  };
  void run();
  void fail_all(std::deque<pending>& batch, const storage::error& e);

  storage::pg_publisher publisher_;
  committed_fn on_committed_;
  batch_fn on_batch_;
  local_fn on_local_;
  committer_limits limits_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<pending> queue_;
  std::size_t queued_bytes_ = 0;
  bool stopping_ = false;
  bool healthy_ = true;
  bool outbox_due_ = true;  // at start: rows may have waited while no node ran
  std::thread thread_;
};

}  // namespace seqcast::publish
