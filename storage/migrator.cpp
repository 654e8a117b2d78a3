// Applies the SQL migrations carried inside the binary, once each, in order.
#include "migrator.hpp"

#include <fmt/format.h>

#include <charconv>
#include <stdexcept>

#include "pg_connection.hpp"

namespace seqcast::storage {

namespace {

constexpr std::int64_t migration_lock_key = 0x5345514341535401;  // "SEQCAST" + 1

int version_of(std::string_view name) {
  int v = 0;
  auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), v);
  if (ec != std::errc() || p == name.data() || *p != '_') {
    throw std::runtime_error(fmt::format("migration file {} must start with NNN_", name));
  }
  return v;
}

int current_version(pqxx::transaction_base& tx) {
  return tx.exec("SELECT coalesce(max(version), 0) FROM seqcast_migrations")[0][0].as<int>();
}

}  // namespace

int latest_version(const std::vector<embedded_file>& files) {
  int v = 0;
  for (const auto& f : files) v = std::max(v, version_of(f.name));
  return v;
}

// Tables an older seqcast created in `public`, before it had a schema of its own.
constexpr const char* legacy_tables[] = {"seqcast_migrations", "seqcast_identity", "channels",
                                         "messages"};

bool move_from_public(pqxx::connection& conn, const std::string& schema) {
  if (schema == "public") return false;
  pqxx::work tx(conn);
  const bool legacy = tx.exec_params1(
                            "SELECT to_regclass('public.seqcast_migrations') IS NOT NULL AND "
                            "to_regclass(quote_ident($1) || '.seqcast_migrations') IS NULL",
                            schema)[0]
                          .as<bool>();
  if (!legacy) return false;
  for (const char* table : legacy_tables) {
    // Sequences owned by a table's columns, its indexes and constraints move with it.
    tx.exec(fmt::format("ALTER TABLE IF EXISTS public.{} SET SCHEMA {}", table, schema));
  }
  tx.commit();
  return true;
}

migration_report migrate(const database& db, const std::vector<embedded_file>& files) {
  if (!valid_schema_name(db.schema)) {
    throw std::runtime_error(
        fmt::format("database_schema '{}': expected 1-63 of a-z 0-9 _, "
                    "not starting with a digit",
                    db.schema));
  }
  auto conn = open_connection(db);
  const int latest = latest_version(files);
  pqxx::nontransaction(*conn).exec(fmt::format("SELECT pg_advisory_lock({})", migration_lock_key));
  migration_report report;
  // CREATE SCHEMA IF NOT EXISTS needs the right to create schemas even when it
  // exists: a role that was only given its schema must not need it.
  if (!pqxx::nontransaction(*conn)
           .exec_params1("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                         db.schema)[0]
           .as<bool>()) {
    pqxx::nontransaction(*conn).exec(fmt::format("CREATE SCHEMA IF NOT EXISTS {}", db.schema));
  }
  report.moved_from_public = move_from_public(*conn, db.schema);
  pqxx::nontransaction(*conn).exec(
      "CREATE TABLE IF NOT EXISTS seqcast_migrations (version integer PRIMARY KEY, "
      "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
  {
    pqxx::nontransaction tx(*conn);
    report.from_version = report.to_version = current_version(tx);
  }
  if (report.from_version > latest) {
    throw std::runtime_error(
        fmt::format("the database is at schema version {}, newer than this seqcast knows ({}); "
                    "run a newer seqcast or point it at another database",
                    report.from_version, latest));
  }
  for (const auto& f : files) {
    const int v = version_of(f.name);
    if (v <= report.to_version) continue;
    pqxx::work tx(*conn);
    tx.exec(std::string(f.content));
    tx.exec_params("INSERT INTO seqcast_migrations (version, name) VALUES ($1, $2)", v,
                   std::string(f.name));
    tx.commit();
    report.to_version = v;
  }
  pqxx::nontransaction(*conn).exec(
      fmt::format("SELECT pg_advisory_unlock({})", migration_lock_key));
  return report;
}

void apply_settings(const database& db, std::int64_t max_payload_bytes) {
  auto conn = open_connection(db);
  pqxx::work tx(*conn);
  tx.exec_params(
      "INSERT INTO settings (name, value) VALUES ('max_payload_bytes', $1) "
      "ON CONFLICT (name) DO UPDATE SET value = excluded.value WHERE settings.value <> "
      "excluded.value",
      std::to_string(max_payload_bytes));
  tx.commit();
}

schema_state read_schema_state(const database& db) {
  auto conn = open_connection(db);
  pqxx::nontransaction tx(*conn);
  schema_state s;
  s.expected = latest_version(builtin_migrations());
  if (tx.exec("SELECT to_regclass('seqcast_migrations') IS NOT NULL")[0][0].as<bool>()) {
    s.version = current_version(tx);
  }
  if (s.version > 0)
    s.database_id = tx.exec("SELECT id FROM seqcast_identity")[0][0].as<std::string>();
  return s;
}

}  // namespace seqcast::storage

namespace seqcast::storage {
namespace embedded {
std::vector<embedded_file> migrations();  // generated by cmake/embed.cmake
}
std::vector<embedded_file> builtin_migrations() { return embedded::migrations(); }
bool database_reachable(const database& db, std::string& why) {
  try {
    open_connection(db);
    return true;
  } catch (const pqxx::broken_connection& e) {
    why = e.what();
    return false;
  }
}

}  // namespace seqcast::storage
