// Runs a function at a fixed rate on a strand of an io_context: the node's periodic jobs.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>

namespace seqcast::util {

// Thread-safe. `tick` runs on the ticker's strand, first at start(), then every
// `period` (measured from the previous tick's due time, so it does not drift);
// it must not block (hand blocking work to the blocking pool).
class ticker {
 public:
  ticker(boost::asio::io_context& ioc, std::chrono::milliseconds period,
         std::function<void()> tick);
  ~ticker();  // does not stop it: call stop() while the io_context still exists
  ticker(const ticker&) = delete;
  ticker& operator=(const ticker&) = delete;

  void start();
  // Posts the stop: no tick starts after the strand has run it.
  void stop();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace seqcast::util
