// Drains a node: tells its clients to reconnect, spread evenly over a window, so that
// a blue/green switch neither loses anyone nor stampedes PostgreSQL.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>

#include "drain/session_registry.hpp"

namespace seqcast::drain {

// Thread-safe (runs on its own strand).
class drainer {
 public:
  drainer(boost::asio::io_context& ioc, session_registry& sessions);
  ~drainer();

  // Sends `reconnect` to every session open now, the i-th of n at i·window/n,
  // each with within_ms = min(window, 1 s) so clients add their own jitter.
  // `done` runs once all were told and closed (or window + 5 s passed).
  // A drain already running is replaced by the new one.
  void start(std::chrono::milliseconds window, std::function<void()> done);

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace seqcast::drain
