// seqcast's own schema and the transactional publish (migrations/002_outbox.sql)
// against a real database: seqcast.publish() inside an application's transaction,
// commit order, exactly-once moves into the log, errors, and the move of an older
// deployment's tables out of `public`.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <thread>

#include <pqxx/pqxx>

#include "migrator.hpp"
#include "pg_publisher.hpp"
#include "pg_reader.hpp"
#include "support/temp_database.hpp"

namespace seqcast::storage {
namespace {

// An application's connection: its own search_path (public), as a Rails app has.
std::unique_ptr<pqxx::connection> app_connection(const test::temp_database& db) {
  return std::make_unique<pqxx::connection>(db.url());
}

// Moves everything committed to the outbox into the log; returns how many rows moved.
std::size_t move_all(pg_publisher& mover) {
  std::size_t moved = 0;
  for (;;) {
    std::vector<publish_request> none;
    auto out = mover.commit(none, {}, true);
    EXPECT_FALSE(out.failure) << out.failure->message;
    moved += out.outbox_moved;
    if (!out.outbox_more) return moved;
  }
}

std::vector<std::string> log_of(const test::temp_database& db, const std::string& channel) {
  pg_reader reader(db.database());
  auto info = reader.channel(channel);
  if (!info) return {};
  auto rows = reader.read_range(info.value().id, 0, info.value().last_seq, {100000, 1 << 30});
  EXPECT_TRUE(rows) << rows.err().message;
  std::vector<std::string> out;
  for (const auto& m : rows.value()) {
    EXPECT_EQ(m.seq, static_cast<seq_t>(out.size() + 1));
    out.push_back(m.payload);
  }
  return out;
}

TEST(Schema, SeqcastsTablesLiveInTheirSchemaBesideTheAppsOwn) {
  test::temp_database db(false);
  SEQCAST_REQUIRE_DATABASE(db);
  // A chat app's own tables, named as seqcast's are.
  auto app = app_connection(db);
  pqxx::nontransaction(*app).exec(
      "CREATE TABLE channels (id serial PRIMARY KEY, title text);"
      "CREATE TABLE messages (id serial PRIMARY KEY, body text);"
      "INSERT INTO messages (body) VALUES ('hello')");
  migrate(db.database());
  EXPECT_EQ(db.scalar("SELECT count(*) FROM public.messages", "public"), "1");
  EXPECT_EQ(db.scalar("SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM "
                      "information_schema.columns WHERE table_schema = 'public' AND "
                      "table_name = 'messages'",
                      "public"),
            "id,body");
  EXPECT_EQ(db.scalar("SELECT to_regclass('seqcast.messages') IS NOT NULL"), "t");
  EXPECT_EQ(db.scalar("SELECT to_regprocedure('seqcast.publish(text,text,text)') IS NOT NULL"),
            "t");
  pg_publisher pub(db.database());
  std::vector<publish_request> batch{{{{"room:1", "{\"n\":1}", std::nullopt}}}};
  ASSERT_FALSE(pub.commit(batch).outcomes[0].failure);
  EXPECT_EQ(log_of(db, "room:1"), std::vector<std::string>{"{\"n\":1}"});
  EXPECT_EQ(db.scalar("SELECT count(*) FROM public.messages", "public"), "1");
}

TEST(Schema, AnOlderDeploymentsTablesMoveOutOfPublic) {
  test::temp_database db(false);
  SEQCAST_REQUIRE_DATABASE(db);
  // The layout before seqcast had a schema: version 1, in public.
  auto v1 = builtin_migrations();
  v1.resize(1);
  const database legacy{db.url(), "public"};
  migrate(legacy, v1);
  // What a node of that version wrote (this binary's writer needs the current schema).
  db.scalar(
      "WITH c AS (INSERT INTO channels (name, last_seq) VALUES ('room:1', 2) RETURNING id) "
      "INSERT INTO messages (channel_id, seq, ts, payload) "
      "SELECT c.id, s, now(), s::text FROM c, generate_series(1, 2) AS s RETURNING 1",
      "public");
  const auto identity = db.scalar("SELECT id FROM seqcast_identity", "public");
  auto r = migrate(db.database());
  EXPECT_TRUE(r.moved_from_public);
  EXPECT_EQ(r.from_version, 1);
  EXPECT_EQ(r.to_version, latest_version(builtin_migrations()));
  EXPECT_EQ(db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", "public"), "0");
  EXPECT_EQ(db.scalar("SELECT id FROM seqcast_identity"), identity);  // the same database
  EXPECT_EQ(log_of(db, "room:1"), (std::vector<std::string>{"1", "2"}));
  // Migration 003 counted the retained bytes of what was there.
  EXPECT_EQ(db.scalar("SELECT bytes FROM channels WHERE name = 'room:1'"), "2");
  // The moved channel goes on from its head, with its sequence of ids.
  pg_publisher pub(db.database());
  std::vector<publish_request> more{{{{"room:1", "3", std::nullopt}}},
                                    {{{"room:2", "1", std::nullopt}}}};
  auto out = pub.commit(more);
  ASSERT_FALSE(out.outcomes[0].failure) << out.outcomes[0].failure->message;
  EXPECT_EQ(out.outcomes[0].results[0].seq, 3);
  EXPECT_EQ(log_of(db, "room:1"), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(db.scalar("SELECT bytes FROM channels WHERE name = 'room:1'"), "3");
  EXPECT_FALSE(migrate(db.database()).moved_from_public);
}

TEST(Outbox, DeliveredIfAndOnlyIfTheTransactionCommits) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  auto app = app_connection(db);
  {
    pqxx::work tx(*app);
    tx.exec("SELECT seqcast.publish('room:1', '\"rolled back\"')");
    tx.abort();
  }
  {
    pqxx::work tx(*app);
    tx.exec("SELECT seqcast.publish('room:1', '\"first\"')");
    tx.exec("SELECT seqcast.publish('room:1', '{\"second\": [1, 2]}', 'key-2')");
    tx.commit();
  }
  EXPECT_EQ(db.scalar("SELECT count(*) FROM outbox WHERE ticket IS NOT NULL"), "2");
  pg_publisher mover(db.database());
  EXPECT_EQ(move_all(mover), 2u);
  EXPECT_EQ(log_of(db, "room:1"), (std::vector<std::string>{"\"first\"", "{\"second\": [1, 2]}"}));
  EXPECT_EQ(db.scalar("SELECT count(*) FROM outbox"), "0");
  EXPECT_EQ(move_all(mover), 0u);
  // The key is the message's, as for the HTTP API: a retry of the same publish is a no-op.
  {
    pqxx::work tx(*app);
    tx.exec("SELECT seqcast.publish('room:1', '{\"second\": [1, 2]}', 'key-2')");
    tx.commit();
  }
  EXPECT_EQ(move_all(mover), 1u);
  EXPECT_EQ(log_of(db, "room:1").size(), 2u);
}

// An outbox row whose key already names another body can never be published: it is
// dropped (and counted), the rows around it move, and the batch beside it is judged
// after it, in commit order.
TEST(Outbox, ARowReusingAKeyWithAnotherBodyIsDroppedAlone) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  pg_publisher mover(db.database());
  std::vector<publish_request> first(1);
  first[0].items.push_back({"room:k", "\"a\"", "k-a"});
  ASSERT_FALSE(mover.commit(first).failure);
  auto app = app_connection(db);
  {
    pqxx::work tx(*app);
    tx.exec("SELECT seqcast.publish('room:k', '\"b\"')");
    tx.exec("SELECT seqcast.publish('room:k', '\"not a\"', 'k-a')");
    tx.exec("SELECT seqcast.publish('room:k', '\"c\"', 'k-c')");
    tx.commit();
  }
  std::vector<publish_request> batch(2);
  batch[0].items.push_back({"room:k", "\"other c\"", "k-c"});  // the outbox row took k-c
  batch[1].items.push_back({"room:k", "\"d\"", std::nullopt});
  auto out = mover.commit(batch, {}, true);
  ASSERT_FALSE(out.failure);
  EXPECT_EQ(out.outbox_moved, 3u);
  EXPECT_EQ(out.outbox_conflicts, 1u);
  ASSERT_TRUE(out.outcomes[0].failure);
  EXPECT_EQ(out.outcomes[0].failure->code, errc::conflict);
  ASSERT_FALSE(out.outcomes[1].failure);
  EXPECT_EQ(out.outcomes[1].results[0].seq, 4);
  EXPECT_EQ(log_of(db, "room:k"), (std::vector<std::string>{"\"a\"", "\"b\"", "\"c\"", "\"d\""}));
  EXPECT_EQ(db.scalar("SELECT count(*) FROM outbox"), "0");
}

TEST(Outbox, MovedInCommitOrderNotCallOrder) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  auto a = app_connection(db);
  auto b = app_connection(db);
  pqxx::work ta(*a);
  ta.exec("SELECT seqcast.publish('room:1', '\"a (called first, committed second)\"')");
  pqxx::work tb(*b);
  tb.exec("SELECT seqcast.publish('room:1', '\"b (called second, committed first)\"')");
  tb.commit();
  ta.commit();
  pg_publisher mover(db.database());
  EXPECT_EQ(move_all(mover), 2u);
  EXPECT_EQ(log_of(db, "room:1"),
            (std::vector<std::string>{"\"b (called second, committed first)\"",
                                      "\"a (called first, committed second)\""}));
}

TEST(Outbox, ConcurrentRepeatableReadPublishersAllCommitInOrder) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  constexpr int apps = 6, per_app = 40;
  std::vector<std::thread> threads;
  for (int w = 0; w < apps; ++w) {
    threads.emplace_back([&, w] {
      auto c = app_connection(db);
      for (int i = 0; i < per_app; ++i) {
        pqxx::transaction<pqxx::isolation_level::repeatable_read> tx(*c);
        tx.exec(fmt::format("SELECT seqcast.publish('hot', '{{\"w\":{},\"i\":{}}}')", w, i));
        tx.exec(fmt::format("SELECT seqcast.publish('c{}', '{}')", w, i));
        tx.commit();  // a serialization failure here would throw
      }
    });
  }
  // Moved while they publish, by two movers (nodes): one at a time moves.
  std::atomic<bool> done{false};
  std::atomic<std::size_t> moved{0};
  std::vector<std::thread> movers;
  for (int m = 0; m < 2; ++m) {
    movers.emplace_back([&] {
      pg_publisher mover(db.database());
      while (!done) moved += move_all(mover);
      moved += move_all(mover);
    });
  }
  for (auto& t : threads) t.join();
  done = true;
  for (auto& t : movers) t.join();
  EXPECT_EQ(moved.load(), static_cast<std::size_t>(apps * per_app * 2));
  const auto hot = log_of(db, "hot");
  ASSERT_EQ(hot.size(), static_cast<std::size_t>(apps * per_app));
  // Each app's messages in its own order (its transactions commit one after another).
  std::map<int, int> next;
  for (const auto& p : hot) {
    int w = 0, i = 0;
    ASSERT_EQ(std::sscanf(p.c_str(), "{\"w\":%d,\"i\":%d}", &w, &i), 2) << p;
    EXPECT_EQ(i, next[w]++) << p;
  }
  for (int w = 0; w < apps; ++w) EXPECT_EQ(log_of(db, fmt::format("c{}", w)).size(), 40u);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM outbox"), "0");
}

TEST(Outbox, BadInputRaisesWithTheApisErrorCode) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  apply_settings(db.database(), 16);
  auto app = app_connection(db);
  auto error_of = [&](const std::string& call) -> std::string {
    try {
      pqxx::work tx(*app);
      tx.exec("SELECT seqcast.publish(" + call + ")");
      tx.commit();
      return "";
    } catch (const pqxx::sql_error& e) {
      return e.what();
    }
  };
  EXPECT_TRUE(error_of("'room 1', '1'").starts_with("ERROR:  invalid_channel:"));
  EXPECT_TRUE(error_of("'', '1'").starts_with("ERROR:  invalid_channel:"));
  EXPECT_TRUE(error_of("NULL, '1'").starts_with("ERROR:  invalid_channel:"));
  EXPECT_TRUE(error_of(fmt::format("'{}', '1'", std::string(1025, 'a')))
                  .starts_with("ERROR:  invalid_channel:"));
  EXPECT_EQ(error_of(fmt::format("'{}', '1'", std::string(1024, 'a'))), "");
  EXPECT_TRUE(error_of("'c', '{\"a\":'").starts_with("ERROR:  invalid_json:"));
  EXPECT_TRUE(error_of("'c', NULL").starts_with("ERROR:  invalid_json:"));
  EXPECT_TRUE(error_of("'c', '\"12345678901234567\"'").starts_with("ERROR:  payload_too_large:"));
  EXPECT_EQ(error_of("'c', '\"1234567890123\"'"), "");  // exactly 16 bytes
  EXPECT_TRUE(error_of("'c', '1', ''").starts_with("ERROR:  invalid_idempotency_key:"));
  EXPECT_TRUE(error_of("'c', '1', E'a\\nb'").starts_with("ERROR:  invalid_idempotency_key:"));
  EXPECT_EQ(db.scalar("SELECT count(*) FROM outbox"), "2");
}

TEST(Outbox, ACallersTemporaryTablesCannotStandInForOurs) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  db.scalar(
      "CREATE ROLE outbox_app_role NOLOGIN; GRANT USAGE ON SCHEMA seqcast TO "
      "outbox_app_role; SELECT 1",
      "public");
  auto app = app_connection(db);
  {
    pqxx::work tx(*app);
    tx.exec("SET ROLE outbox_app_role");
    // Same names as ours, first on an unqualified search: a temporary table and sequence.
    tx.exec(
        "CREATE TEMP TABLE outbox (id int, channel text, payload text, "
        "idempotency_key text, ticket bigint)");
    tx.exec("CREATE TEMP TABLE settings (name text, value text)");
    tx.exec("INSERT INTO pg_temp.settings VALUES ('max_payload_bytes', '100000000')");
    tx.exec("SELECT seqcast.publish('room:1', '\"mine\"')");
    EXPECT_EQ(tx.exec("SELECT count(*) FROM pg_temp.outbox")[0][0].as<int>(), 0);
    tx.commit();
  }
  EXPECT_EQ(db.scalar("SELECT count(*) FROM outbox WHERE ticket IS NOT NULL"), "1");
  db.scalar("DROP OWNED BY outbox_app_role; DROP ROLE outbox_app_role; SELECT 1", "public");
}

TEST(Outbox, BigRowsMoveInPagesBoundedByBytes) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  apply_settings(db.database(), 2 << 20);
  auto app = app_connection(db);
  constexpr int rows = 24;  // 24 MiB in all: 3 pages of at most 8 MiB
  {
    pqxx::work tx(*app);
    for (int i = 0; i < rows; ++i) {
      tx.exec_params("SELECT seqcast.publish('big', $1)",
                     "\"" + std::string((1 << 20) - 2, static_cast<char>('a' + i)) + "\"");
    }
    tx.commit();
  }
  pg_publisher mover(db.database());
  std::size_t moved = 0, commits = 0;
  for (;;) {
    std::vector<publish_request> none;
    auto out = mover.commit(none, {}, true);
    ASSERT_FALSE(out.failure) << out.failure->message;
    EXPECT_LE(out.outbox_moved, 9u) << "a page holds at most 8 MiB past its first row";
    moved += out.outbox_moved;
    ++commits;
    if (!out.outbox_more) break;
  }
  EXPECT_EQ(moved, static_cast<std::size_t>(rows));
  EXPECT_GE(commits, 3u);
  const auto log = log_of(db, "big");
  ASSERT_EQ(log.size(), static_cast<std::size_t>(rows));
  for (int i = 0; i < rows; ++i) EXPECT_EQ(log[i][1], static_cast<char>('a' + i));
}

TEST(Outbox, PublishRefusesImmediateConstraints) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  auto app = app_connection(db);
  pqxx::work tx(*app);
  tx.exec("SET CONSTRAINTS ALL IMMEDIATE");
  try {
    tx.exec("SELECT seqcast.publish('room:1', '1')");
    FAIL() << "publish under SET CONSTRAINTS ALL IMMEDIATE was accepted";
  } catch (const pqxx::sql_error& e) {
    EXPECT_NE(std::string(e.what()).find("SET CONSTRAINTS ALL IMMEDIATE"), std::string::npos)
        << e.what();
  }
}

TEST(Schema, AnOwnerOfItsSchemaMigratesWithoutTheRightToCreateSchemas) {
  test::temp_database db(false);
  SEQCAST_REQUIRE_DATABASE(db);
  db.scalar(
      "CREATE ROLE seqcast_owner_role LOGIN; CREATE SCHEMA owned AUTHORIZATION "
      "seqcast_owner_role; REVOKE CREATE ON DATABASE " +
          db.scalar("SELECT current_database()", "public") + " FROM PUBLIC; SELECT 1",
      "public");
  std::string url = db.url();
  url.replace(url.find("://") + 3, url.find('@') - url.find("://") - 3, "seqcast_owner_role");
  const database owned{url, "owned"};
  EXPECT_NO_THROW(migrate(owned));
  EXPECT_EQ(db.scalar("SELECT count(*) FROM owned.seqcast_migrations", "public"),
            std::to_string(latest_version(builtin_migrations())));
  db.scalar("DROP SCHEMA owned CASCADE; DROP ROLE seqcast_owner_role; SELECT 1", "public");
}

}  // namespace
}  // namespace seqcast::storage
