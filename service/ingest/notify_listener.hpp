// Drives the LISTEN connection from Asio: waits on its socket, hands NOTIFYs to the hub
// (and the outbox's to the mover), and reconnects with backoff when the connection is lost.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "blocking_pool.hpp"
#include "hub/sharded_hub.hpp"
#include "node_state.hpp"

namespace seqcast::ingest {

// Runs on its own strand. The blocking connect runs on the pool.
//
// `on_outbox` runs (on the strand; it must not block) when rows were committed to
// the outbox — its NOTIFY "outbox" — and after every (re)connect, since
// notifications sent while the connection was away are lost.
class notify_listener {
 public:
  notify_listener(boost::asio::io_context& ioc, const storage::database& db, blocking_pool& pool,
                  hub::sharded_hub& hub, node_state& state, std::function<void()> on_outbox);
  ~notify_listener();

  void start();
  void stop();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace seqcast::ingest
