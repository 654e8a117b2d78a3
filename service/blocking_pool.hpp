// Threads for blocking PostgreSQL work, each with its own connection, off the I/O threads.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pg_reader.hpp"

namespace seqcast {

// Thread-safe. A job runs on one of the pool's threads with that thread's
// reader; it must hand its result back by posting to the caller's strand.
class blocking_pool {
 public:
  using job = std::function<void(storage::pg_reader&)>;

  blocking_pool(const storage::database& db, int threads);
  ~blocking_pool();  // runs what is queued, then joins
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  void post(job j);

  // Runs what is queued, then joins the threads; later posts are dropped. Idempotent.
  void stop();

  // PostgreSQL round trips made by the pool so far.
  std::uint64_t queries() const;

 private:
  void run(std::size_t index);

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<job> jobs_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<storage::pg_reader>> readers_;
  std::vector<std::thread> threads_;
};

}  // namespace seqcast
