// Server frames are exact text; client ops are parsed or refused with a reason.
#include "protocol/frames.hpp"

#include <gtest/gtest.h>

namespace seqcast::protocol {
namespace {

TEST(Frames, MessageSplicesThePayloadRaw) {
  EXPECT_EQ(message("room:1", "e1", 7, 0, R"({"b":1, "a":[1,2]})"),
            R"({"type":"message","channel":"room:1","epoch":"e1","seq":7,)"
            R"("ts":"1970-01-01T00:00:00.000000Z","data":{"b":1, "a":[1,2]}})");
}

TEST(Frames, SubscribedWithAndWithoutEpoch) {
  EXPECT_EQ(subscribed("c", std::nullopt, 0),
            R"({"type":"subscribed","channel":"c","epoch":null,"head":0})");
  EXPECT_EQ(subscribed("c", "e", 5), R"({"type":"subscribed","channel":"c","epoch":"e","head":5})");
}

TEST(Frames, ResetAndError) {
  EXPECT_EQ(reset("c", "e", 41, 50, "truncated", std::make_pair(2, 40)),
            R"({"type":"reset","channel":"c","epoch":"e","first_seq":41,"head":50,)"
            R"("reason":"truncated","missed":[2,40]})");
  EXPECT_EQ(reset("c", "e", 1, 3, "epoch_changed", std::nullopt),
            R"({"type":"reset","channel":"c","epoch":"e","first_seq":1,"head":3,)"
            R"("reason":"epoch_changed","missed":null})");
  EXPECT_EQ(error("forbidden", "no", std::string_view("c")),
            R"({"type":"error","code":"forbidden","message":"no","channel":"c"})");
}

TEST(ParseClientOp, Subscribe) {
  auto op = parse_client_op(R"({"op":"subscribe","channel":"room:1","since":5,"epoch":"e"})", 16);
  auto* s = std::get_if<subscribe_op>(&op);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->channel, "room:1");
  EXPECT_EQ(s->since, 5);
  EXPECT_EQ(s->epoch, "e");
  auto live = parse_client_op(R"({"op":"subscribe","channel":"c"})", 16);
  EXPECT_EQ(std::get<subscribe_op>(live).since, std::nullopt);
}

TEST(ParseClientOp, SubscribeBySignedStreamName) {
  auto op = parse_client_op(
      R"({"op":"subscribe","signed_stream_name":"InJvb206MSI=--ab","since":2})", 16);
  auto* s = std::get_if<subscribe_op>(&op);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->signed_name);
  EXPECT_EQ(s->channel, "InJvb206MSI=--ab");  // verified by the session
  EXPECT_EQ(s->since, 2);
  for (std::string_view bad : {R"({"op":"subscribe","signed_stream_name":7})",
                               R"({"op":"subscribe","signed_stream_name":""})"}) {
    auto e = parse_client_op(bad, 16);
    ASSERT_TRUE(std::holds_alternative<op_error>(e)) << bad;
    EXPECT_EQ(std::get<op_error>(e).code, "invalid_op");
    EXPECT_EQ(std::get<op_error>(e).channel, std::nullopt);
  }
  auto e = parse_client_op(R"({"op":"subscribe","signed_stream_name":"x--y","since":-1})", 16);
  EXPECT_EQ(std::get<op_error>(e).code, "invalid_since");
  EXPECT_EQ(std::get<op_error>(e).channel, std::nullopt) << "an unverified name is never echoed";
}

TEST(ParseClientOp, RefusesBadInput) {
  auto code = [](std::string_view text) {
    auto op = parse_client_op(text, 16);
    auto* e = std::get_if<op_error>(&op);
    return e ? e->code : std::string("ok");
  };
  EXPECT_EQ(code("nope"), "invalid_json");
  EXPECT_EQ(code("[1]"), "invalid_op");
  EXPECT_EQ(code(R"({"op":"dance"})"), "invalid_op");
  EXPECT_EQ(code(R"({"op":"subscribe"})"), "invalid_channel");
  EXPECT_EQ(code(R"({"op":"subscribe","channel":"a b"})"), "invalid_channel");
  EXPECT_EQ(code(R"({"op":"subscribe","channel":"c","since":-1})"), "invalid_since");
  EXPECT_EQ(code(R"({"op":"subscribe","channel":"c","since":"5"})"), "invalid_since");
  EXPECT_EQ(code(std::string(20, '[') + std::string(20, ']')), "invalid_json");
  EXPECT_EQ(code(R"({"op":"ping"})"), "ok");
}

}  // namespace
}  // namespace seqcast::protocol
