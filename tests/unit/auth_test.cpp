// Keys, JWTs and origins: who may publish, administer, read and subscribe.
#include <gtest/gtest.h>

#include "auth/authenticator.hpp"
#include "auth/jwt.hpp"

namespace seqcast::auth {
namespace {

constexpr std::int64_t now = 1'800'000'000;

TEST(Base64url, RoundTripsAndRefusesJunk) {
  for (const std::string& s :
       std::vector<std::string>{"", "f", "fo", "foo", "foob", std::string("\xff\x00\x01", 3)}) {
    EXPECT_EQ(base64url_decode(base64url_encode(s)), s);
  }
  EXPECT_EQ(base64url_decode("a+b"), std::nullopt);
}

TEST(Jwt, AcceptsAValidTokenAndReadsClaims) {
  auto t = sign_hs256(R"({"channels":["room:*","news"],"exp":1800000100})", "s3cret");
  auto c = verify_hs256(t, "s3cret", now);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->channels, (std::vector<std::string>{"room:*", "news"}));
  EXPECT_EQ(c->exp, 1800000100);
}

TEST(Jwt, RefusesExpiredWrongSecretNoneAlgAndJunk) {
  EXPECT_FALSE(verify_hs256(sign_hs256(R"({"exp":1799999999})", "k"), "k", now));
  EXPECT_FALSE(verify_hs256(sign_hs256(R"({"nbf":1800000100})", "k"), "k", now));
  EXPECT_FALSE(verify_hs256(sign_hs256(R"({"channels":["a"]})", "k"), "other", now));
  // alg "none" with an empty signature, and HS256 claims re-labelled as none.
  const std::string none = base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." +
                           base64url_encode(R"({"channels":["*"]})") + ".";
  EXPECT_FALSE(verify_hs256(none, "k", now));
  auto good = sign_hs256(R"({"channels":["a"]})", "k");
  EXPECT_TRUE(verify_hs256(good, "k", now));
  auto tampered = good;
  tampered[tampered.find('.') + 2] ^= 1;
  EXPECT_FALSE(verify_hs256(tampered, "k", now));
  for (std::string_view junk : {"", "a", "a.b", "a.b.c", "..", "x.y.z.w"}) {
    EXPECT_FALSE(verify_hs256(junk, "k", now)) << junk;
  }
  EXPECT_FALSE(verify_hs256(sign_hs256(R"({"channels":"a"})", "k"), "k", now));
  EXPECT_FALSE(verify_hs256(sign_hs256(R"({"exp":"soon"})", "k"), "k", now));
  // Out-of-range times saturate instead of wrapping.
  EXPECT_FALSE(verify_hs256(sign_hs256(R"({"nbf":1e300})", "k"), "k", now));
  EXPECT_FALSE(verify_hs256(sign_hs256(R"({"nbf":18446744073709551615})", "k"), "k", now));
  EXPECT_TRUE(verify_hs256(sign_hs256(R"({"exp":1e300})", "k"), "k", now));
  EXPECT_TRUE(verify_hs256(sign_hs256(R"({"exp":18446744073709551615})", "k"), "k", now));
}

TEST(Authenticator, OpenWhenNothingIsConfigured) {
  config c;
  authenticator a(c);
  EXPECT_EQ(a.publish(""), verdict::allowed);
  EXPECT_EQ(a.admin(""), verdict::allowed);
  ASSERT_TRUE(a.read("", std::nullopt));
  EXPECT_TRUE(a.read("", std::nullopt)->may_read("anything"));
  EXPECT_TRUE(a.origin_allowed("https://evil.example"));
}

TEST(Authenticator, PublishAndAdminKeys) {
  config c;
  c.publish_keys = {"old", "new"};
  c.admin_key = "root";
  authenticator a(c);
  EXPECT_EQ(a.publish(""), verdict::unauthorized);
  EXPECT_EQ(a.publish("Bearer nope"), verdict::unauthorized);
  EXPECT_EQ(a.publish("Bearer old"), verdict::allowed);
  EXPECT_EQ(a.publish("bearer new"), verdict::allowed);
  EXPECT_EQ(a.publish("Bearer root"), verdict::allowed);
  EXPECT_EQ(a.publish("Basic old"), verdict::unauthorized);
  EXPECT_EQ(a.admin("Bearer old"), verdict::forbidden);
  EXPECT_EQ(a.admin("Bearer nope"), verdict::unauthorized);
  EXPECT_EQ(a.admin("Bearer root"), verdict::allowed);
}

TEST(Authenticator, ReadersNeedATokenForTheirChannels) {
  config c;
  c.jwt_secret = "k";
  c.admin_key = "root";
  authenticator a(c);
  EXPECT_FALSE(a.read("", std::nullopt));
  EXPECT_FALSE(a.read("Bearer junk", std::nullopt));
  auto t = sign_hs256(R"({"channels":["room:*","news"]})", "k");
  auto r = a.read("", std::string_view(t));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->may_read("room:1"));
  EXPECT_TRUE(r->may_read("room:"));
  EXPECT_TRUE(r->may_read("news"));
  EXPECT_FALSE(r->may_read("newsroom"));
  EXPECT_FALSE(r->may_read("other"));
  auto admin = a.read("Bearer root", std::nullopt);
  ASSERT_TRUE(admin);
  EXPECT_TRUE(admin->may_read("other"));
  EXPECT_TRUE(a.read("", std::string_view("root"))->may_read("x"));
}

TEST(Authenticator, Origins) {
  config c;
  c.allowed_origins = {"https://app.example.com", "https://*.example.org"};
  authenticator a(c);
  EXPECT_TRUE(a.origin_allowed(std::nullopt));
  EXPECT_TRUE(a.origin_allowed("https://app.example.com"));
  EXPECT_TRUE(a.origin_allowed("https://a.example.org"));
  EXPECT_TRUE(a.origin_allowed("https://a.b.example.org"));
  EXPECT_FALSE(a.origin_allowed("https://example.org"));
  EXPECT_FALSE(a.origin_allowed("http://a.example.org"));
  EXPECT_FALSE(a.origin_allowed("https://evil-example.org"));
  EXPECT_FALSE(a.origin_allowed("https://app.example.com.evil.net"));
  EXPECT_FALSE(a.origin_allowed("null"));
}

}  // namespace
}  // namespace seqcast::auth
