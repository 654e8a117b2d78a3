// The LISTEN connection, driven by an event loop through fd() and drain().
#include "pg_notification_source.hpp"

#include "pg_connection.hpp"

namespace seqcast::storage {

namespace {

class receiver final : public pqxx::notification_receiver {
 public:
  receiver(pqxx::connection_base& c, const std::string& channel, std::vector<std::string>& sink)
      : pqxx::notification_receiver(c, channel), sink_(sink) {}
  void operator()(const std::string& payload, int) override { sink_.push_back(payload); }

 private:
  std::vector<std::string>& sink_;
};

}  // namespace

struct pg_notification_source::impl {
  database db;
  std::vector<std::string> received;
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<receiver> recv;  // declared after conn: destroyed first
};

pg_notification_source::pg_notification_source(database db) : impl_(std::make_unique<impl>()) {
  impl_->db = std::move(db);
}

pg_notification_source::~pg_notification_source() { disconnect(); }

result<none> pg_notification_source::connect() {
  disconnect();
  try {
    impl_->conn = open_connection(impl_->db);
    // A LISTEN connection must never come back silently: after a loss, the
    // owner has to re-read heads, so it must see the failure.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    impl_->conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
    impl_->recv = std::make_unique<receiver>(*impl_->conn, impl_->db.schema, impl_->received);
    // The receiver's LISTEN is sent lazily; a trivial query makes it happen now,
    // so that nothing committed after connect() returns can be missed.
    pqxx::nontransaction(*impl_->conn).exec("SELECT 1");
    return none{};
  } catch (...) {
    auto e = classify_current_exception("listen");
    disconnect();
    return e;
  }
}

void pg_notification_source::disconnect() {
  try {
    impl_->recv.reset();
  } catch (...) {
    // UNLISTEN on a dead connection may throw; the connection is going anyway.
  }
  impl_->conn.reset();
}

bool pg_notification_source::connected() const { return impl_->conn && impl_->conn->is_open(); }

int pg_notification_source::fd() const { return connected() ? impl_->conn->sock() : -1; }

int pg_notification_source::backend_pid() const {
  return connected() ? impl_->conn->backendpid() : 0;
}

result<std::vector<std::string>> pg_notification_source::drain() {
  try {
    if (!connected()) return error{errc::unavailable, "listen connection closed"};
    impl_->conn->get_notifs();
    // get_notifs() reports a lost connection only sometimes; is_open() tells.
    if (!connected()) return error{errc::unavailable, "listen connection lost"};
    std::vector<std::string> out;
    out.swap(impl_->received);
    return out;
  } catch (...) {
    auto e = classify_current_exception("listen");
    disconnect();
    return e;
  }
}

}  // namespace seqcast::storage
