// The HTTP listener: accepts connections and hands each to one I/O thread for its life.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "http/api.hpp"
#include "io_threads.hpp"
#include "session/context.hpp"

namespace seqcast::http {

// What the HTTP sessions need: the connections' context and the REST API.
// Owned by main, outlives every session.
struct services {
  session::context ctx;
  api& rest;
};

class server {
 public:
  // Accepts on the first I/O thread and spreads connections over all of them.
  // `s` must outlive the io_contexts (sessions hold it until they are destroyed).
  server(io_threads& io, const services& s);
  ~server();

  // Binds `listen` (host:port; port 0 picks a free one) and starts accepting.
  // Throws std::runtime_error when the address cannot be bound.
  void start(const std::string& listen);
  unsigned short port() const;
  void stop();  // stops accepting; open connections continue

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace seqcast::http
