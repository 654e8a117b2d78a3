// Group commit of publishes, on one writer thread.
#include "group_committer.hpp"

#include "log.hpp"
#include "util/backoff.hpp"

namespace seqcast::publish {

namespace {

std::size_t bytes_of(const storage::publish_request& r) {
  std::size_t n = 0;
  for (const auto& it : r.items) n += it.payload.size() + it.channel.size() + 64;
  return n;
}

}  // namespace

group_committer::group_committer(const storage::database& db, committed_fn on_committed,
                                 committer_limits limits, batch_fn on_batch, local_fn on_local)
    : publisher_(db),
      on_committed_(std::move(on_committed)),
      on_batch_(std::move(on_batch)),
      on_local_(std::move(on_local)),
      limits_(limits),
      thread_([this] { run(); }) {}

group_committer::~group_committer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool group_committer::healthy() const {
  std::lock_guard lock(mutex_);
  return healthy_;
}

void group_committer::submit(storage::publish_request request, done_fn done) {
  const std::size_t bytes = bytes_of(request);
  {
    std::unique_lock lock(mutex_);
    if (queued_bytes_ + bytes <= limits_.max_queued_bytes || queue_.empty()) {
      queued_bytes_ += bytes;
      queue_.push_back({std::move(request), std::move(done), bytes});
      lock.unlock();
      cv_.notify_one();
      return;
    }
  }
  done({storage::error{storage::errc::unavailable, "publish queue full; retry"}, {}});
}

void group_committer::wake_outbox() {
  {
    std::lock_guard lock(mutex_);
    outbox_due_ = true;
  }
  cv_.notify_one();
}

void group_committer::fail_all(std::deque<pending>& batch, const storage::error& e) {
  for (auto& p : batch) p.done({e, {}});
}

void group_committer::run() {
  using clock = std::chrono::steady_clock;
  util::backoff backoff(std::chrono::milliseconds(100), std::chrono::milliseconds(2000));
  clock::time_point retry_at{};
  clock::time_point outbox_looked{};  // the last commit that looked at the outbox
  std::size_t last_batch = 0;
  for (;;) {
    std::deque<pending> batch;
    bool move_outbox = false;
    {
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, limits_.outbox_poll,
                   [&] { return stopping_ || !queue_.empty() || outbox_due_; });
      if (stopping_ && queue_.empty()) return;
      // Also when busy publishing: the poll is a time since the last look, not an idle wait.
      if (clock::now() - outbox_looked >= limits_.outbox_poll) outbox_due_ = true;
      move_outbox = std::exchange(outbox_due_, false);
      if (move_outbox) outbox_looked = clock::now();
      // Under concurrency a commit answers a group whose members publish
      // again within a round trip; without this wait they would trickle into
      // the next commit while it is already under way and split into two
      // alternating half-size groups, each paying a full WAL flush. A lone
      // publisher (last_batch 1) never waits.
      if (last_batch > 1 && queue_.size() < last_batch) {
        cv_.wait_for(lock, limits_.regroup_wait,
                     [&] { return stopping_ || queue_.size() >= last_batch; });
      }
      std::size_t bytes = 0;
      while (!queue_.empty() && batch.size() < limits_.max_batch_requests &&
             (batch.empty() || bytes + queue_.front().bytes <= limits_.max_batch_bytes)) {
        bytes += queue_.front().bytes;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_bytes_ -= bytes;
      last_batch = batch.size();
    }
    // While the database is known to be down, answer at once rather than
    // letting every publish wait for a connect timeout.
    if (clock::now() < retry_at) {
      fail_all(batch, {storage::errc::unavailable, "database unavailable"});
      continue;  // a due outbox waits for the next poll
    }
    if (batch.empty() && !move_outbox) continue;
    std::vector<storage::publish_request> requests;
    requests.reserve(batch.size());
    std::size_t messages = 0;
    for (auto& p : batch) {
      messages += p.request.items.size();
      requests.push_back(std::move(p.request));
    }
    const auto started = clock::now();
    // Tell the hub which heads this commit will reach before it happens, so
    // that the NOTIFY of our own commit does not make it read them back.
    std::vector<storage::channel_advance> announced;
    auto out = publisher_.commit(
        requests,
        [&](const std::vector<storage::channel_advance>& a) {
          if (!on_local_) return;
          if (!announced.empty()) on_local_(std::move(announced), false);  // a retried attempt
          announced = a;
          on_local_(announced, true);
        },
        move_outbox);
    if (!announced.empty() && out.committed.empty()) on_local_(std::move(announced), false);
    const bool down = out.failure && out.failure->code == storage::errc::unavailable;
    if (!batch.empty() || down) {
      std::lock_guard lock(mutex_);
      healthy_ = !down;
    }
    if (out.outbox_more) wake_outbox();
    if (out.outbox_conflicts > 0) {
      log::warn("writer",
                "outbox rows dropped: their idempotency key was used with another payload "
                "rows={}",
                out.outbox_conflicts);
    }
    if (down) {
      const auto delay = backoff.next();
      log::warn("writer", "{} failed error=\"{}\" retry_in_ms={}",
                batch.empty() ? "outbox move" : "publish", out.failure->message, delay.count());
      retry_at = clock::now() + delay;
    } else {
      backoff.reset();
      if (on_batch_ && messages + out.outbox_moved > 0) {
        on_batch_(messages + out.outbox_moved,
                  std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - started));
      }
    }
    // Hand the new messages to this node's hub first: it then usually has them
    // before the NOTIFY of the same commit, and need not read them back.
    if (!out.committed.empty()) on_committed_(std::move(out.committed));
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(out.outcomes[i]));
  }
}

}  // namespace seqcast::publish
