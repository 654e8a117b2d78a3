// Channel names, idempotency keys, percent-decoding, query strings and timestamps.
#include "text/names.hpp"

#include <gtest/gtest.h>

namespace seqcast::text {
namespace {

TEST(ValidChannel, FollowsTheContract) {
  EXPECT_TRUE(valid_channel("room:1"));
  EXPECT_TRUE(valid_channel("A-Z_a.z:0@9="));
  EXPECT_TRUE(valid_channel(std::string(1024, 'x')));
  EXPECT_TRUE(valid_channel("Z2lkOi8vYXBwL1Jvb20vMQ:messages/list"));
  EXPECT_FALSE(valid_channel(""));
  EXPECT_FALSE(valid_channel(std::string(1025, 'x')));
  for (std::string_view bad : {"a b", "a\\b", "a%20", "é", "a\n", "a'b", "a;b"}) {
    EXPECT_FALSE(valid_channel(bad)) << bad;
  }
}

TEST(ValidIdempotencyKey, PrintableAsciiUpTo128) {
  EXPECT_TRUE(valid_idempotency_key("k"));
  EXPECT_TRUE(valid_idempotency_key(std::string(128, 'k')));
  EXPECT_FALSE(valid_idempotency_key(""));
  EXPECT_FALSE(valid_idempotency_key(std::string(129, 'k')));
  EXPECT_FALSE(valid_idempotency_key("a\tb"));
  EXPECT_FALSE(valid_idempotency_key("\x7f"));
}

TEST(PercentDecode, DecodesAndRefusesBadEscapes) {
  EXPECT_EQ(percent_decode("room%3A1"), "room:1");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
  EXPECT_EQ(percent_decode("a+b"), "a+b");
  EXPECT_EQ(percent_decode("%4"), std::nullopt);
  EXPECT_EQ(percent_decode("%zz"), std::nullopt);
}

TEST(QueryParam, FindsDecodedValues) {
  EXPECT_EQ(query_param("from=5&limit=10", "limit"), "10");
  EXPECT_EQ(query_param("token=a%2Bb", "token"), "a+b");
  EXPECT_EQ(query_param("a=1", "b"), std::nullopt);
  EXPECT_EQ(query_param("flag", "flag"), "");
}

TEST(ParseUint, OnlyNonNegativeIntegers) {
  EXPECT_EQ(parse_uint("42"), 42);
  EXPECT_EQ(parse_uint("-1"), std::nullopt);
  EXPECT_EQ(parse_uint("1x"), std::nullopt);
  EXPECT_EQ(parse_uint(""), std::nullopt);
  EXPECT_EQ(parse_uint("99999999999999999999"), std::nullopt);
}

TEST(Rfc3339, FormatsUtcWithMicroseconds) {
  EXPECT_EQ(rfc3339(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(rfc3339(1795916132123456), "2026-11-29T01:35:32.123456Z");
  // The cached second is redone when the second changes, either way.
  EXPECT_EQ(rfc3339(1795916132999999), "2026-11-29T01:35:32.999999Z");
  EXPECT_EQ(rfc3339(1795916133000001), "2026-11-29T01:35:33.000001Z");
  EXPECT_EQ(rfc3339(1795916132000000), "2026-11-29T01:35:32.000000Z");
  EXPECT_EQ(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
}

}  // namespace
}  // namespace seqcast::text
