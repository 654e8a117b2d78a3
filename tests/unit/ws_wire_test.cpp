#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ws/wire.hpp"

namespace seqcast::ws {
namespace {

// A client frame as a browser sends it: masked with `key`.
std::string client_frame(std::uint8_t first_byte, std::string_view payload,
                         std::string_view key = "\x11\x22\x33\x44") {
  std::string f;
  f += static_cast<char>(first_byte);
  if (payload.size() < 126) {
    f += static_cast<char>(0x80 | payload.size());
  } else if (payload.size() <= 0xFFFF) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(payload.size() >> 8);
    f += static_cast<char>(payload.size() & 0xFF);
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((payload.size() >> (8 * i)) & 0xFF);
  }
  f.append(key);
  for (std::size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ key[i & 3]);
  return f;
}

struct seen {
  event::kind type;
  std::string payload;
  std::uint16_t code;
  bool operator==(const seen&) const = default;
};

std::vector<seen> feed_all(reader& r, std::string bytes) {
  std::vector<seen> out;
  r.feed(std::span<char>(bytes.data(), bytes.size()), [&](const event& e) {
    out.push_back({e.type, std::string(e.payload), e.code});
  });
  return out;
}

TEST(WsWire, AcceptKeyMatchesTheRfcExample) {
  // RFC 6455 §1.3.
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WsWire, ClientKeyMustBeSixteenBytesOfBase64) {
  EXPECT_TRUE(valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_FALSE(valid_client_key(""));
  EXPECT_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25jZQ="));
  EXPECT_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25j!Q=="));
}

TEST(WsWire, HeadersUseTheShortestLength) {
  EXPECT_EQ(encode_header(opcode::text, 0).view(), std::string_view("\x81\x00", 2));
  EXPECT_EQ(encode_header(opcode::text, 125).view(), "\x81\x7D");
  EXPECT_EQ(encode_header(opcode::text, 126).view(), std::string_view("\x81\x7E\x00\x7E", 4));
  EXPECT_EQ(encode_header(opcode::pong, 0xFFFF).view(), std::string_view("\x8A\x7E\xFF\xFF", 4));
  EXPECT_EQ(encode_header(opcode::text, 0x10000).view(),
            std::string_view("\x81\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10));
}

TEST(WsWire, ClosePayloadIsCodeThenReason) {
  EXPECT_EQ(close_payload(1012, "draining"), std::string("\x03\xF4", 2) + "draining");
  EXPECT_EQ(close_payload(1000, std::string(200, 'x')).size(), 125u);
}

TEST(WsWire, Utf8) {
  EXPECT_TRUE(valid_utf8("plain ascii that is longer than eight bytes"));
  EXPECT_TRUE(valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid_utf8("abcdefgh\xE2\x82"));  // truncated
  EXPECT_FALSE(valid_utf8("\xFF"));
}

TEST(WsWire, ReadsWholeFramesAndUnmasks) {
  reader r(1024);
  auto got = feed_all(r, client_frame(0x81, R"({"op":"ping"})") + client_frame(0x89, "hb") +
                             client_frame(0x8A, "") + client_frame(0x82, "\x01\x02"));
  EXPECT_EQ(got, (std::vector<seen>{{event::kind::text, R"({"op":"ping"})", 0},
                                    {event::kind::ping, "hb", 0},
                                    {event::kind::pong, "", 0},
                                    {event::kind::binary, "\x01\x02", 0}}));
  EXPECT_EQ(r.buffered_bytes(), 0u);
}

TEST(WsWire, ReadsAFrameSplitAtEveryByte) {
  const std::string payload(300, 'p');  // a 16-bit length
  const std::string bytes = client_frame(0x81, payload) + client_frame(0x81, "second");
  for (std::size_t cut = 1; cut < bytes.size(); ++cut) {
    reader r(1024);
    auto got = feed_all(r, bytes.substr(0, cut));
    auto rest = feed_all(r, bytes.substr(cut));
    got.insert(got.end(), rest.begin(), rest.end());
    ASSERT_EQ(
        got, (std::vector<seen>{{event::kind::text, payload, 0}, {event::kind::text, "second", 0}}))
        << "cut at " << cut;
    EXPECT_EQ(r.buffered_bytes(), 0u);
  }
}

TEST(WsWire, ReadsOneByteAtATime) {
  const std::string bytes = client_frame(0x01, "frag") + client_frame(0x89, "mid") +
                            client_frame(0x80, "mented") +
                            client_frame(0x88,
                                         "\x03\xE8"
                                         "bye");
  reader r(1024);
  std::vector<seen> got;
  for (char c : bytes) {
    auto part = feed_all(r, std::string(1, c));
    got.insert(got.end(), part.begin(), part.end());
  }
  EXPECT_EQ(got, (std::vector<seen>{{event::kind::ping, "mid", 0},
                                    {event::kind::text, "fragmented", 0},
                                    {event::kind::close, "bye", 1000}}));
  EXPECT_TRUE(r.stopped());
}

TEST(WsWire, CloseWithoutCodeIs1005) {
  reader r(1024);
  EXPECT_EQ(feed_all(r, client_frame(0x88, "")),
            (std::vector<seen>{{event::kind::close, "", 1005}}));
}

std::uint16_t error_code_of(std::string bytes, std::size_t max = 1024) {
  reader r(max);
  auto got = feed_all(r, std::move(bytes));
  if (got.empty() || got.back().type != event::kind::error) return 0;
  EXPECT_TRUE(r.stopped());
  return got.back().code;
}

TEST(WsWire, ProtocolErrors) {
  std::string unmasked = "\x81\x02hi";
  EXPECT_EQ(error_code_of(unmasked), 1002);
  EXPECT_EQ(error_code_of(client_frame(0xC1, "x")), 1002);  // RSV1 without an extension
  EXPECT_EQ(error_code_of(client_frame(0x83, "x")), 1002);  // reserved opcode
  EXPECT_EQ(error_code_of(client_frame(0x09, "x")), 1002);  // fragmented ping
  EXPECT_EQ(error_code_of(client_frame(0x89, std::string(126, 'x'))), 1002);
  EXPECT_EQ(error_code_of(client_frame(0x80, "x")), 1002);  // continuation of nothing
  EXPECT_EQ(error_code_of(client_frame(0x01, "a") + client_frame(0x81, "b")), 1002);
  EXPECT_EQ(error_code_of(client_frame(0x88, "\x03")), 1002);          // one-byte close
  EXPECT_EQ(error_code_of(client_frame(0x88, "\x03\xED")), 1002);      // 1005 may not be sent
  EXPECT_EQ(error_code_of(client_frame(0x88, "\x03\xE8\xFF")), 1007);  // reason not UTF-8
  // A 16-bit length for a 5-byte payload is not minimal.
  EXPECT_EQ(error_code_of(std::string("\x81\xFE\x00\x05", 4) + "kkkk" + "hello"), 1002);
}

TEST(WsWire, InvalidUtf8TextIs1007) {
  EXPECT_EQ(error_code_of(client_frame(0x81, "\xC0\xAF")), 1007);
  // Split inside a character across fragments is fine; the whole message is checked.
  reader r(1024);
  auto got = feed_all(r, client_frame(0x01, "\xE2\x82") + client_frame(0x80, "\xAC"));
  EXPECT_EQ(got, (std::vector<seen>{{event::kind::text, "\xE2\x82\xAC", 0}}));
}

TEST(WsWire, TooBigIsRefusedBeforeItIsBuffered) {
  // Only the header has arrived: the declared length alone decides.
  const std::string big = client_frame(0x81, std::string(2000, 'x'));
  EXPECT_EQ(error_code_of(big.substr(0, 8), 1000), 1009);
  // Fragments count together.
  EXPECT_EQ(error_code_of(client_frame(0x01, std::string(600, 'x')) +
                              client_frame(0x80, std::string(600, 'x')),
                          1000),
            1009);
  // Exactly the limit is accepted.
  reader r(1000);
  auto got = feed_all(r, client_frame(0x81, std::string(1000, 'x')));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload.size(), 1000u);
}

TEST(WsWire, NothingIsReadAfterClose) {
  reader r(1024);
  auto got = feed_all(r, client_frame(0x88, "\x03\xE8") + client_frame(0x81, "late"));
  EXPECT_EQ(got, (std::vector<seen>{{event::kind::close, "", 1000}}));
}

}  // namespace
}  // namespace seqcast::ws
