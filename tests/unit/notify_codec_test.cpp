// The NOTIFY payload: round trip, splitting under the size limit, tolerance of junk.
#include "notify_codec.hpp"

#include <gtest/gtest.h>

namespace seqcast::storage {
namespace {

TEST(NotifyCodec, RoundTrips) {
  std::vector<channel_advance> in = {{1, "room:1", "abc", 10}, {22, "x", "def", 3}};
  auto payloads = encode_notify(in);
  ASSERT_EQ(payloads.size(), 1u);
  auto out = decode_notify(payloads[0]);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].id, 1);
  EXPECT_EQ(out[0].name, "room:1");
  EXPECT_EQ(out[0].epoch, "abc");
  EXPECT_EQ(out[0].to_seq, 10);
  EXPECT_EQ(out[1].name, "x");
}

TEST(NotifyCodec, SplitsBelowThePostgresLimit) {
  std::vector<channel_advance> in;
  for (int i = 0; i < 500; ++i) in.push_back({i + 1, std::string(200, 'c'), "0123456789abcdef", i});
  auto payloads = encode_notify(in);
  ASSERT_GT(payloads.size(), 1u);
  std::size_t total = 0;
  for (const auto& p : payloads) {
    EXPECT_LT(p.size(), 8000u);
    total += decode_notify(p).size();
  }
  EXPECT_EQ(total, in.size());
}

TEST(NotifyCodec, SkipsMalformedLines) {
  auto out = decode_notify("junk\n1 2 e name\n-1 2 e n\nx 2 e n\n3 4 e\n");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].name, "name");
}

}  // namespace
}  // namespace seqcast::storage
