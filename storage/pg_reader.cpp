// Reads of the message log and channel heads.
#include "pg_reader.hpp"

#include "pg_connection.hpp"
#include "sql_array.hpp"
#include "timeline.hpp"

namespace seqcast::storage {

namespace {

const std::string head_columns =
    "id, name, epoch, first_seq, last_seq, "
    "(SELECT string_agg(r.epoch || ':' || r.rewound_to, ',' ORDER BY r.n) FROM rewinds r "
    "WHERE r.channel_id = channels.id), $2 <> 0 AND timeline <> 0 AND timeline <> $2";

void prepare_statements(pqxx::connection& c) {
  // Heads, with the epochs each row left behind ("epoch:rewound_to,…", oldest first)
  // and whether it must be rebased onto the server's timeline $2 first.
  c.prepare("channel",
            "SELECT " + head_columns + " FROM channels WHERE name = $1 AND last_seq > 0");
  c.prepare("channels", "SELECT " + head_columns +
                            " FROM channels WHERE name = ANY($1::text[]) AND last_seq > 0");
  c.prepare("rebase", rebase_sql);
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
  // A page of channels in byte order of their names (the index channels_name_bytes),
  // whatever the database's collation: names > $1 with prefix $2, either bounded
  // above by $3 (the prefix with its last byte raised) or, when no such bound exists
  // (no prefix), checked with starts_with. No aggregate over `messages`: the count
  // is last_seq - first_seq + 1 (a gapless log), the bytes a running column (003).
  c.prepare("list_channels_in",
            "SELECT id, name, epoch, first_seq, last_seq, bytes FROM channels "
            "WHERE name COLLATE \"C\" > $1 AND name COLLATE \"C\" >= $2 "
            "AND name COLLATE \"C\" < $3 AND last_seq > 0 "
            "ORDER BY name COLLATE \"C\" LIMIT $4");
  c.prepare("list_channels_from",
            "SELECT id, name, epoch, first_seq, last_seq, bytes FROM channels "
            "WHERE name COLLATE \"C\" > $1 AND name COLLATE \"C\" >= $2 "
            "AND starts_with(name, $2) AND last_seq > 0 "
            "ORDER BY name COLLATE \"C\" LIMIT $3");
  c.prepare("trim_scan",
            "SELECT id, first_seq, last_seq FROM channels WHERE id > $1 AND last_seq > 0 "
            "ORDER BY id LIMIT 500");
  c.prepare("first_young",
            "SELECT seq FROM messages WHERE channel_id = $1 AND seq >= $2 "
            "AND ts >= now() - make_interval(secs => $3::float8) ORDER BY seq LIMIT 1");
  c.prepare("raise_first", "UPDATE channels SET first_seq = $2 WHERE id = $1 AND first_seq < $2");
  // The oldest row a channel still has: below first_seq when a delete failed after
  // first_seq was raised (those rows are deleted on the channel's next trim).
  c.prepare("oldest_row", "SELECT min(seq) FROM messages WHERE channel_id = $1");
  // Deletes a range and takes its payload bytes off the channel's running total in
  // the same statement; answers the number of rows deleted. The channel's row is
  // locked first (the DELETE needs its id from `l`): the writer and DELETE of a
  // channel take that row before its messages too, and two orders would deadlock.
  c.prepare("delete_old",
            "WITH l AS (SELECT id FROM channels WHERE id = $1 FOR NO KEY UPDATE), "
            "d AS (DELETE FROM messages WHERE channel_id = (SELECT id FROM l) "
            "AND seq >= $2 AND seq < $3 RETURNING octet_length(payload) AS n), "
            "s AS (SELECT count(*) AS n_rows, coalesce(sum(n), 0) AS n_bytes FROM d), "
            "u AS (UPDATE channels SET bytes = channels.bytes - s.n_bytes FROM s "
            "WHERE channels.id = $1 AND s.n_rows > 0) "
            "SELECT n_rows FROM s");
  c.prepare("register_node",
            "INSERT INTO nodes (name, address, version, started_at, last_seen, websocket, cable, "
            "sse, draining) VALUES ($1, $2, $3, to_timestamp(0) + $4 * interval '1 microsecond', "
            "now(), $5, $6, $7, $8) ON CONFLICT (name) DO UPDATE SET address = excluded.address, "
            "version = excluded.version, started_at = excluded.started_at, last_seen = now(), "
            "websocket = excluded.websocket, cable = excluded.cable, sse = excluded.sse, "
            "draining = excluded.draining");
  c.prepare("list_nodes",
            "SELECT name, address, version, (extract(epoch FROM started_at) * 1000000)::bigint, "
            "(extract(epoch FROM last_seen) * 1000000)::bigint, websocket, cable, sse, draining "
            "FROM nodes WHERE last_seen > now() - make_interval(secs => $1::float8) "
            "ORDER BY name COLLATE \"C\"");
  c.prepare("forget_nodes",
            "DELETE FROM nodes WHERE last_seen < now() - make_interval(secs => $1::float8)");
}

// The least string greater than every string that starts with `prefix`, in byte order:
// the prefix with its last byte raised (bytes 0x7f and up are dropped first, so the
// bound stays valid UTF-8); nullopt when there is none (no prefix, or only such bytes).
std::optional<std::string> prefix_bound(std::string_view prefix) {
  std::string out(prefix);
  while (!out.empty() && static_cast<unsigned char>(out.back()) >= 0x7f) out.pop_back();
  if (out.empty()) return std::nullopt;
  out.back() = static_cast<char>(out.back() + 1);
  return out;
}

constexpr std::int64_t trim_lock_key = 0x5345514341535402;  // "SEQCAST" + 2

channel_info to_info(const pqxx::row& row) {
  return {row[0].as<channel_id>(), row[1].as<std::string>(), row[2].as<std::string>(),
          row[3].as<seq_t>(),      row[4].as<seq_t>(),       {}};
}

// A head row: to_info, the past epochs (column 5) and whether it is stale (column 6).
channel_info to_head(const pqxx::row& row, bool& stale) {
  channel_info info = to_info(row);
  if (!row[5].is_null()) {
    const std::string text = row[5].as<std::string>();
    std::size_t at = 0;
    while (at < text.size()) {
      std::size_t end = text.find(',', at);
      if (end == std::string::npos) end = text.size();
      const std::string_view item(text.data() + at, end - at);
      const auto colon = item.rfind(':');
      if (colon != std::string_view::npos) {
        info.past.push_back(
            {std::string(item.substr(0, colon)), std::stoll(std::string(item.substr(colon + 1)))});
      }
      at = end + 1;
    }
  }
  stale = stale || row[6].as<bool>();
  return info;
}

// Head rows of `query`: rows found on another timeline are rebased first (timeline.hpp),
// then read again, so that no head read answers an epoch that has ended.
template <class Exec>
std::vector<channel_info> read_heads(pqxx::connection& c, Exec&& exec) {
  for (int attempt = 0;; ++attempt) {
    pqxx::nontransaction tx(c);
    bool stale = false;
    std::vector<channel_info> out;
    std::vector<std::int64_t> ids;
    const std::int32_t timeline = current_timeline();
    for (const auto& row : exec(tx, timeline)) {
      bool this_stale = false;
      out.push_back(to_head(row, this_stale));
      if (this_stale) ids.push_back(out.back().id);
      stale = stale || this_stale;
    }
    if (!stale || attempt > 0) return out;
    tx.exec_prepared("rebase", int_array(ids), timeline);
  }
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
    auto heads = read_heads(*impl_->conn, [&](pqxx::nontransaction& tx, std::int32_t timeline) {
      return tx.exec_prepared("channel", name, timeline);
    });
    if (heads.empty()) return error{errc::not_found, "channel not found"};
    return std::move(heads.front());
  });
}

result<std::vector<channel_info>> pg_reader::channels(const std::vector<std::string>& names) {
  return run("read channels", retry::once_if_cut, [&]() -> result<std::vector<channel_info>> {
    text_array arr;
    for (const auto& n : names) arr.add(n);
    const std::string names_array = arr.str();
    return read_heads(*impl_->conn, [&](pqxx::nontransaction& tx, std::int32_t timeline) {
      return tx.exec_prepared("channels", names_array, timeline);
    });
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

result<std::vector<channel_stats>> pg_reader::list_channels(std::string_view prefix,
                                                            std::string_view after,
                                                            std::size_t limit) {
  return run("list channels", retry::once_if_cut, [&]() -> result<std::vector<channel_stats>> {
    pqxx::nontransaction tx(*impl_->conn);
    const std::string p(prefix), a(after);
    const auto n = static_cast<std::int64_t>(limit);
    // A prefix whose bound would drop bytes (non-ASCII at its end) is not bounded by it.
    const auto bound = prefix_bound(prefix);
    const bool bounded = bound && bound->size() == prefix.size();
    auto rows = bounded ? tx.exec_prepared("list_channels_in", a, p, *bound, n)
                        : tx.exec_prepared("list_channels_from", a, p, n);
    std::vector<channel_stats> out;
    out.reserve(rows.size());
    for (const auto& row : rows) {
      channel_stats s{to_info(row), 0, row[5].as<std::int64_t>()};
      s.messages = std::max<std::int64_t>(0, s.info.last_seq - s.info.first_seq + 1);
      out.push_back(std::move(s));
    }
    return out;
  });
}

result<none> pg_reader::register_node(const node_record& n) {
  return run("register node", retry::once_if_cut, [&]() -> result<none> {
    pqxx::nontransaction tx(*impl_->conn);
    tx.exec_prepared("register_node", n.name, n.address, n.version, n.started_at_us, n.websocket,
                     n.cable, n.sse, n.draining);
    return none{};
  });
}

result<std::vector<node_record>> pg_reader::nodes(int window_seconds) {
  return run("list nodes", retry::once_if_cut, [&]() -> result<std::vector<node_record>> {
    pqxx::nontransaction tx(*impl_->conn);
    std::vector<node_record> out;
    for (const auto& row : tx.exec_prepared("list_nodes", window_seconds)) {
      node_record n;
      n.name = row[0].as<std::string>();
      n.address = row[1].as<std::string>();
      n.version = row[2].as<std::string>();
      n.started_at_us = row[3].as<std::int64_t>();
      n.last_seen_us = row[4].as<std::int64_t>();
      n.websocket = row[5].as<std::int64_t>();
      n.cable = row[6].as<std::int64_t>();
      n.sse = row[7].as<std::int64_t>();
      n.draining = row[8].as<bool>();
      out.push_back(std::move(n));
    }
    return out;
  });
}

result<std::int64_t> pg_reader::forget_nodes(int older_than_seconds) {
  return run("forget nodes", retry::once_if_cut, [&]() -> result<std::int64_t> {
    pqxx::nontransaction tx(*impl_->conn);
    return static_cast<std::int64_t>(
        tx.exec_prepared("forget_nodes", older_than_seconds).affected_rows());
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
          seq_t from = first;
          if (auto r = pqxx::nontransaction(c).exec_prepared1("oldest_row", id); !r[0].is_null())
            from = std::min(from, r[0].as<seq_t>());
          for (seq_t lo = from; lo < new_first; lo += batch) {
            auto d = pqxx::nontransaction(c).exec_prepared("delete_old", id, lo,
                                                           std::min(lo + batch, new_first));
            report.messages_deleted += d[0][0].as<std::int64_t>();
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
