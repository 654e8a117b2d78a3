// The validating JSON scanner: what it accepts, what it refuses, and the bytes it keeps.
#include "text/json_scan.hpp"

#include <gtest/gtest.h>

namespace seqcast::json {
namespace {

TEST(JsonValidate, AcceptsEveryKindOfValue) {
  for (std::string_view ok : {R"({"b":1, "a":[1,2]})", "[]", "{}", "0", "-0.5e+10", "true", "null",
                              R"("\u00e9\ud83d\ude00\n")", " \t\n[1]\r\n", "\"é😀\""}) {
    EXPECT_EQ(validate(ok, 64), std::nullopt) << ok;
  }
}

TEST(JsonValidate, RefusesMalformedInput) {
  for (std::string_view bad : {"", "{", "[1,]", "{\"a\"}", "01", "1.", "tru", "\"\\x\"",
                               "\"\\ud800\"", "[1] [2]", "{'a':1}", "\"a\nb\"", "nul"}) {
    EXPECT_NE(validate(bad, 64), std::nullopt) << bad;
  }
}

TEST(JsonValidate, RefusesInvalidUtf8) {
  for (std::string_view bad :
       {"\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xe2\x82\"", "\"\xf5\x80\x80\x80\""}) {
    EXPECT_NE(validate(bad, 64), std::nullopt);
  }
}

TEST(JsonValidate, LimitsDepth) {
  const std::string deep(65, '[');
  const std::string ok = std::string(64, '[') + std::string(64, ']');
  EXPECT_EQ(validate(ok, 64), std::nullopt);
  EXPECT_NE(validate(deep + std::string(65, ']'), 64), std::nullopt);
}

TEST(ParseBatch, KeepsDataBytesAndDecodesStrings) {
  std::vector<batch_item> items;
  const std::string body = R"({"messages":[{"channel":"a\u0062","data":{"b":1, "a":[1,2]}},)"
                           R"( {"data" : "x" ,"channel":"c","idempotency_key":"k1","extra":[1]}]})";
  ASSERT_EQ(parse_batch(body, 64, items), std::nullopt);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].channel, "ab");
  EXPECT_EQ(items[0].data, R"({"b":1, "a":[1,2]})");
  EXPECT_FALSE(items[0].idempotency_key);
  EXPECT_EQ(items[1].channel, "c");
  EXPECT_EQ(items[1].data, "\"x\"");
  EXPECT_EQ(items[1].idempotency_key, "k1");
}

TEST(ParseBatch, RefusesWrongShapes) {
  for (std::string_view bad : {"[]", "{}", R"({"messages":[]})", R"({"messages":{}})",
                               R"({"messages":[{"data":1}]})", R"({"messages":[{"channel":"a"}]})",
                               R"({"messages":[{"channel":1,"data":1}]})", R"({"messages":[1]})"}) {
    std::vector<batch_item> items;
    EXPECT_NE(parse_batch(bad, 64, items), std::nullopt) << bad;
  }
}

TEST(AppendString, EscapesControlCharacters) {
  std::string out;
  append_string(out, "a\"b\\c\n\x01");
  EXPECT_EQ(out, R"("a\"b\\c\n\u0001")");
}

}  // namespace
}  // namespace seqcast::json
