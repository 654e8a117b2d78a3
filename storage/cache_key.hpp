// RocksDB keys of the replay cache: big-endian channel id then big-endian seq,
// so that byte order is (channel, seq) order and one channel is one key range.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "types.hpp"

namespace seqcast::storage {

using cache_key = std::array<char, 16>;

cache_key make_cache_key(channel_id channel, seq_t seq);

// The (channel, seq) of a 16-byte key; nullopt for any other key (metadata).
std::optional<std::pair<channel_id, seq_t>> parse_cache_key(std::string_view key);

inline std::string_view as_view(const cache_key& k) { return {k.data(), k.size()}; }

}  // namespace seqcast::storage
