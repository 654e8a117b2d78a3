// Action Cable's frames and commands (protocol/cable.hpp).
#include "protocol/cable.hpp"

#include <gtest/gtest.h>

namespace seqcast::protocol::cable {
namespace {

TEST(Cable, SelectsExtJsonThenJsonThenUnsupportedThenNone) {
  EXPECT_EQ(select_subprotocol("actioncable-v1-json, actioncable-v1-ext-json"),
            "actioncable-v1-ext-json");
  EXPECT_EQ(select_subprotocol("actioncable-v1-json,actioncable-unsupported"),
            "actioncable-v1-json");
  EXPECT_EQ(select_subprotocol(" actioncable-unsupported "), "actioncable-unsupported");
  EXPECT_EQ(select_subprotocol("graphql-ws, actioncable-v1-jsonx"), "");
  EXPECT_EQ(select_subprotocol(""), "");
}

TEST(Cable, FramesHaveExactlyTheirMembers) {
  const std::string id = R"({"channel":"Turbo::StreamsChannel","signed_stream_name":"x"})";
  const std::string quoted =
      R"("{\"channel\":\"Turbo::StreamsChannel\",\"signed_stream_name\":\"x\"}")";
  EXPECT_EQ(welcome(), R"({"type":"welcome"})");
  EXPECT_EQ(ping(1796313501), R"({"type":"ping","message":1796313501})");
  EXPECT_EQ(confirm(id), R"({"identifier":)" + quoted + R"(,"type":"confirm_subscription"})");
  EXPECT_EQ(reject(id), R"({"identifier":)" + quoted + R"(,"type":"reject_subscription"})");
  EXPECT_EQ(confirm_history(id), R"({"type":"confirm_history","identifier":)" + quoted + "}");
  EXPECT_EQ(reject_history(id), R"({"type":"reject_history","identifier":)" + quoted + "}");
  EXPECT_EQ(disconnect("server_restart", true),
            R"({"type":"disconnect","reason":"server_restart","reconnect":true})");
  EXPECT_EQ(disconnect("unauthorized", false),
            R"({"type":"disconnect","reason":"unauthorized","reconnect":false})");
  EXPECT_EQ(message_head(id, 3) + "\"a\"" + message_tail(false, "room:1", "e1", 7),
            R"({"identifier":)" + quoted + R"(,"message":"a"})");
  EXPECT_EQ(message_head(id, 3) + "\"a\"" + message_tail(true, "room:1", "e1", 7),
            R"({"identifier":)" + quoted +
                R"(,"message":"a","stream_id":"room:1","epoch":"e1","offset":7})");
}

TEST(Cable, ParsesCommandsAndIgnoresEverythingElse) {
  auto c = parse_command(
      R"({"command":"subscribe","identifier":"{\"channel\":\"$pubsub\"}","history":{"since":17,"streams":{"a:1":{"epoch":"e","offset":5},"bad":{"offset":1},"b":{"epoch":"f"}}}})",
      16);
  EXPECT_EQ(c.type, command::kind::subscribe);
  EXPECT_EQ(c.identifier, R"({"channel":"$pubsub"})");
  ASSERT_TRUE(c.history);
  EXPECT_EQ(c.history->since, 17);
  ASSERT_EQ(c.history->streams.size(), 2u);  // "bad" has no epoch
  EXPECT_EQ(c.history->streams.at("a:1").epoch, "e");
  EXPECT_EQ(c.history->streams.at("a:1").offset, 5);
  EXPECT_EQ(c.history->streams.at("b").offset, 0);
  EXPECT_EQ(parse_command(R"({"command":"unsubscribe","identifier":"x"})", 16).type,
            command::kind::unsubscribe);
  for (const char* junk :
       {R"({"command":"message","identifier":"x","data":"{}"})", R"({"command":"pong"})",
        R"({"command":"subscribe"})", R"({"command":"subscribe","identifier":5})",
        R"({"command":"history","identifier":"x"})", "[1,2]", "{", ""}) {
    EXPECT_EQ(parse_command(junk, 16).type, command::kind::ignored) << junk;
  }
}

TEST(Cable, ReadsTheThreeIdentifierShapes) {
  auto t = parse_identifier(
      R"({"channel":"Turbo::StreamsChannel","signed_stream_name":"abc--00","data_x":1})", 16);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->type, identifier::kind::signed_stream);
  EXPECT_EQ(t->value, "abc--00");
  auto p = parse_identifier(R"({"channel":"$pubsub","signed_stream_name":"s"})", 16);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->type, identifier::kind::signed_stream);
  auto n = parse_identifier(R"({"channel":"$pubsub","stream_name":"room:1"})", 16);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->type, identifier::kind::stream_name);
  EXPECT_EQ(n->value, "room:1");
  for (const char* bad :
       {R"({"channel":"Turbo::StreamsChannel","stream_name":"room:1"})",
        R"({"channel":"ChatChannel","signed_stream_name":"s"})",
        R"({"channel":"$pubsub","signed_stream_name":""})", R"({"channel":"$pubsub"})",
        R"({"signed_stream_name":"s"})", "not json", R"("a string")"}) {
    EXPECT_FALSE(parse_identifier(bad, 16)) << bad;
  }
}

}  // namespace
}  // namespace seqcast::protocol::cable
