// Threads for blocking PostgreSQL work, each with its own connection.
#include "blocking_pool.hpp"

#include "log.hpp"

namespace seqcast {

blocking_pool::blocking_pool(const storage::database& db, int threads) {
  for (int i = 0; i < threads; ++i) readers_.push_back(std::make_unique<storage::pg_reader>(db));
  for (int i = 0; i < threads; ++i)
    threads_.emplace_back([this, i] { run(static_cast<std::size_t>(i)); });
}

blocking_pool::~blocking_pool() { stop(); }

void blocking_pool::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

void blocking_pool::post(job j) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(j));
  }
  cv_.notify_one();
}

std::uint64_t blocking_pool::queries() const {
  // Readers count on their own threads; a slightly stale sum is fine for metrics.
  std::uint64_t n = 0;
  for (const auto& r : readers_) n += r->queries();
  return n;
}

void blocking_pool::run(std::size_t index) {
  for (;;) {
    job j;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      j = std::move(jobs_.front());
      jobs_.pop_front();
    }
    try {
      j(*readers_[index]);
    } catch (const std::exception& e) {
      log::error("pool", "job failed error=\"{}\"", e.what());
    }
  }
}

}  // namespace seqcast
