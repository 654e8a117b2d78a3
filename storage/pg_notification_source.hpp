// The LISTEN connection: a socket for an event loop to wait on, and the payloads it received.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "database.hpp"
#include "result.hpp"

namespace seqcast::storage {

// Owns a dedicated PostgreSQL connection that LISTENs on the schema's channel (its name).
// Not thread-safe: one strand drives it (connect() may block for the connect timeout).
//
// Use: connect(); wait until fd() is readable; drain(); repeat. fd() may change
// after connect(), so read it again each time. When drain() fails the
// connection is gone: notifications sent meanwhile are lost, so the caller
// must re-read the heads of its channels after the next connect().
class pg_notification_source {
 public:
  explicit pg_notification_source(database db);
  ~pg_notification_source();
  pg_notification_source(const pg_notification_source&) = delete;
  pg_notification_source& operator=(const pg_notification_source&) = delete;

  result<none> connect();
  void disconnect();
  bool connected() const;

  // The connection's socket, for waiting; -1 when not connected. Never close it.
  int fd() const;

  // The payloads of the notifications that arrived since the last call (never blocks long).
  result<std::vector<std::string>> drain();

  // The server process id of the LISTEN connection (tests terminate it on purpose).
  int backend_pid() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace seqcast::storage
