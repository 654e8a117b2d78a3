// Checks and decoding of what arrives in URLs and headers.
#include "names.hpp"

#include <fmt/format.h>

#include <charconv>
#include <climits>
#include <cstring>
#include <ctime>

namespace seqcast::text {

bool valid_channel(std::string_view name) {
  if (name.empty() || name.size() > max_channel_length) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.' || c == ':' || c == '@' || c == '=' ||
                    c == '/';
    if (!ok) return false;
  }
  return true;
}

bool valid_idempotency_key(std::string_view key) {
  if (key.empty() || key.size() > 128) return false;
  for (char c : key)
    if (c < 0x20 || c > 0x7E) return false;
  return true;
}

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char h) -> int {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    return percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
  }
  return std::nullopt;
}

std::optional<std::int64_t> parse_uint(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

void write_rfc3339(std::int64_t ts_us, char* out) {
  std::int64_t secs = ts_us / 1000000, micros = ts_us % 1000000;
  if (micros < 0) secs -= 1, micros += 1000000;
  // Messages come in runs with the same second: its text is worked out once.
  thread_local std::int64_t cached_secs = INT64_MIN;
  thread_local char cached[20];
  if (secs != cached_secs) {
    const auto t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    fmt::format_to_n(cached, sizeof cached, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
    cached_secs = secs;
  }
  std::memcpy(out, cached, 20);
  for (int i = 25; i >= 20; --i, micros /= 10) out[i] = static_cast<char>('0' + micros % 10);
  out[26] = 'Z';
}

std::string rfc3339(std::int64_t ts_us) {
  std::string s(rfc3339_size, '\0');
  write_rfc3339(ts_us, s.data());
  return s;
}

}  // namespace seqcast::text
