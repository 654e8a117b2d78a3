// Checks and decoding of what arrives in URLs and headers: channel names, keys, queries.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace seqcast::text {

// Rails stream names are gid params (up to 92 characters each) joined by ':'.
inline constexpr std::size_t max_channel_length = 1024;

// 1–1024 characters of A-Z a-z 0-9 _ - . : @ = /
bool valid_channel(std::string_view name);
// What an invalid_channel error says.
inline constexpr std::string_view channel_rule =
    "channel must be 1-1024 of A-Z a-z 0-9 _ - . : @ = /";

// 1–128 printable ASCII characters.
bool valid_idempotency_key(std::string_view key);

// Decodes %XX escapes (and '+' as space when `plus_is_space`); nullopt on a bad escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space = false);

// The decoded value of `name` in a query string "a=1&b=2"; nullopt when absent or undecodable.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

// Parses a non-negative decimal integer that fits in int64; nullopt otherwise.
std::optional<std::int64_t> parse_uint(std::string_view s);

// Formats microseconds since the Unix epoch as RFC 3339 UTC: 2026-11-24T01:35:32.123456Z
std::string rfc3339(std::int64_t ts_us);
// The same into `out`, without allocating: exactly rfc3339_size characters.
inline constexpr std::size_t rfc3339_size = 27;
void write_rfc3339(std::int64_t ts_us, char* out);

}  // namespace seqcast::text
