// A fresh, migrated database on the test PostgreSQL (SEQCAST_TEST_DATABASE_URL).
#pragma once

#include <string>

#include "database.hpp"

namespace seqcast::test {

// Creates a uniquely named database and migrates it (unless `migrated` is false);
// drops it on destruction. When SEQCAST_TEST_DATABASE_URL is unset, url() is empty
// and tests skip.
class temp_database {
 public:
  explicit temp_database(bool migrated = true);
  ~temp_database();
  temp_database(const temp_database&) = delete;
  temp_database& operator=(const temp_database&) = delete;

  const std::string& url() const { return url_; }
  // Where its seqcast tables are (the default schema).
  storage::database database() const { return {url_}; }
  // Runs one SQL statement (search_path: `schema`) and returns the first column of
  // the first row ("" if none).
  std::string scalar(const std::string& sql, const std::string& schema = "seqcast") const;

 private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

// Replaces the database name in a postgresql:// URL.
std::string with_database(const std::string& url, const std::string& name);

}  // namespace seqcast::test

#define SEQCAST_REQUIRE_DATABASE(db) \
  if ((db).url().empty()) GTEST_SKIP() << "SEQCAST_TEST_DATABASE_URL is not set"
