// Log reads against a real PostgreSQL: pages bounded by bytes, and reads that survive a
// connection cut (pg_terminate_backend, a pooler restart, a failover).
#include "pg_reader.hpp"

#include <gtest/gtest.h>

#include <string>

#include "pg_publisher.hpp"
#include "support/temp_database.hpp"

namespace seqcast::storage {
namespace {

// Publishes `n` messages of `bytes` payload bytes each to `channel`.
void publish_n(const storage::database& db, const std::string& channel, int n, std::size_t bytes) {
  pg_publisher pub(db);
  std::vector<publish_request> batch;
  for (int i = 0; i < n; ++i) {
    publish_request r;
    std::string payload = "\"" + std::string(bytes - 2, static_cast<char>('a' + i % 26)) + "\"";
    r.items.push_back({channel, std::move(payload), std::nullopt});
    batch.push_back(std::move(r));
  }
  auto out = pub.commit(batch);
  for (const auto& o : out.outcomes) ASSERT_FALSE(o.failure) << o.failure->message;
}

std::string kill_seqcast_backends(const test::temp_database& db) {
  return db.scalar(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE datname = current_database() AND application_name = 'seqcast'");
}

TEST(PgReader, PagesStopAtTheirByteBudgetButAlwaysHoldOneMessage) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  publish_n(db.database(), "big", 10, 1000);
  pg_reader reader(db.database());
  const auto id = reader.channel("big").value().id;
  auto seqs = [&](seq_t after, page_limit limit) {
    std::vector<seq_t> out;
    const auto rows = reader.read_range(id, after, 10, limit);
    for (const auto& m : rows.value()) out.push_back(m.seq);
    return out;
  };
  EXPECT_EQ(seqs(0, {100, 3500}), (std::vector<seq_t>{1, 2, 3}));
  EXPECT_EQ(seqs(0, {100, 3000}), (std::vector<seq_t>{1, 2, 3}));  // exactly full
  EXPECT_EQ(seqs(4, {100, 10}), (std::vector<seq_t>{5}));          // one, however large
  EXPECT_EQ(seqs(0, {2, 1 << 20}), (std::vector<seq_t>{1, 2}));    // the count still counts
  EXPECT_EQ(seqs(8, {100, 1 << 20}), (std::vector<seq_t>{9, 10}));
  EXPECT_TRUE(seqs(10, {100, 1 << 20}).empty());
}

TEST(PgReader, ReadsRightAfterABackendKillSucceed) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  publish_n(db.database(), "cut", 3, 10);
  pg_reader reader(db.database());
  ASSERT_TRUE(reader.channel("cut"));  // the connection is open and idle now
  ASSERT_EQ(kill_seqcast_backends(db), "1");
  auto info = reader.channel("cut");
  ASSERT_TRUE(info) << info.err().message;
  EXPECT_EQ(info.value().last_seq, 3);
  ASSERT_EQ(kill_seqcast_backends(db), "1");
  auto rows = reader.read_range(info.value().id, 0, 3, {});
  ASSERT_TRUE(rows) << rows.err().message;
  EXPECT_EQ(rows.value().size(), 3u);
  ASSERT_EQ(kill_seqcast_backends(db), "1");
  auto heads = reader.channels({"cut"});
  ASSERT_TRUE(heads) << heads.err().message;
  EXPECT_EQ(heads.value().size(), 1u);
}

TEST(PgReader, AnUnreachableServerIsUnavailableNotRetriedForever) {
  pg_reader reader(database{"postgresql://postgres@127.0.0.1:1/none?connect_timeout=2"});
  auto info = reader.channel("x");
  ASSERT_FALSE(info);
  EXPECT_EQ(info.err().code, errc::unavailable);
}

TEST(PgPublisher, ACommitRightAfterABackendKillSucceeds) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  pg_publisher pub(db.database());
  publish_request r;
  r.items.push_back({"cut", "1", std::nullopt});
  std::vector<publish_request> first{r};
  ASSERT_FALSE(pub.commit(first).outcomes[0].failure);
  ASSERT_EQ(kill_seqcast_backends(db), "1");
  std::vector<publish_request> second{r};
  auto out = pub.commit(second);
  ASSERT_FALSE(out.outcomes[0].failure) << out.outcomes[0].failure->message;
  EXPECT_EQ(out.outcomes[0].results[0].seq, 2);
  EXPECT_EQ(db.scalar("SELECT last_seq FROM channels WHERE name = 'cut'"), "2");
}

}  // namespace
}  // namespace seqcast::storage
