// Log reads against a real PostgreSQL: pages bounded by bytes, and reads that survive a
// connection cut (pg_terminate_backend, a pooler restart, a failover).
#include "pg_reader.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

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

std::vector<std::string> names_of(const std::vector<channel_stats>& page) {
  std::vector<std::string> out;
  for (const auto& s : page) out.push_back(s.info.name);
  return out;
}

TEST(PgReader, ListsChannelsInByteOrderPagedByAfterAndPrefix) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  // Byte order: '/' < digits < upper case < '_' < lower case (a collation such as
  // en_US would put "a" before "B" and ignore the punctuation).
  for (const char* name : {"b", "B", "a", "_", "Z/1", "Z/10", "Z/2", "room:1", "room:10"}) {
    publish_n(db.database(), name, 1, 10);
  }
  pg_reader reader(db.database());
  auto page = [&](std::string_view prefix, std::string_view after, std::size_t limit) {
    auto r = reader.list_channels(prefix, after, limit);
    EXPECT_TRUE(r) << r.err().message;
    return r ? names_of(r.value()) : std::vector<std::string>{};
  };
  EXPECT_EQ(page("", "", 100), (std::vector<std::string>{"B", "Z/1", "Z/10", "Z/2", "_", "a", "b",
                                                         "room:1", "room:10"}));
  EXPECT_EQ(page("", "", 3), (std::vector<std::string>{"B", "Z/1", "Z/10"}));
  EXPECT_EQ(page("", "Z/10", 3), (std::vector<std::string>{"Z/2", "_", "a"}));  // exclusive
  EXPECT_EQ(page("", "Z/0", 2), (std::vector<std::string>{"Z/1", "Z/10"}));     // need not exist
  EXPECT_EQ(page("Z/", "", 100), (std::vector<std::string>{"Z/1", "Z/10", "Z/2"}));
  EXPECT_EQ(page("Z/1", "", 100), (std::vector<std::string>{"Z/1", "Z/10"}));
  EXPECT_EQ(page("Z/1", "Z/1", 100), (std::vector<std::string>{"Z/10"}));
  EXPECT_EQ(page("room:", "a", 100), (std::vector<std::string>{"room:1", "room:10"}));
  EXPECT_EQ(page("room:", "room:10", 100), (std::vector<std::string>{}));
  EXPECT_EQ(page("z", "", 100), (std::vector<std::string>{}));
  // A row without a message (created, never published to) is not listed.
  db.scalar("INSERT INTO channels (name) VALUES ('a0') RETURNING 1");
  EXPECT_EQ(page("a", "", 100), (std::vector<std::string>{"a"}));
}

TEST(PgReader, ListingManyChannelsWalksTheNameIndexNotTheLog) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  // 20,000 channels of 1,000,000 messages each, as far as their rows say (the log
  // itself stays empty: a listing that read it would be wrong, not just slow).
  db.scalar(
      "WITH i AS (INSERT INTO channels (name, last_seq, first_seq, bytes) "
      "SELECT 'load:' || lpad(g::text, 6, '0'), 1000000, 1, 64000000 "
      "FROM generate_series(1, 20000) AS g RETURNING 1) SELECT count(*) FROM i");
  db.scalar("ANALYZE channels");
  // The shape of pg_reader's list_channels_in, planned as the server plans it.
  const auto plan = db.scalar(
      "EXPLAIN (FORMAT JSON) SELECT id, name, epoch, first_seq, last_seq, bytes FROM channels "
      "WHERE name COLLATE \"C\" > 'load:010000' AND name COLLATE \"C\" >= 'load:' "
      "AND name COLLATE \"C\" < 'load;' AND last_seq > 0 ORDER BY name COLLATE \"C\" LIMIT 101");
  EXPECT_NE(plan.find("channels_name_bytes"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("messages"), std::string::npos) << plan;

  pg_reader reader(db.database());
  const auto started = std::chrono::steady_clock::now();
  std::string after;
  std::size_t pages = 0, seen = 0;
  for (;; ++pages) {
    auto page = reader.list_channels("load:", after, 1000);
    ASSERT_TRUE(page) << page.err().message;
    if (page.value().empty()) break;
    EXPECT_EQ(page.value().front().messages, 1000000);
    seen += page.value().size();
    after = page.value().back().info.name;
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  EXPECT_EQ(seen, 20000u);
  EXPECT_EQ(pages, 20u);
  // Generous: a shared 2-core machine; a scan of the log per page would not get near.
  EXPECT_LT(ms, 10000) << "paging 20,000 channels took " << ms << " ms";
  RecordProperty("list_20000_channels_ms", static_cast<int>(ms));
}

TEST(PgReader, ChannelBytesFollowPublishesAndRetention) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  publish_n(db.database(), "vol", 10, 100);  // 10 payloads of 100 bytes
  {
    // A batch: two items in one request, one of them multibyte UTF-8 (bytes, not chars).
    pg_publisher pub(db.database());
    publish_request r;
    r.items.push_back({"vol", "\"\\u00e9\"", std::nullopt});   // 8 bytes: a JSON escape
    r.items.push_back({"vol", "\"\xc3\xa9\"", std::nullopt});  // 4 bytes: "é"
    std::vector<publish_request> batch{r};
    ASSERT_FALSE(pub.commit(batch).outcomes[0].failure);
    // A retry under an idempotency key adds nothing.
    publish_request k;
    k.items.push_back({"vol", "[1]", "key-1"});
    std::vector<publish_request> once{k}, again{k};
    ASSERT_FALSE(pub.commit(once).outcomes[0].failure);
    ASSERT_TRUE(pub.commit(again).outcomes[0].results[0].duplicate);
  }
  pg_reader reader(db.database());
  auto stats = [&] {
    auto r = reader.list_channels("vol", "", 1);
    EXPECT_TRUE(r && r.value().size() == 1);
    return r.value().front();
  };
  EXPECT_EQ(stats().messages, 13);
  EXPECT_EQ(stats().bytes, 1000 + 8 + 4 + 3);
  EXPECT_EQ(db.scalar("SELECT sum(octet_length(payload)) FROM messages"), "1015");

  // Keep the newest 4: seqs 10..13 (one 100-byte payload and the three small ones).
  auto t = reader.trim(4, 0, 2);  // batches of 2 rows: several deletes
  ASSERT_TRUE(t) << t.err().message;
  EXPECT_EQ(t.value().messages_deleted, 9);
  EXPECT_EQ(stats().info.first_seq, 10);
  EXPECT_EQ(stats().messages, 4);
  EXPECT_EQ(stats().bytes, 100 + 8 + 4 + 3);
  EXPECT_EQ(db.scalar("SELECT sum(octet_length(payload)) FROM messages"), "115");

  // Everything older than 0 s goes: the channel keeps its head, with nothing retained.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_TRUE(reader.trim(0, 1, 100));
  EXPECT_EQ(stats().messages, 0);
  EXPECT_EQ(stats().bytes, 0);
  EXPECT_EQ(stats().info.last_seq, 13);
}

// Retention and DELETE of the same channel at once: both lock the channel's row before
// its messages, so neither deadlocks the other (a deadlock would answer DELETE 500 or stop
// the trim). A third transaction holds the oldest message so that both are in flight.
TEST(PgReader, RetentionAndDeleteOfOneChannelDoNotDeadlock) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  {
    pg_publisher pub(db.database());
    std::vector<publish_request> batch(10);
    for (auto& r : batch) r.items.push_back({"dl", "1", std::nullopt});
    ASSERT_FALSE(pub.commit(batch).failure);
  }
  pqxx::connection holder(db.url());
  pqxx::work pin(holder);
  pin.exec(
      "SELECT 1 FROM seqcast.messages WHERE seq = 1 AND channel_id = "
      "(SELECT id FROM seqcast.channels WHERE name = 'dl') FOR UPDATE");
  auto waiting = [&](int n) {  // until n sessions wait on a lock (or 10 s)
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (std::stoi(db.scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                              "'Lock' AND datname = current_database()")) >= n)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // poll with a deadline
    }
    return false;
  };
  pg_reader trimmer(db.database()), deleter(db.database());
  result<trim_report> trimmed = error{errc::internal, "not run"};
  result<bool> deleted = error{errc::internal, "not run"};
  std::thread trim([&] { trimmed = trimmer.trim(2, 0, 100); });
  ASSERT_TRUE(waiting(1));
  std::thread del([&] { deleted = deleter.delete_channel("dl"); });
  ASSERT_TRUE(waiting(2));
  pin.commit();
  trim.join();
  del.join();
  ASSERT_TRUE(trimmed) << trimmed.err().message;
  EXPECT_EQ(trimmed.value().messages_deleted, 8);
  ASSERT_TRUE(deleted) << deleted.err().message;
  EXPECT_TRUE(deleted.value());
  EXPECT_EQ(db.scalar("SELECT count(*) FROM messages"), "0");
}

// A delete batch that failed after first_seq was raised leaves rows below first_seq;
// the channel's next trim deletes them, and their bytes.
TEST(PgReader, RowsLeftBelowFirstSeqGoAtTheNextTrim) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  {
    pg_publisher pub(db.database());
    std::vector<publish_request> batch(10);
    for (auto& r : batch) r.items.push_back({"left", "12", std::nullopt});
    ASSERT_FALSE(pub.commit(batch).failure);
  }
  // As after a failed pass: first_seq raised to 5, rows 1..4 still there.
  db.scalar("UPDATE channels SET first_seq = 5 WHERE name = 'left' RETURNING 1");
  pg_reader reader(db.database());
  auto t = reader.trim(3, 0, 2);
  ASSERT_TRUE(t) << t.err().message;
  EXPECT_EQ(t.value().messages_deleted, 7);
  EXPECT_EQ(db.scalar("SELECT string_agg(seq::text, ',' ORDER BY seq) FROM messages"), "8,9,10");
  EXPECT_EQ(db.scalar("SELECT first_seq || ' ' || bytes FROM channels WHERE name = 'left'"), "8 6");
}

TEST(PgReader, NodesSeenWithinTheWindowAreListed) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  pg_reader reader(db.database());
  node_record blue{"blue:8080", "http://10.0.0.1:8080", "0.1.0", 1'700'000'000'000'000, 0, 3, 2, 1,
                   false};
  node_record green = blue;
  green.name = "green:8080";
  green.websocket = 0;
  ASSERT_TRUE(reader.register_node(blue));
  ASSERT_TRUE(reader.register_node(green));
  blue.draining = true;
  blue.websocket = 1;
  ASSERT_TRUE(reader.register_node(blue));  // a refresh, not a second row
  auto listed = reader.nodes(30);
  ASSERT_TRUE(listed) << listed.err().message;
  ASSERT_EQ(listed.value().size(), 2u);
  const auto& b = listed.value()[0];
  EXPECT_EQ(b.name, "blue:8080");
  EXPECT_EQ(b.address, "http://10.0.0.1:8080");
  EXPECT_EQ(b.started_at_us, 1'700'000'000'000'000);
  EXPECT_GT(b.last_seen_us, b.started_at_us);
  EXPECT_EQ(b.websocket, 1);
  EXPECT_EQ(b.cable, 2);
  EXPECT_EQ(b.sse, 1);
  EXPECT_TRUE(b.draining);
  EXPECT_EQ(listed.value()[1].name, "green:8080");
  // Seen 40 s ago: out of a 30 s window, kept until forgotten.
  db.scalar(
      "UPDATE nodes SET last_seen = now() - interval '40 seconds' "
      "WHERE name = 'green:8080' RETURNING 1");
  ASSERT_EQ(reader.nodes(30).value().size(), 1u);
  EXPECT_EQ(reader.forget_nodes(35).value(), 1);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM nodes"), "1");
}

}  // namespace
}  // namespace seqcast::storage
