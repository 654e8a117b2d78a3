// WebSocket close codes of the protocol; mirrored by client-js (codes section of seqcast.js).
#pragma once

#include <cstdint>

namespace seqcast::protocol {

inline constexpr std::uint16_t close_policy = 1008;         // auth or policy violation
inline constexpr std::uint16_t close_too_big = 1009;        // a frame over the size limit
inline constexpr std::uint16_t close_draining = 1012;       // node going away; reconnect and resume
inline constexpr std::uint16_t close_slow_consumer = 1013;  // send queue overflowed; resume

}  // namespace seqcast::protocol
