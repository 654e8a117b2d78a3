// A fresh, migrated database on the test PostgreSQL.
#include "support/temp_database.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include <pqxx/pqxx>

#include "migrator.hpp"

namespace seqcast::test {

std::string with_database(const std::string& url, const std::string& name) {
  // postgresql://user@host:port/db?params
  auto scheme = url.find("://");
  auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  auto query = url.find('?');
  std::string base = slash == std::string::npos ? url.substr(0, query) : url.substr(0, slash);
  std::string params = query == std::string::npos ? "" : url.substr(query);
  return base + "/" + name + params;
}

temp_database::temp_database(bool migrated) {
  const char* admin = std::getenv("SEQCAST_TEST_DATABASE_URL");
  if (admin == nullptr || *admin == '\0') return;
  static std::atomic<int> counter{0};
  admin_url_ = admin;
  name_ = fmt::format("seqcast_test_{}_{}", getpid(), counter++);
  pqxx::connection c(admin_url_);
  pqxx::nontransaction(c).exec(fmt::format("DROP DATABASE IF EXISTS {}", name_));
  pqxx::nontransaction(c).exec(fmt::format("CREATE DATABASE {}", name_));
  url_ = with_database(admin_url_, name_);
  if (migrated) storage::migrate(database());
}

temp_database::~temp_database() {
  if (name_.empty()) return;
  try {
    pqxx::connection c(admin_url_);
    pqxx::nontransaction(c).exec(fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)", name_));
  } catch (...) {
    // A leftover test database is harmless; the cluster is temporary.
  }
}

std::string temp_database::scalar(const std::string& sql, const std::string& schema) const {
  // Not named "seqcast": tests terminate the backends of that name.
  const std::string url =
      url_ + (url_.find('?') == std::string::npos ? "?" : "&") + "application_name=seqcast-test";
  pqxx::connection c(storage::connection_string({url, schema}));
  auto r = pqxx::nontransaction(c).exec(sql);
  if (r.empty() || r[0][0].is_null()) return "";
  return r[0][0].as<std::string>();
}

}  // namespace seqcast::test
