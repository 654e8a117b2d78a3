// Commits batches of publish requests to PostgreSQL: gapless seqs, idempotency, one NOTIFY.
#include "pg_publisher.hpp"

#include <poll.h>

#include <chrono>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include "pg_connection.hpp"
#include "sql_array.hpp"

namespace seqcast::storage {

namespace {

// A cached name → id mapping went stale: the channel was deleted (and maybe
// re-created) by another node between our lookup and our lock.
struct stale_channel {};

// Round after round, other nodes committed keys this batch uses.
struct keys_in_flux {};

constexpr std::size_t max_cached_ids = 100'000;

std::int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

void prepare_statements(pqxx::connection& c) {
  c.prepare("create_channels",
            "INSERT INTO channels (name) SELECT n FROM unnest($1::text[]) AS n ORDER BY n "
            "ON CONFLICT (name) DO NOTHING");
  c.prepare("channel_ids", "SELECT id, name FROM channels WHERE name = ANY($1::text[])");
  // The whole group commit, one statement, one round trip (migrations/004_commit_batch.sql).
  c.prepare("commit_batch",
            "SELECT ord, item, state, channel_id, channel, epoch, seq, ts, payload, "
            "idempotency_key, same_payload, outbox_id FROM commit_batch($1::bigint[], "
            "$2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7, $8, $9, $10, "
            "$11::bigint[]) ORDER BY ord");
}

// A socket with something to read while the connection is idle: the server has
// closed it (pg_terminate_backend, a restart, a pooler) and said why. Sending the
// commit on it would fail in a way that looks in doubt.
bool closed_by_server(pqxx::connection& c) {
  pollfd p{c.sock(), POLLIN, 0};
  return c.sock() >= 0 && ::poll(&p, 1, 0) > 0;
}

// One message of a commit as the writer judges it: its channel row, body and key,
// and the message its key already names in the log, if any.
struct judged_item {
  channel_id cid;
  const std::string* payload;
  const std::string* key;  // null: no idempotency key
  bool in_log;
  bool same_payload;
};

// The rule for idempotency keys, applied request by request in commit order: a
// request fails alone if one of its keys names another body in the log, in an
// earlier request that was published, or in itself. Returns the refused requests.
std::vector<bool> judge(const std::vector<std::vector<judged_item>>& requests) {
  std::vector<bool> refused(requests.size(), false);
  std::map<std::pair<channel_id, std::string_view>, std::string_view> published;
  for (std::size_t ri = 0; ri < requests.size(); ++ri) {
    std::map<std::pair<channel_id, std::string_view>, std::string_view> own;
    bool conflict = false;
    for (const auto& it : requests[ri]) {
      if (!it.key) continue;
      const auto k = std::make_pair(it.cid, std::string_view(*it.key));
      const auto earlier = published.find(k);
      const auto [first, inserted] = own.emplace(k, *it.payload);
      conflict = conflict || (it.in_log && !it.same_payload) ||
                 (earlier != published.end() && earlier->second != *it.payload) ||
                 (!inserted && first->second != *it.payload);
    }
    if (conflict) {
      refused[ri] = true;
    } else {
      published.insert(own.begin(), own.end());
    }
  }
  return refused;
}

}  // namespace

struct pg_publisher::impl {
  database db;
  std::unique_ptr<pqxx::connection> conn;
  std::unordered_map<std::string, channel_id> ids;  // name → id of the current row
  bool committing = false;  // COMMIT sent: a failure now leaves the outcome in doubt

  void resolve_ids(const std::set<std::string>& names);
  batch_outcome run(std::vector<publish_request>& batch, const advances_fn& before_commit,
                    bool move_outbox);
};

pg_publisher::pg_publisher(database db) : impl_(std::make_unique<impl>()) {
  impl_->db = std::move(db);
}

pg_publisher::~pg_publisher() = default;

std::optional<error> pg_publisher::ensure_connected() {
  if (impl_->conn && impl_->conn->is_open()) return std::nullopt;
  try {
    impl_->conn = open_connection(impl_->db);
    // A writer cut off in the middle of a transaction must not leave the server
    // holding its locks (channel rows, the outbox mover's) until TCP gives up.
    pqxx::nontransaction(*impl_->conn)
        .exec("SET statement_timeout = '10s'; SET idle_in_transaction_session_timeout = '30s'");
    prepare_statements(*impl_->conn);
    return std::nullopt;
  } catch (...) {
    impl_->conn.reset();
    return classify_current_exception("connect");
  }
}

void pg_publisher::impl::resolve_ids(const std::set<std::string>& names) {
  // Bounded: past the limit the cache starts over (before looking for what is
  // missing, so that every name of this batch is resolved below).
  if (ids.size() > max_cached_ids) ids.clear();
  text_array missing;
  bool any = false;
  for (const auto& n : names) {
    if (!ids.contains(n)) {
      missing.add(n);
      any = true;
    }
  }
  if (!any) return;
  // Committed on its own: a channel row without messages is invisible to
  // readers (last_seq 0 reads as "no channel"), and committing it here keeps
  // the publishing transaction's locks to rows that already exist.
  pqxx::work tx(*conn);
  const std::string arr = missing.str();
  tx.exec_prepared("create_channels", arr);
  for (const auto& row : tx.exec_prepared("channel_ids", arr)) {
    ids[row[1].as<std::string>()] = row[0].as<channel_id>();
  }
  tx.commit();
}

batch_outcome pg_publisher::impl::run(std::vector<publish_request>& batch,
                                      const advances_fn& before_commit, bool move_outbox) {
  committing = false;
  std::set<std::string> names;
  for (const auto& r : batch)
    for (const auto& it : r.items) names.insert(it.channel);
  resolve_ids(names);

  std::vector<std::int64_t> item_ids, item_reqs;
  text_array item_names, item_payloads, item_keys;
  std::vector<std::pair<std::size_t, std::size_t>> items;  // (request, item) per position
  for (std::size_t ri = 0; ri < batch.size(); ++ri) {
    for (std::size_t i = 0; i < batch[ri].items.size(); ++i) {
      const auto& it = batch[ri].items[i];
      item_ids.push_back(ids.at(it.channel));
      item_names.add(it.channel);
      item_payloads.add(it.payload);
      item_keys.add_optional(it.idempotency_key);
      item_reqs.push_back(static_cast<std::int64_t>(ri));
      items.emplace_back(ri, i);
    }
  }
  if (items.empty() && !move_outbox) {
    batch_outcome none;
    none.outcomes.resize(batch.size());
    return none;
  }
  // The hub learns which heads this commit may reach before it is sent, so that
  // the NOTIFY of our own commit does not make it read them back (their seqs are
  // only known once it is done: "up to any").
  if (before_commit && !items.empty()) {
    std::vector<channel_advance> advances;
    for (const auto& n : names)
      advances.push_back({ids.at(n), n, {}, std::numeric_limits<seq_t>::max()});
    before_commit(advances);
  }
  const std::int64_t ts = now_us();
  const std::string a_ids = int_array(item_ids), a_names = item_names.str(),
                    a_payloads = item_payloads.str(), a_keys = item_keys.str(),
                    a_reqs = int_array(item_reqs);
  std::vector<std::int64_t> refused, refused_outbox;

  // Usually one call. One that finds a key reused with another body does nothing
  // and says what the writer needs to judge (judge()); the next call refuses those
  // requests. Keys another node commits meanwhile may ask for another round.
  pqxx::result rows;
  for (int round = 0;; ++round) {
    if (closed_by_server(*conn)) throw pqxx::broken_connection("closed by the server while idle");
    // From here a lost connection leaves the outcome in doubt: the call is the commit.
    committing = true;
    rows = pqxx::nontransaction(*conn).exec_prepared(
        "commit_batch", a_ids, a_names, a_payloads, a_keys, a_reqs, int_array(refused), ts,
        move_outbox, static_cast<std::int64_t>(outbox_page),
        static_cast<std::int64_t>(outbox_page_bytes), int_array(refused_outbox));
    committing = false;
    const std::string state = rows.empty() ? "" : rows[0][2].as<std::string>();
    if (state == "stale") {
      // A cached channel row was deleted (and maybe re-created) by another node:
      // nothing was done; read the ids again and retry.
      for (const auto& n : names) ids.erase(n);
      throw stale_channel{};
    }
    if (state != "judge") break;
    if (round == 3) throw keys_in_flux{};
    // Every message in commit order: outbox rows (requests of one message each),
    // then the batch's requests.
    std::vector<std::vector<judged_item>> reqs, batch_reqs(batch.size());
    std::vector<std::int64_t> outbox_ids;
    std::vector<std::string> outbox_payloads, outbox_keys;
    outbox_payloads.reserve(rows.size());  // no reallocation: judged_item points into them
    outbox_keys.reserve(rows.size());
    for (const auto& row : rows) {
      const auto item = row[1].as<std::size_t>();
      judged_item j{row[3].as<channel_id>(), nullptr, nullptr, !row[6].is_null(),
                    !row[10].is_null() && row[10].as<bool>()};
      if (item == 0) {
        outbox_ids.push_back(row[11].as<std::int64_t>());
        j.payload = &outbox_payloads.emplace_back(row[8].as<std::string>());
        if (!row[9].is_null()) j.key = &outbox_keys.emplace_back(row[9].as<std::string>());
        reqs.push_back({j});
        continue;
      }
      const auto [ri, i] = items.at(item - 1);
      const auto& it = batch[ri].items[i];
      j.payload = &it.payload;
      if (it.idempotency_key) j.key = &*it.idempotency_key;
      batch_reqs[ri].push_back(j);
    }
    std::move(batch_reqs.begin(), batch_reqs.end(), std::back_inserter(reqs));
    const auto verdict = judge(reqs);
    refused.clear();
    refused_outbox.clear();
    for (std::size_t r = 0; r < verdict.size(); ++r) {
      if (!verdict[r]) continue;
      if (r < outbox_ids.size()) {
        refused_outbox.push_back(outbox_ids[r]);
      } else {
        refused.push_back(static_cast<std::int64_t>(r - outbox_ids.size()));
      }
    }
  }

  batch_outcome out;
  out.outcomes.resize(batch.size());
  std::vector<bool> conflicted(batch.size(), false);
  for (const auto& row : rows) {
    const auto item = row[1].as<std::size_t>();
    const auto state = row[2].as<std::string>();
    if (item == 0) {  // an outbox row moved into the log
      ++out.outbox_moved;
      if (state == "conflict") {
        ++out.outbox_conflicts;
      } else if (state == "new") {
        out.committed.push_back(
            {row[3].as<channel_id>(),
             row[4].as<std::string>(),
             row[5].as<std::string>(),
             {row[6].as<seq_t>(), row[7].as<std::int64_t>(), row[8].as<std::string>()}});
      }
      continue;
    }
    const auto [ri, i] = items.at(item - 1);
    if (state == "conflict") {
      conflicted[ri] = true;
      continue;
    }
    auto& it = batch[ri].items[i];
    publish_result res{it.channel, row[6].as<seq_t>(), row[5].as<std::string>(),
                       row[7].as<std::int64_t>(), state != "new"};
    if (state == "new") {
      out.committed.push_back(
          {row[3].as<channel_id>(), it.channel, res.epoch, {res.seq, ts, std::move(it.payload)}});
    }
    out.outcomes[ri].results.push_back(std::move(res));
  }
  for (std::size_t ri = 0; ri < batch.size(); ++ri) {
    if (!conflicted[ri]) continue;
    out.outcomes[ri].results.clear();
    out.outcomes[ri].failure =
        error{errc::conflict, "idempotency key reused with a different body"};
  }
  // Something moved: look again at once (an empty look ends it).
  out.outbox_more = out.outbox_moved > 0;
  return out;
}

batch_outcome pg_publisher::commit(std::vector<publish_request>& batch,
                                   const advances_fn& before_commit, bool move_outbox) {
  // A connection lost before COMMIT was sent wrote nothing (a loss during COMMIT
  // is in doubt, and never retried here), so the batch may go again at once on a
  // new connection. One that had sat idle may just have been cut
  // (pg_terminate_backend, a pooler, a failover); one opened for this attempt, or
  // a second cut, means the server is not reachable now.
  auto may_retry_cut = [&](bool fresh, bool& reconnected) {
    if (impl_->committing || fresh || reconnected) return false;
    reconnected = true;
    return true;
  };
  std::optional<error> failure;
  bool reconnected = false;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const bool fresh = !impl_->conn || !impl_->conn->is_open();
    if (auto e = ensure_connected()) {
      failure = std::move(e);
      break;
    }
    try {
      return impl_->run(batch, before_commit, move_outbox);
    } catch (const pqxx::broken_connection&) {
      failure = classify_current_exception("publish");
      impl_->conn.reset();
      if (!may_retry_cut(fresh, reconnected)) break;
    } catch (const stale_channel&) {
      failure = error{errc::unavailable, "channel changed concurrently; retry"};
    } catch (const keys_in_flux&) {
      failure = error{errc::unavailable, "idempotency keys changed concurrently; retry"};
    } catch (const pqxx::sql_error& e) {
      const std::string state = e.sqlstate();
      failure = classify_current_exception("publish");
      if (is_connection_error(*failure)) {
        impl_->conn.reset();
        if (!may_retry_cut(fresh, reconnected)) break;
        continue;
      }
      // Deadlock or serialization failure: retry the whole batch.
      if (state != "40P01" && state != "40001") break;
    } catch (...) {
      failure = classify_current_exception("publish");
      break;
    }
  }
  if (failure && is_connection_error(*failure)) {
    impl_->conn.reset();
  }
  batch_outcome out;
  out.failure = failure;
  out.outcomes.assign(batch.size(), publish_outcome{failure, {}});
  return out;
}

}  // namespace seqcast::storage
