// Reads of the message log and channel heads.
#include "pg_reader.hpp"

#include "pg_connection.hpp"
#include "sql_array.hpp"

namespace seqcast::storage {

namespace {

void prepare_statements(pqxx::connection& c) {
  c.prepare("channel",
            "SELECT id, name, epoch, first_seq, last_seq FROM channels "
            "WHERE name = $1 AND last_seq > 0");
  c.prepare("channels",
            "SELECT id, name, epoch, first_seq, last_seq FROM channels "
            "WHERE name = ANY($1::text[]) AND last_seq > 0");
  c.prepare("read_range",
            "SELECT seq, (extract(epoch FROM ts) * 1000000)::bigint, payload FROM messages "
            "WHERE channel_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4");
}

channel_info to_info(const pqxx::row& row) {
  return {row[0].as<channel_id>(), row[1].as<std::string>(), row[2].as<std::string>(),
          row[3].as<seq_t>(), row[4].as<seq_t>()};
}

}  // namespace

struct pg_reader::impl {
  std::string url;
  std::unique_ptr<pqxx::connection> conn;
};

pg_reader::pg_reader(std::string database_url) : impl_(std::make_unique<impl>()) {
  impl_->url = std::move(database_url);
}

pg_reader::~pg_reader() = default;

template <class F>
auto pg_reader::run(std::string_view what, F&& f) -> decltype(f()) {
  try {
    if (!impl_->conn || !impl_->conn->is_open()) {
      impl_->conn = open_connection(impl_->url);
      prepare_statements(*impl_->conn);
    }
    ++queries_;
    return f();
  } catch (...) {
    auto e = classify_current_exception(what);
    if (is_connection_error(e)) impl_->conn.reset();
    return e;
  }
}

result<channel_info> pg_reader::channel(const std::string& name) {
  return run("read channel", [&]() -> result<channel_info> {
    pqxx::nontransaction tx(*impl_->conn);
    auto r = tx.exec_prepared("channel", name);
    if (r.empty()) return error{errc::not_found, "channel not found"};
    return to_info(r[0]);
  });
}

result<std::vector<channel_info>> pg_reader::channels(const std::vector<std::string>& names) {
  return run("read channels", [&]() -> result<std::vector<channel_info>> {
    text_array arr;
    for (const auto& n : names) arr.add(n);
    pqxx::nontransaction tx(*impl_->conn);
    std::vector<channel_info> out;
    for (const auto& row : tx.exec_prepared("channels", arr.str())) out.push_back(to_info(row));
    return out;
  });
}

result<std::vector<stored_message>> pg_reader::read_range(channel_id id, seq_t after, seq_t to,
                                                         std::size_t limit) {
  return run("read messages", [&]() -> result<std::vector<stored_message>> {
    pqxx::nontransaction tx(*impl_->conn);
    std::vector<stored_message> out;
    auto r = tx.exec_prepared("read_range", id, after, to, static_cast<std::int64_t>(limit));
    out.reserve(r.size());
    for (const auto& row : r) {
      out.push_back({row[0].as<seq_t>(), row[1].as<std::int64_t>(), row[2].as<std::string>()});
    }
    return out;
  });
}

}  // namespace seqcast::storage
