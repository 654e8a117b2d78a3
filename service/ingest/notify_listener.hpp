// Drives the LISTEN connection from Asio: waits on its socket, hands NOTIFYs to the hub,
// and reconnects with backoff when the connection is lost.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "blocking_pool.hpp"
#include "hub/hub.hpp"
#include "node_state.hpp"

namespace seqcast::ingest {

// Runs on its own strand. The blocking connect runs on the pool.
class notify_listener {
 public:
  notify_listener(boost::asio::io_context& ioc, const std::string& database_url,
                  blocking_pool& pool, hub::hub& hub, node_state& state);
  ~notify_listener();

  void start();
  void stop();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace seqcast::ingest
