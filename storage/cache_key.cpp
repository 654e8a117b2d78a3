// RocksDB keys of the replay cache.
#include "cache_key.hpp"

namespace seqcast::storage {

namespace {

void put_be64(char* out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
}

std::uint64_t get_be64(const char* in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

}  // namespace

cache_key make_cache_key(channel_id channel, seq_t seq) {
  cache_key k;
  put_be64(k.data(), static_cast<std::uint64_t>(channel));
  put_be64(k.data() + 8, static_cast<std::uint64_t>(seq));
  return k;
}

std::optional<std::pair<channel_id, seq_t>> parse_cache_key(std::string_view key) {
  if (key.size() != 16) return std::nullopt;
  return std::make_pair(static_cast<channel_id>(get_be64(key.data())),
                        static_cast<seq_t>(get_be64(key.data() + 8)));
}

}  // namespace seqcast::storage
