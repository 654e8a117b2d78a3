// Commits batches of publish requests to PostgreSQL: gapless seqs, idempotency, one NOTIFY.
#include "pg_publisher.hpp"

#include <chrono>
#include <map>
#include <set>
#include <unordered_map>

#include "notify_codec.hpp"
#include "pg_connection.hpp"
#include "sql_array.hpp"
#include "timeline.hpp"

namespace seqcast::storage {

namespace {

// A cached name → id mapping went stale: the channel was deleted (and maybe
// re-created) by another node between our lookup and our lock.
struct stale_channel {};

constexpr std::size_t max_cached_ids = 100'000;

std::int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

void prepare_statements(pqxx::connection& c) {
  c.prepare("create_channels",
            "INSERT INTO channels (name, timeline) SELECT n, $2 FROM unnest($1::text[]) AS n "
            "ORDER BY n ON CONFLICT (name) DO NOTHING");
  c.prepare("channel_ids", "SELECT id, name FROM channels WHERE name = ANY($1::text[])");
  // The last column: the row must be rebased onto the server's timeline $2 (timeline.hpp)
  // before anything is added to it.
  c.prepare("lock_channels",
            "SELECT id, name, epoch, last_seq, $2 <> 0 AND timeline <> 0 AND timeline <> $2 "
            "FROM channels WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE");
  c.prepare("rebase", rebase_sql);
  c.prepare("find_keys",
            "SELECT k.ord, m.seq, (extract(epoch FROM m.ts) * 1000000)::bigint, "
            "m.payload = k.payload "
            "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) AS k(cid, key, "
            "payload, ord) JOIN messages m ON m.channel_id = k.cid AND m.idempotency_key = k.key");
  // The writes of a commit in one statement (one round trip): the heads and the
  // retained payload bytes move together (migration 003), the rows go in, the
  // advanced heads are NOTIFYed, the outbox rows moved are deleted.
  c.prepare("write",
            "WITH bump AS ("
            " UPDATE channels SET last_seq = v.last, bytes = channels.bytes + v.added"
            " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS v(id, last, added)"
            " WHERE channels.id = v.id),"
            " ins AS ("
            " INSERT INTO messages (channel_id, seq, ts, payload, idempotency_key)"
            " SELECT v.cid, v.seq, to_timestamp(0) + v.us * interval '1 microsecond', v.payload,"
            " v.key FROM unnest($4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::text[])"
            " AS v(cid, seq, us, payload, key)),"
            " moved AS (DELETE FROM outbox WHERE id = ANY($11::bigint[]))"
            " SELECT count(pg_notify($9, n)) FROM unnest($10::text[]) AS n");
  // At most $1 rows and, past the first, $2 bytes of payload: a move of big rows
  // must stay far below the statement timeout, or it would fail for good.
  c.prepare(
      "outbox_peek",
      "SELECT id, channel FROM ("
      " SELECT id, channel, ticket, octet_length(payload) AS len,"
      " sum(octet_length(payload)) OVER (ORDER BY ticket, id) AS upto"
      " FROM (SELECT id, channel, ticket, payload FROM outbox ORDER BY ticket, id LIMIT $1) AS o"
      ") AS p WHERE upto = len OR upto <= $2 ORDER BY ticket, id");
  c.prepare("outbox_lock",
            "SELECT pg_try_advisory_xact_lock(hashtext('seqcast outbox mover ' || "
            "current_schema()))");
  c.prepare("outbox_take",
            "SELECT id, channel, payload, idempotency_key FROM outbox "
            "WHERE id = ANY($1::bigint[]) ORDER BY ticket, id FOR UPDATE");
}

struct locked_channel {
  std::string name;
  std::string epoch;
  seq_t last_seq = 0;
  bool advanced = false;
  std::int64_t added_bytes = 0;  // payload bytes of this commit's new messages
};

// An idempotency key already present in the table.
struct existing_key {
  seq_t seq;
  std::int64_t ts_us;
  bool same_payload;
};

// An idempotency key first used earlier in this batch.
struct batch_key {
  seq_t seq;
  const std::string* payload;
};

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
  tx.exec_prepared("create_channels", arr, current_timeline());
  for (const auto& row : tx.exec_prepared("channel_ids", arr)) {
    ids[row[1].as<std::string>()] = row[0].as<channel_id>();
  }
  tx.commit();
}

batch_outcome pg_publisher::impl::run(std::vector<publish_request>& batch,
                                      const advances_fn& before_commit, bool move_outbox) {
  committing = false;
  // Outbox rows committed by now, read without a lock, so that their channels get
  // rows before the transaction (resolve_ids); the transaction takes those still there.
  std::vector<std::int64_t> peeked;
  std::set<std::string> all_names;
  if (move_outbox) {
    for (const auto& row :
         pqxx::nontransaction(*conn).exec_prepared("outbox_peek", outbox_page, outbox_page_bytes)) {
      peeked.push_back(row[0].as<std::int64_t>());
      all_names.insert(row[1].as<std::string>());
    }
  }
  for (const auto& r : batch)
    for (const auto& it : r.items) all_names.insert(it.channel);
  if (all_names.empty()) {
    batch_outcome none;
    none.outcomes.resize(batch.size());
    return none;
  }
  resolve_ids(all_names);

  pqxx::work tx(*conn);
  std::vector<publish_request> moved;  // outbox rows, as requests of one item each
  std::vector<std::int64_t> moved_ids;
  if (!peeked.empty() && tx.exec_prepared1("outbox_lock")[0].as<bool>()) {
    for (const auto& row : tx.exec_prepared("outbox_take", int_array(peeked))) {
      moved_ids.push_back(row[0].as<std::int64_t>());
      std::optional<std::string> key;
      if (!row[3].is_null()) key = row[3].as<std::string>();
      moved.push_back({{{row[1].as<std::string>(), row[2].as<std::string>(), std::move(key)}}});
    }
  }
  // Every request of this commit: the outbox's first (they committed before any of
  // these publishes is answered), then the batch.
  std::vector<publish_request*> reqs;
  reqs.reserve(moved.size() + batch.size());
  for (auto& r : moved) reqs.push_back(&r);
  for (auto& r : batch) reqs.push_back(&r);
  std::set<std::string> names;
  for (const auto* r : reqs)
    for (const auto& it : r->items) names.insert(it.channel);

  std::vector<std::int64_t> lock_ids;
  for (const auto& n : names) lock_ids.push_back(ids.at(n));
  std::map<channel_id, locked_channel> chans;
  std::vector<std::int64_t> stale;
  const std::int32_t timeline = current_timeline();
  for (const auto& row : tx.exec_prepared("lock_channels", int_array(lock_ids), timeline)) {
    chans[row[0].as<channel_id>()] = {row[1].as<std::string>(), row[2].as<std::string>(),
                                      row[3].as<seq_t>(), false};
    if (row[4].as<bool>()) stale.push_back(row[0].as<channel_id>());
  }
  // After a failover: these continue in a new epoch before this commit adds to them.
  if (!stale.empty()) {
    for (const auto& row : tx.exec_prepared("rebase", int_array(stale), timeline)) {
      chans.at(row[0].as<channel_id>()).epoch = row[1].as<std::string>();
    }
  }
  for (const auto& n : names) {
    auto it = chans.find(ids.at(n));
    if (it == chans.end() || it->second.name != n) {
      ids.erase(n);
      throw stale_channel{};
    }
  }

  // Idempotency keys already committed (the row lock above makes concurrent
  // duplicates wait for each other, so this read sees the winner).
  std::vector<std::optional<existing_key>> existing;
  {
    std::vector<std::int64_t> cids, ords;
    text_array keys, payloads;
    std::size_t ord = 0;
    for (const auto* r : reqs) {
      for (const auto& it : r->items) {
        if (it.idempotency_key) {
          cids.push_back(ids.at(it.channel));
          keys.add(*it.idempotency_key);
          payloads.add(it.payload);
          ords.push_back(static_cast<std::int64_t>(ord));
        }
        ++ord;
      }
    }
    existing.resize(ord);
    if (!cids.empty()) {
      for (const auto& row : tx.exec_prepared("find_keys", int_array(cids), keys.str(),
                                              payloads.str(), int_array(ords))) {
        existing[row[0].as<std::size_t>()] =
            existing_key{row[1].as<seq_t>(), row[2].as<std::int64_t>(), row[3].as<bool>()};
      }
    }
  }

  const std::int64_t ts = now_us();
  batch_outcome out;
  out.outcomes.resize(reqs.size());
  std::map<std::pair<channel_id, std::string>, batch_key> batch_keys;
  std::vector<std::int64_t> row_cid, row_seq, row_ts;
  text_array row_payload, row_key;
  std::vector<std::pair<std::size_t, std::size_t>> new_rows;  // (request, item)

  std::size_t ord0 = 0;
  for (std::size_t ri = 0; ri < reqs.size(); ++ri) {
    auto& req = *reqs[ri];
    auto& outcome = out.outcomes[ri];
    // First pass: refuse the whole request if any key was used with another body.
    std::map<std::pair<channel_id, std::string>, const std::string*> own;
    bool conflict = false;
    for (std::size_t i = 0; i < req.items.size() && !conflict; ++i) {
      const auto& it = req.items[i];
      if (!it.idempotency_key) continue;
      auto k = std::make_pair(ids.at(it.channel), *it.idempotency_key);
      const auto& ex = existing[ord0 + i];
      auto bk = batch_keys.find(k);
      auto [ok, inserted] = own.emplace(k, &it.payload);
      conflict = (ex && !ex->same_payload) ||
                 (bk != batch_keys.end() && *bk->second.payload != it.payload) ||
                 (!inserted && *ok->second != it.payload);
    }
    if (conflict) {
      outcome.failure = error{errc::conflict, "idempotency key reused with a different body"};
      ord0 += req.items.size();
      continue;
    }
    // Second pass: retries get their original position, new items the next seq.
    for (std::size_t i = 0; i < req.items.size(); ++i) {
      auto& it = req.items[i];
      const channel_id cid = ids.at(it.channel);
      auto& ch = chans.at(cid);
      publish_result res{it.channel, 0, ch.epoch, ts, true};
      const auto& ex = existing[ord0 + i];
      std::optional<std::pair<channel_id, std::string>> k;
      if (it.idempotency_key) k.emplace(cid, *it.idempotency_key);
      if (ex) {
        res.seq = ex->seq;
        res.ts_us = ex->ts_us;
      } else if (auto bk = k ? batch_keys.find(*k) : batch_keys.end(); bk != batch_keys.end()) {
        res.seq = bk->second.seq;
      } else {
        res.seq = ++ch.last_seq;
        res.duplicate = false;
        ch.advanced = true;
        ch.added_bytes += static_cast<std::int64_t>(it.payload.size());
        if (k) batch_keys.emplace(*k, batch_key{res.seq, &it.payload});
        row_cid.push_back(cid);
        row_seq.push_back(res.seq);
        row_ts.push_back(ts);
        row_payload.add(it.payload);
        row_key.add_optional(it.idempotency_key);
        new_rows.emplace_back(ri, i);
      }
      outcome.results.push_back(std::move(res));
    }
    ord0 += req.items.size();
  }

  std::vector<std::int64_t> bump_ids, bump_last, bump_bytes;
  std::vector<channel_advance> advances;
  for (const auto& [cid, ch] : chans) {
    if (!ch.advanced) continue;
    bump_ids.push_back(cid);
    bump_last.push_back(ch.last_seq);
    bump_bytes.push_back(ch.added_bytes);
    advances.push_back({cid, ch.name, ch.epoch, ch.last_seq});
  }
  if (!new_rows.empty() || !moved_ids.empty()) {
    text_array notifies;
    for (const auto& payload : encode_notify(advances)) notifies.add(payload);
    tx.exec_prepared("write", int_array(bump_ids), int_array(bump_last), int_array(bump_bytes),
                     int_array(row_cid), int_array(row_seq), int_array(row_ts), row_payload.str(),
                     row_key.str(), db.schema, notifies.str(), int_array(moved_ids));
  }
  if (before_commit && !advances.empty()) before_commit(advances);
  committing = true;
  tx.commit();

  out.outbox_moved = moved.size();
  // A full page, by count or by bytes: look again at once (an empty look ends it).
  out.outbox_more = !moved.empty() && moved.size() == peeked.size();
  out.committed.reserve(new_rows.size());
  for (std::size_t n = 0; n < new_rows.size(); ++n) {
    auto& it = reqs[new_rows[n].first]->items[new_rows[n].second];
    const channel_id cid = row_cid[n];
    out.committed.push_back(
        {cid, it.channel, chans.at(cid).epoch, {row_seq[n], ts, std::move(it.payload)}});
  }
  for (std::size_t i = 0; i < moved.size(); ++i) {
    if (out.outcomes[i].failure) ++out.outbox_conflicts;
  }
  out.outcomes.erase(out.outcomes.begin(),
                     out.outcomes.begin() + static_cast<std::ptrdiff_t>(moved.size()));
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
