// The PostgreSQL publish path against a real database: gapless seqs under concurrent
// writers, idempotency, atomic batches, NOTIFY of IDs only, migrations.
#include "pg_publisher.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "migrator.hpp"
#include "notify_codec.hpp"
#include "pg_notification_source.hpp"
#include "pg_reader.hpp"
#include "support/temp_database.hpp"

namespace seqcast::storage {
namespace {

publish_request one(std::string channel, std::string payload,
                    std::optional<std::string> key = std::nullopt) {
  publish_request r;
  r.items.push_back({std::move(channel), std::move(payload), std::move(key)});
  return r;
}

// The heads NOTIFYed until `want` channels were heard of (or 10 s passed); each
// payload must fit PostgreSQL's 8,000 bytes. `payloads` counts them.
std::map<std::string, seq_t> notified_heads(pg_notification_source& source, std::size_t want,
                                            std::size_t* payloads = nullptr) {
  std::map<std::string, seq_t> heads;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (heads.size() < want && std::chrono::steady_clock::now() < deadline) {
    auto r = source.drain();
    EXPECT_TRUE(r);
    if (!r) break;
    for (const auto& p : r.value()) {
      EXPECT_LT(p.size(), 8000u);
      if (payloads) ++*payloads;
      for (auto& a : decode_notify(p)) heads[a.name] = a.to_seq;
    }
    if (heads.size() < want)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // poll with a deadline
  }
  return heads;
}

TEST(PgPublisher, GaplessUnderConcurrentWriters) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  constexpr int writers = 6, batches = 60, per_batch = 10;
  std::vector<std::thread> threads;
  std::mutex mutex;
  std::map<std::string, std::vector<seq_t>> seen;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      pg_publisher pub(db.database());
      for (int b = 0; b < batches; ++b) {
        std::vector<publish_request> batch;
        for (int i = 0; i < per_batch; ++i) {
          // Half the messages go to one hot channel, the rest over 20 others,
          // in a different order per writer to provoke lock-order deadlocks.
          std::string ch = i % 2 ? "hot" : fmt::format("c{}", (w * 7 + b + i) % 20);
          batch.push_back(one(ch, fmt::format(R"({{"w":{},"b":{},"i":{}}})", w, b, i)));
        }
        auto out = pub.commit(batch);
        std::lock_guard lock(mutex);
        for (const auto& o : out.outcomes) {
          ASSERT_FALSE(o.failure) << o.failure->message;
          for (const auto& r : o.results) seen[r.channel].push_back(r.seq);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  std::size_t total = 0;
  for (auto& [channel, seqs] : seen) {
    std::sort(seqs.begin(), seqs.end());
    for (std::size_t i = 0; i < seqs.size(); ++i)
      ASSERT_EQ(seqs[i], static_cast<seq_t>(i + 1)) << channel;
    EXPECT_EQ(db.scalar(fmt::format("SELECT last_seq FROM channels WHERE name = '{}'", channel)),
              std::to_string(seqs.size()));
    total += seqs.size();
  }
  EXPECT_EQ(total, static_cast<std::size_t>(writers * batches * per_batch));
  EXPECT_EQ(seen["hot"].size(), static_cast<std::size_t>(writers * batches * per_batch / 2));
  EXPECT_EQ(db.scalar("SELECT count(*) FROM messages"), std::to_string(total));
}

TEST(PgPublisher, PayloadBytesAreKeptExactly) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  pg_publisher pub(db.database());
  const std::string payload = "{\"b\":1,  \"a\":[1,2],\n\"q\":\"\\\"{}\\\\\",\"u\":\"é😀\"}";
  std::vector<publish_request> batch{one("exact", payload)};
  ASSERT_FALSE(pub.commit(batch).outcomes[0].failure);
  pg_reader reader(db.database());
  auto info = reader.channel("exact");
  ASSERT_TRUE(info);
  auto rows = reader.read_range(info.value().id, 0, 10, {10, 1u << 30});
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows.value().size(), 1u);
  EXPECT_EQ(rows.value()[0].payload, payload);
}

TEST(PgPublisher, IdempotencyKeys) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  pg_publisher pub(db.database());
  std::vector<publish_request> first{one("c", "1", "k")};
  auto a = pub.commit(first);
  ASSERT_FALSE(a.outcomes[0].failure);
  EXPECT_FALSE(a.outcomes[0].results[0].duplicate);
  // Retry alone, a duplicate inside one batch, and a reuse with another body.
  std::vector<publish_request> again{one("c", "1", "k"), one("c", "2", "k2"), one("c", "2", "k2"),
                                     one("c", "other", "k")};
  auto b = pub.commit(again);
  ASSERT_FALSE(b.outcomes[0].failure);
  EXPECT_TRUE(b.outcomes[0].results[0].duplicate);
  EXPECT_EQ(b.outcomes[0].results[0].seq, 1);
  EXPECT_EQ(b.outcomes[0].results[0].ts_us, a.outcomes[0].results[0].ts_us);
  EXPECT_EQ(b.outcomes[1].results[0].seq, 2);
  EXPECT_FALSE(b.outcomes[1].results[0].duplicate);
  EXPECT_EQ(b.outcomes[2].results[0].seq, 2);
  EXPECT_TRUE(b.outcomes[2].results[0].duplicate);
  ASSERT_TRUE(b.outcomes[3].failure);
  EXPECT_EQ(b.outcomes[3].failure->code, errc::conflict);
  EXPECT_EQ(db.scalar("SELECT last_seq FROM channels WHERE name = 'c'"), "2");
  EXPECT_EQ(b.committed.size(), 1u);
}

// A refused request takes none of its keys: a later request may use them. Judged
// in order, request by request, as when each came in its own commit.
TEST(PgPublisher, KeyConflictsAreJudgedRequestByRequestInOrder) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  pg_publisher pub(db.database());
  auto pair = [](std::string k1, std::string p1, std::string k2, std::string p2) {
    publish_request r;
    r.items.push_back({"j", std::move(p1), std::move(k1)});
    r.items.push_back({"j", std::move(p2), std::move(k2)});
    return r;
  };
  std::vector<publish_request> batch{
      pair("k1", "1", "k2", "2"),   // published: 1, 2
      one("j", "10", "k1"),         // k1 names "1": refused
      pair("k3", "3", "k3", "33"),  // one key, two bodies in itself: refused
      one("j", "3", "k3"),          // k3 is free (the request above took nothing): 3
      pair("k4", "4", "k1", "x"),   // k1 clashes: refused, and k4 not taken
      one("j", "44", "k4"),         // 4
      one("j", "3", "k3"),          // a repeat of the one published above: 3 again
      one("j", "5"),                // no key: 5
  };
  auto out = pub.commit(batch);
  ASSERT_FALSE(out.failure);
  auto seqs = [&](std::size_t r) {
    std::vector<seq_t> s;
    for (const auto& x : out.outcomes[r].results) s.push_back(x.seq);
    return s;
  };
  EXPECT_EQ(seqs(0), (std::vector<seq_t>{1, 2}));
  for (std::size_t r : {1u, 2u, 4u}) {
    ASSERT_TRUE(out.outcomes[r].failure) << r;
    EXPECT_EQ(out.outcomes[r].failure->code, errc::conflict);
    EXPECT_TRUE(out.outcomes[r].results.empty());
  }
  EXPECT_EQ(seqs(3), (std::vector<seq_t>{3}));
  EXPECT_EQ(seqs(5), (std::vector<seq_t>{4}));
  EXPECT_EQ(seqs(6), (std::vector<seq_t>{3}));
  EXPECT_TRUE(out.outcomes[6].results[0].duplicate);
  EXPECT_EQ(seqs(7), (std::vector<seq_t>{5}));
  EXPECT_EQ(out.committed.size(), 5u);
  EXPECT_EQ(db.scalar("SELECT string_agg(payload, ',' ORDER BY seq) FROM messages"), "1,2,3,44,5");
  EXPECT_EQ(db.scalar("SELECT last_seq || ' ' || bytes FROM channels WHERE name = 'j'"), "5 6");
}

// One commit over many channels: the NOTIFY lines are split into payloads under
// PostgreSQL's 8,000 bytes, and every channel's head is in one of them.
TEST(PgPublisher, ACommitOverManyChannelsSplitsItsNotify) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  pg_notification_source source(db.database());
  ASSERT_TRUE(source.connect());
  pg_publisher pub(db.database());
  constexpr int channels = 300;
  std::vector<publish_request> batch;
  for (int c = 0; c < channels; ++c) {
    // Names up to the 1,024-character limit.
    const std::string name = fmt::format("{}{}", c, std::string(c % 7 == 0 ? 1000 : 150, 'n'));
    batch.push_back(one(name, "1"));
    if (c % 3 == 0) batch.push_back(one(name, "2"));
  }
  ASSERT_FALSE(pub.commit(batch).failure);
  std::size_t payloads = 0;
  auto heads = notified_heads(source, channels, &payloads);
  ASSERT_EQ(heads.size(), static_cast<std::size_t>(channels));
  EXPECT_GT(payloads, 10u);
  for (int c = 0; c < channels; ++c) {
    const std::string name = fmt::format("{}{}", c, std::string(c % 7 == 0 ? 1000 : 150, 'n'));
    EXPECT_EQ(heads[name], c % 3 == 0 ? 2 : 1) << c;
  }
}

TEST(PgPublisher, ConcurrentDuplicatesPublishOnce) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  std::vector<std::thread> threads;
  std::atomic<int> fresh{0};
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&] {
      pg_publisher pub(db.database());
      for (int i = 0; i < 50; ++i) {
        std::vector<publish_request> batch{
            one("dup", fmt::format("{}", i), fmt::format("key{}", i))};
        auto out = pub.commit(batch);
        ASSERT_FALSE(out.outcomes[0].failure);
        EXPECT_EQ(out.outcomes[0].results[0].seq, i + 1);
        if (!out.outcomes[0].results[0].duplicate) ++fresh;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(fresh.load(), 50);
  EXPECT_EQ(db.scalar("SELECT last_seq FROM channels WHERE name = 'dup'"), "50");
}

TEST(PgPublisher, NotifyCarriesIdsNotData) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  pg_notification_source source(db.database());
  ASSERT_TRUE(source.connect());
  pg_publisher pub(db.database());
  std::vector<publish_request> batch{one("big", "\"" + std::string(1 << 20, 'x') + "\""),
                                     one("big", "2"), one("small", "3")};
  auto out = pub.commit(batch);
  ASSERT_FALSE(out.outcomes[0].failure);
  auto heads = notified_heads(source, 2);
  ASSERT_EQ(heads.size(), 2u);
  EXPECT_EQ(heads["big"], 2);
  EXPECT_EQ(heads["small"], 1);
}

TEST(Migrator, SecondRunIsANoOpAndNewerSchemaIsRefused) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  const auto before =
      db.scalar("SELECT string_agg(version || ':' || applied_at, ',') FROM seqcast_migrations");
  auto r = migrate(db.database());
  EXPECT_EQ(r.from_version, r.to_version);
  EXPECT_EQ(
      db.scalar("SELECT string_agg(version || ':' || applied_at, ',') FROM seqcast_migrations"),
      before);
  db.scalar(
      "INSERT INTO seqcast_migrations (version, name) VALUES (999, '999_future.sql') RETURNING 1");
  EXPECT_THROW(migrate(db.database()), std::runtime_error);
}

}  // namespace
}  // namespace seqcast::storage
