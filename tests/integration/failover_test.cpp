// Channels after a failover, against a real PostgreSQL: a row confirmed on another
// server timeline than the one the server is on now is rebased (storage/timeline.hpp)
// by whichever comes first, a publish or a head read, once, and the same way by both.
// (The end-to-end test with a promoted standby is tests/e2e/failover.test.mjs.)
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pg_connection.hpp"
#include "pg_publisher.hpp"
#include "pg_reader.hpp"
#include "support/temp_database.hpp"
#include "timeline.hpp"

namespace seqcast::storage {
namespace {

publish_result publish_one(pg_publisher& pub, const std::string& channel, std::string payload) {
  std::vector<publish_request> batch(1);
  batch[0].items.push_back({channel, std::move(payload), std::nullopt});
  auto out = pub.commit(batch);
  EXPECT_FALSE(out.outcomes.at(0).failure) << out.outcomes[0].failure->message;
  return out.outcomes.at(0).results.at(0);
}

// Makes the row of `channel` look as if it was last confirmed on another timeline:
// what a promoted standby finds (its timeline is one more than the rows').
void from_another_timeline(const test::temp_database& db, const std::string& channel) {
  db.scalar("UPDATE channels SET timeline = timeline + 1000 WHERE name = '" + channel + "'");
}

TEST(Failover, ServersHaveATimelineAndNewRowsRecordIt) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  pg_publisher pub(db.database());
  publish_one(pub, "c", "1");
  ASSERT_GT(current_timeline(), 0);
  EXPECT_EQ(db.scalar("SELECT timeline FROM channels WHERE name = 'c'"),
            std::to_string(current_timeline()));
}

TEST(Failover, APublishRebasesAStaleRowKeepingItsSeqs) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  pg_publisher pub(db.database());
  for (int i = 1; i <= 5; ++i) publish_one(pub, "c", std::to_string(i));
  pg_reader reader(db.database());
  const auto old = reader.channel("c").value();
  EXPECT_TRUE(old.past.empty());
  from_another_timeline(db, "c");

  const auto r = publish_one(pub, "c", "6");
  EXPECT_EQ(r.seq, 6);  // seqs go on: 1..5 are the same messages in the new epoch
  EXPECT_NE(r.epoch, old.epoch);
  EXPECT_EQ(r.epoch, db.scalar("SELECT substr(md5('" + old.epoch + "' || '/' || " +
                               std::to_string(current_timeline()) + "), 1, 16)"));
  const auto now = reader.channel("c").value();
  EXPECT_EQ(now.epoch, r.epoch);
  EXPECT_EQ(now.last_seq, 6);
  ASSERT_EQ(now.past.size(), 1u);
  EXPECT_EQ(now.past[0], (past_epoch{old.epoch, 5}));
  // Once per timeline: the next publish stays in the epoch.
  EXPECT_EQ(publish_one(pub, "c", "7").epoch, r.epoch);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM rewinds"), "1");
}

TEST(Failover, AHeadReadRebasesTooAndBothAgree) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  pg_publisher pub(db.database());
  for (int i = 1; i <= 3; ++i) publish_one(pub, "a", std::to_string(i));
  for (int i = 1; i <= 4; ++i) publish_one(pub, "b", std::to_string(i));
  pg_reader reader(db.database());
  const auto a0 = reader.channel("a").value();
  const auto b0 = reader.channel("b").value();
  from_another_timeline(db, "a");
  from_another_timeline(db, "b");

  // One channel by its head, the other by a batch of heads (a listener's re-read).
  const auto a1 = reader.channel("a").value();
  EXPECT_NE(a1.epoch, a0.epoch);
  EXPECT_EQ(a1.last_seq, 3);
  EXPECT_EQ(a1.past, (std::vector<past_epoch>{{a0.epoch, 3}}));
  const auto heads = reader.channels({"b"}).value();
  ASSERT_EQ(heads.size(), 1u);
  EXPECT_EQ(heads[0].past, (std::vector<past_epoch>{{b0.epoch, 4}}));
  // A publish after the read finds the row rebased already: the same epoch.
  EXPECT_EQ(publish_one(pub, "a", "4").epoch, a1.epoch);
  EXPECT_EQ(publish_one(pub, "b", "5").epoch, heads[0].epoch);

  // A second failover: the row remembers both epochs it left, oldest first.
  from_another_timeline(db, "a");
  const auto a2 = reader.channel("a").value();
  EXPECT_EQ(a2.past, (std::vector<past_epoch>{{a0.epoch, 3}, {a1.epoch, 4}}));
}

TEST(Failover, DeleteTakesTheRewindsWithTheRow) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  pg_publisher pub(db.database());
  publish_one(pub, "c", "1");
  from_another_timeline(db, "c");
  publish_one(pub, "c", "2");
  pg_reader reader(db.database());
  ASSERT_TRUE(reader.delete_channel("c").value());
  EXPECT_EQ(db.scalar("SELECT count(*) FROM rewinds"), "0");
  const auto fresh = publish_one(pub, "c", "1");
  EXPECT_EQ(fresh.seq, 1);
  EXPECT_TRUE(reader.channel("c").value().past.empty());
}

TEST(Failover, AStatementCutByTheServerGoingAwayIsUnavailableNotInternal) {
  // libpq's own error, without SQLSTATE, when the primary dies mid-statement (seen in
  // the soak as a 500 on publish during back-to-back failovers): retried, answered 503.
  try {
    throw pqxx::sql_error("server closed the connection unexpectedly", "COMMIT", nullptr);
  } catch (...) {
    const auto e = classify_current_exception("publish");
    EXPECT_EQ(e.code, errc::unavailable) << e.message;
    EXPECT_TRUE(is_connection_error(e));
  }
  try {
    throw pqxx::sql_error("duplicate key", "INSERT", "23505");
  } catch (...) {
    EXPECT_EQ(classify_current_exception("publish").code, errc::internal);
  }
}

}  // namespace
}  // namespace seqcast::storage
