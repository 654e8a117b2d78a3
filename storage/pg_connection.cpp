// Opening PostgreSQL connections and turning libpqxx exceptions into storage errors.
#include "pg_connection.hpp"

#include <fmt/format.h>

#include <atomic>
#include <exception>

#include "timeline.hpp"
#include "types.hpp"

namespace seqcast::storage {

namespace {

bool is_unavailable_state(const std::string& state) {
  // No SQLSTATE: libpq's own error, not the server's — the connection went away in the
  // middle of a statement ("server closed the connection unexpectedly"), which libpqxx
  // reports as an sql_error rather than a broken_connection.
  if (state.empty()) return true;
  // 08: connection exception; 57P01-03: shutdown, crash, cannot connect now;
  // 57014: statement timeout or cancel; 53: insufficient resources; 25006: a write on
  // a standby (a URL that lets libpq pick any host): another connection may find the
  // primary.
  return state.starts_with("08") || state.starts_with("57P") || state == "57014" ||
         state.starts_with("53") || state == "25006";
}

// The server's timeline (timeline.hpp); 0 on a standby, or where it cannot be read.
std::int32_t read_timeline(pqxx::connection& c) {
  try {
    return pqxx::nontransaction(c)
        .exec1(
            "SELECT CASE WHEN pg_is_in_recovery() THEN 0 ELSE ('x' || "
            "substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::integer END")[0]
        .as<std::int32_t>();
  } catch (const pqxx::broken_connection&) {
    throw;
  } catch (const pqxx::sql_error&) {
    return 0;
  }
}

}  // namespace

std::unique_ptr<pqxx::connection> open_connection(const database& db) {
  auto c = std::make_unique<pqxx::connection>(connection_string(db));
  note_timeline(read_timeline(*c));
  return c;
}

namespace {
std::atomic<std::uint64_t> error_count{0};
}

std::uint64_t pg_errors() { return error_count.load(std::memory_order_relaxed); }

error classify_current_exception(std::string_view what_we_did) {
  error_count.fetch_add(1, std::memory_order_relaxed);
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    return {errc::unavailable, fmt::format("{}: connection lost: {}", what_we_did, e.what())};
  } catch (const pqxx::in_doubt_error& e) {
    return {errc::unavailable,
            fmt::format("{}: commit outcome unknown: {}", what_we_did, e.what())};
  } catch (const pqxx::sql_error& e) {
    auto code = is_unavailable_state(e.sqlstate()) ? errc::unavailable : errc::internal;
    return {code, fmt::format("{}: {} (sqlstate {})", what_we_did, e.what(), e.sqlstate())};
  } catch (const std::exception& e) {
    return {errc::internal, fmt::format("{}: {}", what_we_did, e.what())};
  }
}

bool is_connection_error(const error& e) { return e.code == errc::unavailable; }

}  // namespace seqcast::storage
