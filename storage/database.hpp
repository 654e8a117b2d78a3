// Where seqcast's data lives: a PostgreSQL server and the schema of its tables.
#pragma once

#include <string>
#include <string_view>

namespace seqcast::storage {

struct database {
  std::string url;                 // libpq URL (postgresql://…) or key=value conninfo
  std::string schema = "seqcast";  // holds every seqcast table; names the NOTIFY channel
};

// A schema name seqcast accepts: 1–63 characters of a-z 0-9 _, not starting with a
// digit (an identifier PostgreSQL never needs quoted).
bool valid_schema_name(std::string_view name);

// What libpq is given: `db.url` with seqcast's connection defaults (connect timeout,
// keepalives, application_name) unless the URL sets them, and `db.schema` as the
// search_path of every connection — added to the `options` parameter, after any
// options the URL has, so that it holds on every (re)connection.
std::string connection_string(const database& db);

}  // namespace seqcast::storage
