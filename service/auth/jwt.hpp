// HS256 JSON Web Tokens of subscribers: signature, algorithm and time checks, claims.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seqcast::auth {

struct token_claims {
  std::vector<std::string> channels;  // names, or prefixes ending in '*'
  std::optional<std::int64_t> exp;    // seconds since the Unix epoch
};

// Verifies `token` (header.payload.signature, base64url) against `secret`:
// the header's alg must be HS256 (never "none"), the HMAC-SHA256 signature must
// match (compared in constant time), `exp` and `nbf` (when present) must admit
// `now_s`, and `channels` must be a list of strings. Returns nullopt otherwise.
std::optional<token_claims> verify_hs256(std::string_view token, std::string_view secret,
                                         std::int64_t now_s);

// Signs claims as an HS256 token (for tests and tooling).
std::string sign_hs256(std::string_view payload_json, std::string_view secret);

// HMAC-SHA256 of `data` under `key`.
std::array<unsigned char, 32> hmac_sha256(std::string_view key, std::string_view data);

// base64url without padding, both ways (decode accepts padding; nullopt on bad input).
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

// Decoding with a choice of alphabet: url-safe only, or standard (+/) and url-safe alike.
enum class base64 { url, standard_or_url };
std::optional<std::string> base64_decode(std::string_view text, base64 which);

// Constant-time equality of two secrets, whatever their lengths.
bool secrets_equal(std::string_view a, std::string_view b);

}  // namespace seqcast::auth
