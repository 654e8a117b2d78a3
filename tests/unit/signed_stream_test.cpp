// Rails-signed stream names: the contract's worked example, keys as turbo-rails derives them,
// forgeries.
#include "auth/signed_stream.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <string>
#include <vector>

#include "auth/jwt.hpp"

namespace seqcast::auth {
namespace {

// Any base64 text with a valid digest, whatever it decodes to.
std::string sign_data(const std::string& data, std::string_view key) {
  std::string hex;
  for (unsigned char b : hmac_sha256(key, data)) hex += fmt::format("{:02x}", b);
  return data + "--" + hex;
}

constexpr std::string_view worked_example =
    "InJvb206MSI=--bff11d45b76e9b980cb31b0eda13d83a55e9f5689a5b7b9fd8fc7936c27123e9";

TEST(SignedStream, MatchesTheContractsWorkedExample) {
  EXPECT_EQ(sign_stream("room:1", "secret"), worked_example);
  EXPECT_EQ(verify_signed_stream(worked_example, "secret"), "room:1");
}

TEST(SignedStream, EncodesNamesAsRubysJsonDump) {
  // UTF-8 raw, '/' not escaped (ActiveSupport 6.1: "café/ü" → ImNhZsOpL8O8Ig==).
  EXPECT_TRUE(sign_stream("caf\xc3\xa9/\xc3\xbc", "k").starts_with("ImNhZsOpL8O8Ig==--"));
  for (const std::string& name : std::vector<std::string>{
           "", "a\"b\\c", "Z2lkOi8vYXBwL1Jvb20vMQ:messages", std::string(1024, 'x')}) {
    EXPECT_EQ(verify_signed_stream(sign_stream(name, "k"), "k"), name) << name;
  }
}

// turbo-rails' default key: PBKDF2(secret_key_base, "turbo/signed_stream_verifier_key",
// 1000, 64 bytes), SHA1 on Rails 6.1; given to seqcast as hex:<its bytes in hex>.
TEST(SignedStream, AcceptsTheDerivedBinaryKeyInItsHexForm) {
  unsigned char key[64];
  const std::string salt = "turbo/signed_stream_verifier_key";
  ASSERT_EQ(PKCS5_PBKDF2_HMAC("secret", 6, reinterpret_cast<const unsigned char*>(salt.data()),
                              static_cast<int>(salt.size()), 1000, EVP_sha1(), sizeof key, key),
            1);
  std::string hex = "hex:";
  for (unsigned char b : key) hex += fmt::format("{:02x}", b);
  ASSERT_TRUE(hex.starts_with("hex:823ead24c9c15d2e"));
  const auto bytes = streams_key(hex);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(bytes->size(), 64u);
  // Signed by ActiveSupport 6.1 with that key (RAILS.md §3.2).
  EXPECT_EQ(
      verify_signed_stream(
          "InJvb206MSI=--b956ba5a8b0168008ead60e89341d0dc90efd5e0443c50b42532908f844ed793", *bytes),
      "room:1");
}

TEST(SignedStream, ReadsTheSettingsForms) {
  EXPECT_EQ(streams_key("plain text"), "plain text");
  EXPECT_EQ(streams_key("hex:00ff41"), std::string("\x00\xff\x41", 3));
  EXPECT_EQ(streams_key("hex:ABcd"), std::string("\xab\xcd", 2));
  for (std::string_view bad : {"hex:", "hex:0", "hex:zz", "hex:0g"}) {
    EXPECT_EQ(streams_key(bad), std::nullopt) << bad;
  }
}

TEST(SignedStream, RefusesForgeriesAndJunk) {
  std::string tampered(worked_example);
  tampered[tampered.size() - 1] = '8';
  EXPECT_EQ(verify_signed_stream(tampered, "secret"), std::nullopt);
  EXPECT_EQ(verify_signed_stream(worked_example, "other key"), std::nullopt);
  EXPECT_EQ(verify_signed_stream(worked_example, ""), std::nullopt);
  // Another name under the same digest.
  std::string swapped(worked_example);
  swapped.replace(0, 12, "InJvb206MiI=");
  EXPECT_EQ(verify_signed_stream(swapped, "secret"), std::nullopt);
  // Signed, but not a JSON string: a number, an object, not base64, not JSON.
  EXPECT_EQ(verify_signed_stream(sign_data("InJvb206MSI=", "k"), "k"), "room:1");
  for (std::string data : {"MTIz", "eyJhIjoxfQ==", "!!!!", "bm90IGpzb24=", "IngiIHk="}) {
    EXPECT_EQ(verify_signed_stream(sign_data(data, "k"), "k"), std::nullopt) << data;
  }
  for (std::string_view junk : {"", "--", "abc", "InJvb206MSI=", "InJvb206MSI=-bff11d45"}) {
    EXPECT_EQ(verify_signed_stream(junk, "secret"), std::nullopt) << junk;
  }
  EXPECT_EQ(verify_signed_stream(std::string(5000, 'A') + std::string(worked_example.substr(12)),
                                 "secret"),
            std::nullopt);
}

}  // namespace
}  // namespace seqcast::auth
