// Rails-signed stream names (Active Support MessageVerifier, SHA256, JSON).
#include "auth/signed_stream.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <cstdint>

#include <boost/json.hpp>

#include "auth/jwt.hpp"
#include "text/json_scan.hpp"

namespace seqcast::auth {

namespace {

constexpr std::size_t digest_hex_size = 64;         // SHA256, hex
constexpr std::size_t max_signed_bytes = 4 * 1024;  // a 1024-character name signs to ~1.4 KiB

std::string to_hex(const std::array<unsigned char, 32>& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace

std::optional<std::string> verify_signed_stream(std::string_view signed_name,
                                                std::string_view key) {
  if (key.empty() || signed_name.size() > max_signed_bytes ||
      signed_name.size() < digest_hex_size + 2) {
    return std::nullopt;
  }
  // The separator is found by the digest's length from the end, as Rails 7.0+ does.
  const std::size_t sep = signed_name.size() - digest_hex_size - 2;
  if (signed_name.substr(sep, 2) != "--") return std::nullopt;
  const std::string_view data = signed_name.substr(0, sep);
  const std::string_view digest = signed_name.substr(sep + 2);
  const std::string expected = to_hex(hmac_sha256(key, data));
  std::string given(digest);
  for (char& c : given) c = static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
  if (CRYPTO_memcmp(expected.data(), given.data(), expected.size()) != 0) return std::nullopt;

  const auto json = base64_decode(data, base64::standard_or_url);
  if (!json) return std::nullopt;
  boost::json::parse_options opts;
  opts.max_depth = 1;
  boost::json::error_code ec;
  const auto v = boost::json::parse(*json, ec, {}, opts);
  if (ec || !v.is_string()) return std::nullopt;
  return std::string(v.get_string());
}

std::string sign_stream(std::string_view name, std::string_view key) {
  // JSON.dump of a Ruby string: the same escapes for every character a channel may hold.
  std::string json;
  json::append_string(json, name);
  const std::string data = base64_encode(json);
  return data + "--" + to_hex(hmac_sha256(key, data));
}

std::optional<std::string> streams_key(std::string_view setting) {
  if (!setting.starts_with("hex:")) return std::string(setting);
  const std::string_view hex = setting.substr(4);
  if (hex.empty() || hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

}  // namespace seqcast::auth
