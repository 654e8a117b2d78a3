// Runs the retention trim every retention_check_seconds on the blocking pool.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>

#include "blocking_pool.hpp"
#include "config.hpp"

namespace seqcast {

// One pass at a time; PostgreSQL's advisory lock makes one node trim at a time.
class retention {
 public:
  retention(boost::asio::io_context& ioc, const config& cfg, blocking_pool& pool);
  ~retention();
  void start();
  void stop();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace seqcast
