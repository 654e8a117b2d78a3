// Applies the SQL migrations carried inside the binary, once each, in order.
#pragma once

#include <string>
#include <vector>

#include "embedded_file.hpp"

namespace seqcast::storage {

struct migration_report {
  int from_version = 0;  // schema version found
  int to_version = 0;    // schema version now
};

// The migrations built into this binary, parsed from names "NNN_description.sql".
std::vector<embedded_file> builtin_migrations();

// Version of the newest migration in `files` (0 when empty).
int latest_version(const std::vector<embedded_file>& files);

// Brings the database to the newest version: under an advisory lock (so
// nodes starting together don't race), applies each missing migration in its
// own transaction and records it in seqcast_migrations. Running it again is a
// no-op. Throws std::runtime_error when the database was migrated by a newer
// seqcast, or when PostgreSQL cannot be reached (startup code: exceptions are fine).
migration_report migrate(const std::string& database_url,
                         const std::vector<embedded_file>& files = builtin_migrations());

// The schema version of the database and whether it is the one this binary expects.
struct schema_state {
  int version = 0;
  int expected = 0;
  std::string database_id;  // seqcast_identity.id; empty before the first migration
};
schema_state read_schema_state(const std::string& database_url);

// Whether PostgreSQL accepts a connection at `database_url` now; when it does not,
// `why` says what failed (a server that is down, restarting or failing over).
bool database_reachable(const std::string& database_url, std::string& why);

}  // namespace seqcast::storage
