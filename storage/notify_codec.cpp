// The NOTIFY payload format: which channels advanced to which seq.
#include "notify_codec.hpp"

#include <fmt/format.h>

#include <charconv>

namespace seqcast::storage {

std::vector<std::string> encode_notify(const std::vector<channel_advance>& advances) {
  std::vector<std::string> out;
  std::string current;
  for (const auto& a : advances) {
    std::string line = fmt::format("{} {} {} {}\n", a.id, a.to_seq, a.epoch, a.name);
    if (!current.empty() && current.size() + line.size() > max_notify_bytes) {
      out.push_back(std::move(current));
      current.clear();
    }
    current += line;
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

namespace {

bool next_field(std::string_view& line, std::string_view& field) {
  auto sp = line.find(' ');
  if (sp == std::string_view::npos || sp == 0) return false;
  field = line.substr(0, sp);
  line.remove_prefix(sp + 1);
  return true;
}

template <class Int>
bool parse_int(std::string_view s, Int& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && v >= 0;
}

}  // namespace

std::vector<channel_advance> decode_notify(std::string_view payload) {
  std::vector<channel_advance> out;
  while (!payload.empty()) {
    auto nl = payload.find('\n');
    std::string_view line = payload.substr(0, nl);
    payload.remove_prefix(nl == std::string_view::npos ? payload.size() : nl + 1);
    std::string_view id, seq, epoch;
    channel_advance a;
    if (!next_field(line, id) || !next_field(line, seq) || !next_field(line, epoch) ||
        line.empty() || !parse_int(id, a.id) || !parse_int(seq, a.to_seq)) {
      continue;
    }
    a.epoch = epoch;
    a.name = line;
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace seqcast::storage
