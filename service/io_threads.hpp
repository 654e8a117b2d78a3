// The I/O threads: one io_context per thread, share-nothing. Each connection
// lives on one of them (round robin at accept), so its handlers never need a
// strand or a lock, and the hub hands a fan-out to each thread in one post
// instead of one per connection. Each thread also runs one shard of the hub
// (hub/sharded_hub.hpp); thread 0 runs the node's other objects (listener,
// drainer, timers, signals).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace seqcast {

class io_threads {
 public:
  explicit io_threads(std::size_t n) {
    for (std::size_t i = 0; i < std::max<std::size_t>(1, n); ++i) {
      // Concurrency hint 1: only one thread runs it (others may still post).
      contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
      guards_.emplace_back(boost::asio::make_work_guard(*contexts_.back()));
    }
  }

  boost::asio::io_context& main() { return *contexts_[0]; }
  boost::asio::io_context& at(std::size_t i) { return *contexts_[i]; }
  // Where the next connection lives.
  boost::asio::io_context& next() { return *contexts_[next_++ % contexts_.size()]; }

  // The index of the I/O thread calling this (0 outside of them).
  static std::size_t current() { return current_; }

  // Runs thread 0 on the caller and the others on their own threads, until stop().
  void run() {
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < contexts_.size(); ++i) {
      threads.emplace_back([this, i] {
        current_ = i;
        contexts_[i]->run();
      });
    }
    current_ = 0;
    contexts_[0]->run();
    for (auto& t : threads) t.join();
  }

  void stop() {
    guards_.clear();
    for (auto& c : contexts_) c->stop();
  }

  // Destroys the contexts, thread 0's first: an accept still pending there
  // holds a socket of the thread it was meant for. (Nothing on the other
  // threads reaches thread 0 any more: the hub stops posting before this.)
  void destroy() {
    guards_.clear();
    contexts_.front().reset();
    contexts_.clear();
  }

 private:
  using guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<guard> guards_;
  std::atomic<std::size_t> next_{0};
  static inline thread_local std::size_t current_ = 0;
};

}  // namespace seqcast
