// Group commit of publishes, on a few writer threads.
#include "group_committer.hpp"

#include <algorithm>
#include <string_view>

#include "log.hpp"

namespace seqcast::publish {

namespace {

std::size_t bytes_of(const storage::publish_request& r) {
  std::size_t n = 0;
  for (const auto& it : r.items) n += it.payload.size() + it.channel.size() + 64;
  return n;
}

}  // namespace

group_committer::group_committer(const std::string& database_url, committed_fn on_committed,
                                 committer_limits limits, batch_fn on_batch, local_fn on_local)
    : on_committed_(std::move(on_committed)),
      on_batch_(std::move(on_batch)),
      on_local_(std::move(on_local)),
      limits_(limits) {
  const std::size_t n = std::max<std::size_t>(1, limits_.writers);
  limits_.max_queued_bytes /= n;
  for (std::size_t i = 0; i < n; ++i) lanes_.push_back(std::make_unique<lane>(database_url));
  for (auto& l : lanes_) l->thread = std::thread([this, &l = *l] { run(l); });
}

group_committer::~group_committer() {
  for (auto& l : lanes_) {
    {
      std::lock_guard lock(l->mutex);
      l->stopping = true;
    }
    l->cv.notify_all();
  }
  for (auto& l : lanes_) l->thread.join();
}

bool group_committer::healthy() const {
  for (const auto& l : lanes_) {
    std::lock_guard lock(l->mutex);
    if (!l->healthy) return false;
  }
  return true;
}

void group_committer::submit(storage::publish_request request, done_fn done) {
  const std::size_t bytes = bytes_of(request);
  std::string_view first;
  if (!request.items.empty()) first = request.items.front().channel;
  auto& l = *lanes_[std::hash<std::string_view>{}(first) % lanes_.size()];
  {
    std::unique_lock lock(l.mutex);
    if (l.queued_bytes + bytes <= limits_.max_queued_bytes || l.queue.empty()) {
      l.queued_bytes += bytes;
      l.queue.push_back({std::move(request), std::move(done), bytes});
      lock.unlock();
      l.cv.notify_one();
      return;
    }
  }
  done({storage::error{storage::errc::unavailable, "publish queue full; retry"}, {}});
}

void group_committer::fail_all(std::deque<pending>& batch, const storage::error& e) {
  for (auto& p : batch) p.done({e, {}});
}

void group_committer::run(lane& l) {
  using clock = std::chrono::steady_clock;
  auto backoff = std::chrono::milliseconds(100);
  clock::time_point retry_at{};
  std::size_t last_batch = 0;
  for (;;) {
    std::deque<pending> batch;
    {
      std::unique_lock lock(l.mutex);
      l.cv.wait(lock, [&] { return l.stopping || !l.queue.empty(); });
      if (l.queue.empty()) return;
      // Under concurrency a commit answers a group whose members publish
      // again within a round trip; without this wait they would trickle into
      // the next commit while it is already under way and split into two
      // alternating half-size groups, each paying a full WAL flush. A lone
      // publisher (last_batch 1) never waits.
      if (last_batch > 1 && l.queue.size() < last_batch) {
        l.cv.wait_for(lock, limits_.regroup_wait,
                      [&] { return l.stopping || l.queue.size() >= last_batch; });
      }
      std::size_t bytes = 0;
      while (!l.queue.empty() && batch.size() < limits_.max_batch_requests &&
             (batch.empty() || bytes + l.queue.front().bytes <= limits_.max_batch_bytes)) {
        bytes += l.queue.front().bytes;
        batch.push_back(std::move(l.queue.front()));
        l.queue.pop_front();
      }
      l.queued_bytes -= bytes;
      last_batch = batch.size();
    }
    // While the database is known to be down, answer at once rather than
    // letting every publish wait for a connect timeout.
    if (clock::now() < retry_at) {
      fail_all(batch, {storage::errc::unavailable, "database unavailable"});
      continue;
    }
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
    auto out = l.publisher.commit(requests, [&](const std::vector<storage::channel_advance>& a) {
      if (!on_local_) return;
      if (!announced.empty()) on_local_(std::move(announced), false);  // a retried attempt
      announced = a;
      on_local_(announced, true);
    });
    if (!announced.empty() && out.committed.empty()) on_local_(std::move(announced), false);
    const bool down = !out.outcomes.empty() && out.outcomes.front().failure &&
                      out.outcomes.front().failure->code == storage::errc::unavailable &&
                      out.committed.empty();
    {
      std::lock_guard lock(l.mutex);
      l.healthy = !down;
    }
    if (down) {
      log::warn("writer", "publish failed error=\"{}\" retry_in_ms={}",
                out.outcomes.front().failure->message, backoff.count());
      retry_at = clock::now() + backoff;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    } else {
      backoff = std::chrono::milliseconds(100);
      if (on_batch_) {
        on_batch_(messages,
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
