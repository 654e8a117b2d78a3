// Applies the SQL migrations carried inside the binary, once each, in order.
#pragma once

#include <string>
#include <vector>

#include "database.hpp"
#include "embedded_file.hpp"

namespace seqcast::storage {

struct migration_report {
  int from_version = 0;            // schema version found
  int to_version = 0;              // schema version now
  bool moved_from_public = false;  // an older deployment's tables moved into db.schema
};

// The migrations built into this binary, parsed from names "NNN_description.sql".
std::vector<embedded_file> builtin_migrations();

// Version of the newest migration in `files` (0 when empty).
int latest_version(const std::vector<embedded_file>& files);

// Brings the database to the newest version: under an advisory lock (so
// nodes starting together don't race), creates db.schema if needed, moves the
// tables of a deployment made before seqcast had its own schema out of `public`
// into it (one transaction), then applies each missing migration in its own
// transaction (with the schema as search_path: the SQL files name no schema) and
// records it in seqcast_migrations. Running it again is a no-op. Throws
// std::runtime_error when the database was migrated by a newer seqcast, or when
// PostgreSQL cannot be reached (startup code: exceptions are fine).
migration_report migrate(const database& db,
                         const std::vector<embedded_file>& files = builtin_migrations());

// Records the node's limits where the database's own code reads them: the
// transactional publish function (`<schema>.publish`) refuses payloads over
// max_payload_bytes, as the HTTP API does. Nodes of one database should agree.
void apply_settings(const database& db, std::int64_t max_payload_bytes);

// The schema version of the database and whether it is the one this binary expects.
struct schema_state {
  int version = 0;
  int expected = 0;
  std::string database_id;  // seqcast_identity.id; empty before the first migration
};
schema_state read_schema_state(const database& db);

// Whether PostgreSQL accepts a connection to `db` now; when it does not, `why`
// says what failed (a server that is down, restarting or failing over).
bool database_reachable(const database& db, std::string& why);

}  // namespace seqcast::storage
