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
  // At most $4 rows, and past the first, at most $5 payload bytes in all (the running
  // sum is over the rows already limited by count, so the scan stays bounded).
  c.prepare("read_range",
            "SELECT seq, us, payload FROM ("
            " SELECT seq, (extract(epoch FROM ts) * 1000000)::bigint AS us, payload,"
            " sum(octet_length(payload)) OVER (ORDER BY seq) - octet_length(payload) AS before"
            " FROM (SELECT seq, ts, payload FROM messages"
            "  WHERE channel_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4) AS r"
            ") AS p WHERE before = 0 OR before + octet_length(payload) <= $5 ORDER BY seq");
  c.prepare("delete_channel", "DELETE FROM channels WHERE name = $1");
  c.prepare("list_channels",
            "SELECT c.id, c.name, c.epoch, c.first_seq, c.last_seq, count(m.seq), "
            "coalesce(sum(octet_length(m.payload)), 0) FROM channels c "
            "LEFT JOIN messages m ON m.channel_id = c.id WHERE c.last_seq > 0 "
            "GROUP BY c.id ORDER BY c.name");
  c.prepare("trim_scan",
            "SELECT id, first_seq, last_seq FROM channels WHERE id > $1 AND last_seq > 0 "
            "ORDER BY id LIMIT 500");
  c.prepare("first_young",
            "SELECT seq FROM messages WHERE channel_id = $1 AND seq >= $2 "
            "AND ts >= now() - make_interval(secs => $3::float8) ORDER BY seq LIMIT 1");
  c.prepare("raise_first", "UPDATE channels SET first_seq = $2 WHERE id = $1 AND first_seq < $2");
  c.prepare("delete_old", "DELETE FROM messages WHERE channel_id = $1 AND seq >= $2 AND seq < $3");
}

constexpr std::int64_t trim_lock_key = 0x5345514341535402;  // "SEQCAST" + 2

channel_info to_info(const pqxx::row& row) {
  return {row[0].as<channel_id>(), row[1].as<std::string>(), row[2].as<std::string>(),
          row[3].as<seq_t>(), row[4].as<seq_t>()};
}

}  // namespace

struct pg_reader::impl {
  database db;
  std::unique_ptr<pqxx::connection> conn;
};

pg_reader::pg_reader(database db) : impl_(std::make_unique<impl>()) { impl_->db = std::move(db); }

pg_reader::~pg_reader() = default;

template <class F>
auto pg_reader::run(std::string_view what, retry policy, F&& f) -> decltype(f()) {
  for (int attempt = 0;; ++attempt) {
    const bool fresh = !impl_->conn || !impl_->conn->is_open();
    try {
      if (fresh) {
        impl_->conn = open_connection(impl_->db);
        prepare_statements(*impl_->conn);
      }
      ++queries_;
      return f();
    } catch (...) {
      auto e = classify_current_exception(what);
      if (!is_connection_error(e)) return e;
      impl_->conn.reset();
      // A connection that had been open may just have been cut while idle: one
      // more try on a new one. A connection opened for this call that failed
      // means the server is not reachable now.
      if (policy == retry::never || fresh || attempt > 0) return e;
    }
  }
}

result<channel_info> pg_reader::channel(const std::string& name) {
  return run("read channel", retry::once_if_cut, [&]() -> result<channel_info> {
    pqxx::nontransaction tx(*impl_->conn);
    auto r = tx.exec_prepared("channel", name);
    if (r.empty()) return error{errc::not_found, "channel not found"};
    return to_info(r[0]);
  });
}

result<std::vector<channel_info>> pg_reader::channels(const std::vector<std::string>& names) {
  return run("read channels", retry::once_if_cut, [&]() -> result<std::vector<channel_info>> {
    text_array arr;
    for (const auto& n : names) arr.add(n);
    pqxx::nontransaction tx(*impl_->conn);
    std::vector<channel_info> out;
    for (const auto& row : tx.exec_prepared("channels", arr.str())) out.push_back(to_info(row));
    return out;
  });
}

result<std::vector<stored_message>> pg_reader::read_range(channel_id id, seq_t after, seq_t to,
                                                          page_limit limit) {
  return run("read messages", retry::once_if_cut, [&]() -> result<std::vector<stored_message>> {
    pqxx::nontransaction tx(*impl_->conn);
    std::vector<stored_message> out;
    auto r = tx.exec_prepared("read_range", id, after, to,
                              static_cast<std::int64_t>(std::max<std::size_t>(limit.messages, 1)),
                              static_cast<std::int64_t>(limit.bytes));
    out.reserve(r.size());
    for (const auto& row : r) {
      out.push_back({row[0].as<seq_t>(), row[1].as<std::int64_t>(), row[2].as<std::string>()});
    }
    return out;
  });
}

result<bool> pg_reader::delete_channel(const std::string& name) {
  return run("delete channel", retry::never, [&]() -> result<bool> {
    pqxx::work tx(*impl_->conn);
    auto r = tx.exec_prepared("delete_channel", name);
    tx.commit();
    return r.affected_rows() > 0;
  });
}

result<std::vector<channel_stats>> pg_reader::list_channels() {
  return run("list channels", retry::once_if_cut, [&]() -> result<std::vector<channel_stats>> {
    pqxx::nontransaction tx(*impl_->conn);
    std::vector<channel_stats> out;
    for (const auto& row : tx.exec_prepared("list_channels")) {
      out.push_back({to_info(row), row[5].as<std::int64_t>(), row[6].as<std::int64_t>()});
    }
    return out;
  });
}

result<trim_report> pg_reader::trim(std::int64_t keep_messages, std::int64_t keep_seconds,
                                    std::int64_t batch) {
  return run("trim", retry::never, [&]() -> result<trim_report> {
    auto& c = *impl_->conn;
    trim_report report;
    if (keep_messages <= 0 && keep_seconds <= 0) return report;
    if (!pqxx::nontransaction(c)
             .exec_params1("SELECT pg_try_advisory_lock($1)", trim_lock_key)[0]
             .as<bool>()) {
      return report;
    }
    report.ran = true;
    try {
      channel_id last_id = 0;
      for (;;) {
        auto chans = pqxx::nontransaction(c).exec_prepared("trim_scan", last_id);
        if (chans.empty()) break;
        for (const auto& row : chans) {
          const auto id = row[0].as<channel_id>();
          const auto first = row[1].as<seq_t>();
          const auto last = row[2].as<seq_t>();
          last_id = id;
          seq_t new_first = first;
          if (keep_messages > 0) new_first = std::max(new_first, last - keep_messages + 1);
          if (keep_seconds > 0) {
            auto young =
                pqxx::nontransaction(c).exec_prepared("first_young", id, new_first, keep_seconds);
            new_first = young.empty() ? last + 1 : std::max(new_first, young[0][0].as<seq_t>());
          }
          if (new_first <= first) continue;
          // Readers treat first_seq as the truth; raise it before deleting,
          // so nobody is promised a message that is about to go.
          pqxx::nontransaction(c).exec_prepared("raise_first", id, new_first);
          for (seq_t lo = first; lo < new_first; lo += batch) {
            auto d = pqxx::nontransaction(c).exec_prepared("delete_old", id, lo,
                                                           std::min(lo + batch, new_first));
            report.messages_deleted += d.affected_rows();
          }
          ++report.channels_trimmed;
        }
      }
    } catch (...) {
      // Release the lock if the connection survived; then report the failure.
      try {
        pqxx::nontransaction(c).exec_params("SELECT pg_advisory_unlock($1)", trim_lock_key);
      } catch (...) {
      }
      throw;
    }
    pqxx::nontransaction(c).exec_params("SELECT pg_advisory_unlock($1)", trim_lock_key);
    return report;
  });
}

}  // namespace seqcast::storage
