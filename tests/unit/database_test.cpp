// Tests for storage/database: schema names and what libpq is given.
#include "database.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace seqcast::storage {
namespace {

TEST(Database, SchemaNamesAreUnquotedIdentifiers) {
  for (const std::string& ok :
       std::vector<std::string>{"seqcast", "s", "_x", "app_2", std::string(63, 'a')}) {
    EXPECT_TRUE(valid_schema_name(ok)) << ok;
  }
  for (const char* bad : {"", "Seqcast", "2x", "a-b", "a.b", "a b", "\"x\"", "é"}) {
    EXPECT_FALSE(valid_schema_name(bad)) << bad;
  }
  EXPECT_FALSE(valid_schema_name(std::string(64, 'a')));
}

TEST(Database, UriGetsDefaultsAndTheSchemaAsSearchPath) {
  EXPECT_EQ(connection_string({"postgresql://u@h:5/db", "seqcast"}),
            "postgresql://u@h:5/db?connect_timeout=5&keepalives_idle=10&keepalives_interval=3"
            "&keepalives_count=3&application_name=seqcast&target_session_attrs=read-write&options=-"
            "csearch_path%3Dseqcast");
}

TEST(Database, UriKeepsItsOwnSettingsAndOptions) {
  EXPECT_EQ(connection_string({"postgres://h/db?connect_timeout=2&application_name=app&"
                               "keepalives_idle=1&keepalives_interval=1&keepalives_count=1&"
                               "target_session_attrs=any&options=-c%20statement_timeout%3D5s",
                               "rt"}),
            "postgres://h/db?connect_timeout=2&application_name=app&keepalives_idle=1&"
            "keepalives_interval=1&keepalives_count=1&target_session_attrs=any&"
            "options=-c%20statement_timeout%3D5s%20-csearch_path%3Drt");
  // A multi-host URL (a primary and a standby) is one URL like any other.
  EXPECT_EQ(
      connection_string({"postgresql://a,b/db?target_session_attrs=read-write&"
                         "options=-cx%3D1&connect_timeout=1&keepalives_idle=1&"
                         "keepalives_interval=1&keepalives_count=1&application_name=x",
                         "s"}),
      "postgresql://a,b/db?target_session_attrs=read-write&options=-cx%3D1%20-csearch_path%3Ds"
      "&connect_timeout=1&keepalives_idle=1&keepalives_interval=1&keepalives_count=1&"
      "application_name=x");
}

TEST(Database, KeyValueConninfo) {
  EXPECT_EQ(connection_string({"host=h dbname=d", "seqcast"}),
            "host=h dbname=d connect_timeout=5 keepalives_idle=10 keepalives_interval=3 "
            "keepalives_count=3 application_name=seqcast target_session_attrs=read-write "
            "options='-csearch_path=seqcast'");
  const std::string given =
      "host=h connect_timeout=1 keepalives_idle=1 keepalives_interval=1 keepalives_count=1 "
      "application_name=a target_session_attrs=any ";
  EXPECT_EQ(connection_string({given + "options='-c statement_timeout=5s' dbname=d", "s"}),
            given + "options='-c statement_timeout=5s -csearch_path=s' dbname=d");
  EXPECT_EQ(connection_string({given + "options = -cx=1", "s"}),
            given + "options = '-cx=1 -csearch_path=s'");
  // A password that merely contains "options" is not the options parameter.
  EXPECT_EQ(connection_string({given + "password=options=x", "s"}),
            given + "password=options=x options='-csearch_path=s'");
}

TEST(Database, PgoptionsFromTheEnvironmentAreKept) {
  ::setenv("PGOPTIONS", "-c statement_timeout=5s", 1);
  const auto uri =
      connection_string({"postgresql://h/db?connect_timeout=1&keepalives_idle=1&"
                         "keepalives_interval=1&keepalives_count=1&application_name=a",
                         "s"});
  const auto kv = connection_string({"host=h", "s"});
  ::unsetenv("PGOPTIONS");
  EXPECT_TRUE(uri.ends_with("&options=-c%20statement_timeout%3D5s%20-csearch_path%3Ds")) << uri;
  EXPECT_TRUE(kv.ends_with(" options='-c statement_timeout=5s -csearch_path=s'")) << kv;
}

}  // namespace
}  // namespace seqcast::storage
