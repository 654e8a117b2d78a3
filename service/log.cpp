// Leveled logging on fmt, to stderr.
#include "log.hpp"

#include <fmt/chrono.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

namespace seqcast::log {

namespace {

std::atomic<int> threshold_{static_cast<int>(level::info)};
std::atomic<bool> json_{false};
std::mutex write_mutex_;

constexpr std::string_view names[] = {"debug", "info", "warn", "error"};

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

}  // namespace

void init(std::string_view threshold, bool json) {
  for (int i = 0; i < 4; ++i)
    if (names[i] == threshold) threshold_ = i;
  json_ = json;
}

bool enabled(level l) { return static_cast<int>(l) >= threshold_.load(std::memory_order_relaxed); }

void write(level l, std::string_view component, std::string_view message) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::time_point_cast<std::chrono::milliseconds>(now);
  std::string line;
  if (json_) {
    line = fmt::format(
        "{{\"ts\":\"{:%Y-%m-%dT%H:%M:%S}Z\",\"level\":\"{}\",\"component\":\"{}\",\"msg\":", ms,
        names[static_cast<int>(l)], component);
    append_json_string(line, message);
    line += "}\n";
  } else {
    line = fmt::format("{:%Y-%m-%dT%H:%M:%S}Z {} {} {}\n", ms, names[static_cast<int>(l)],
                       component, message);
  }
  std::lock_guard lock(write_mutex_);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace seqcast::log
