// Opening PostgreSQL connections and turning libpqxx exceptions into storage errors.
// Only storage/pg_*.cpp include this header (it pulls in <pqxx/pqxx>).
#pragma once

#include <memory>
#include <string>

#include <pqxx/pqxx>

#include "database.hpp"
#include "result.hpp"

namespace seqcast::storage {

// Opens a connection to `db` (connection_string: a connect timeout and TCP keepalives,
// so that an unreachable server is noticed in seconds, not minutes; the schema as
// search_path). Throws pqxx::broken_connection when the server cannot be reached.
std::unique_ptr<pqxx::connection> open_connection(const database& db);

// Maps the exception being handled (call from a catch block) to an error:
// connection loss, shutdown and timeouts → unavailable, the rest → internal.
error classify_current_exception(std::string_view what_we_did);

// True when the error means the connection can no longer be used.
bool is_connection_error(const error& e);

}  // namespace seqcast::storage
