// HS256 JSON Web Tokens of subscribers, on OpenSSL's HMAC.
#include "auth/jwt.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <array>
#include <cmath>
#include <limits>

#include <boost/json.hpp>

namespace seqcast::auth {

namespace bj = boost::json;

namespace {

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::size_t max_token_bytes = 8192;

std::optional<bj::object> parse_object(std::string_view b64) {
  auto text = base64url_decode(b64);
  if (!text) return std::nullopt;
  bj::parse_options opts;
  opts.max_depth = 8;
  bj::error_code ec;
  auto v = bj::parse(*text, ec, {}, opts);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

std::optional<std::int64_t> time_claim(const bj::object& o, std::string_view name, bool& bad) {
  const bj::value* v = o.if_contains(name);
  if (!v) return std::nullopt;
  // Out-of-range times saturate (a cast would be undefined): far future stays far future.
  constexpr auto max = std::numeric_limits<std::int64_t>::max();
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64())
    return static_cast<std::int64_t>(std::min<std::uint64_t>(v->get_uint64(), max));
  if (v->is_double()) {
    const double d = v->get_double();
    if (std::isnan(d)) {
      bad = true;
      return std::nullopt;
    }
    if (d >= 9.2e18) return max;
    if (d <= -9.2e18) return std::numeric_limits<std::int64_t>::min();
    return static_cast<std::int64_t>(d);
  }
  bad = true;
  return std::nullopt;
}

}  // namespace

std::array<unsigned char, 32> hmac_sha256(std::string_view key, std::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return out;
}

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += alphabet[(acc >> bits) & 0x3F];
    }
  }
  if (bits > 0) out += alphabet[(acc << (6 - bits)) & 0x3F];
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  return base64_decode(text, base64::url);
}

std::optional<std::string> base64_decode(std::string_view text, base64 which) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    auto k = alphabet.find(c);
    if (which == base64::standard_or_url && (c == '+' || c == '/')) k = c == '+' ? 62 : 63;
    if (k == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(k);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

bool secrets_equal(std::string_view a, std::string_view b) {
  // Compare digests so that neither content nor length leaks through timing.
  std::array<unsigned char, SHA256_DIGEST_LENGTH> da{}, db{};
  SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), da.data());
  SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), db.data());
  return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0;
}

std::string sign_hs256(std::string_view payload_json, std::string_view secret) {
  const std::string signing_input =
      base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url_encode(payload_json);
  const auto mac = hmac_sha256(secret, signing_input);
  return signing_input + "." +
         base64url_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

std::optional<token_claims> verify_hs256(std::string_view token, std::string_view secret,
                                         std::int64_t now_s) {
  if (token.empty() || token.size() > max_token_bytes || secret.empty()) return std::nullopt;
  const auto dot1 = token.find('.');
  const auto dot2 = token.rfind('.');
  if (dot1 == std::string_view::npos || dot1 == dot2) return std::nullopt;
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const auto header = parse_object(header_b64);
  if (!header) return std::nullopt;
  const bj::value* alg = header->if_contains("alg");
  if (!alg || !alg->is_string() || alg->get_string() != "HS256") return std::nullopt;

  const auto sig = base64url_decode(token.substr(dot2 + 1));
  const auto mac = hmac_sha256(secret, token.substr(0, dot2));
  if (!sig || sig->size() != mac.size() ||
      CRYPTO_memcmp(sig->data(), mac.data(), mac.size()) != 0) {
    return std::nullopt;
  }

  const auto payload = parse_object(payload_b64);
  if (!payload) return std::nullopt;
  bool bad = false;
  token_claims claims;
  claims.exp = time_claim(*payload, "exp", bad);
  const auto nbf = time_claim(*payload, "nbf", bad);
  if (bad || (claims.exp && *claims.exp <= now_s) || (nbf && *nbf > now_s)) return std::nullopt;
  if (const bj::value* ch = payload->if_contains("channels")) {
    if (!ch->is_array()) return std::nullopt;
    for (const auto& c : ch->get_array()) {
      if (!c.is_string()) return std::nullopt;
      claims.channels.emplace_back(c.get_string());
    }
  }
  return claims;
}

}  // namespace seqcast::auth
