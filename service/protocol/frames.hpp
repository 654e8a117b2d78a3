// The WebSocket protocol's frames: server frames encoded once, client ops parsed and checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace seqcast::protocol {

inline constexpr std::string_view version = "1";

// Bytes any face's frame of one message may take beyond its payload (channel name,
// epoch, numbers, framing; an Action Cable identifier, at most max_identifier_bytes):
// whoever has room for payload + this can take the message.
inline constexpr std::size_t max_identifier_bytes = 8192;
inline constexpr std::size_t max_message_overhead = max_identifier_bytes + 4096;

// A signed stream name of the longest channel is about 1.4 KiB.
inline constexpr std::size_t max_signed_name_bytes = 4096;

// Server → client. Each returns the exact text of one frame. Payloads are
// spliced in raw (they were validated as JSON at publish).
std::string welcome(int heartbeat_seconds);
std::string subscribed(std::string_view channel, std::optional<std::string_view> epoch,
                       std::int64_t head);
std::string message(std::string_view channel, std::string_view epoch, std::int64_t seq,
                    std::int64_t ts_us, std::string_view payload);
std::string reset(std::string_view channel, std::optional<std::string_view> epoch,
                  std::int64_t first_seq, std::int64_t head, std::string_view reason,
                  std::optional<std::pair<std::int64_t, std::int64_t>> missed,
                  std::optional<std::int64_t> rewound_to = std::nullopt);
std::string error(std::string_view code, std::string_view message,
                  std::optional<std::string_view> channel = std::nullopt);
std::string reconnect(std::int64_t within_ms);
std::string_view ping();
std::string_view pong();

// Client → server.
struct subscribe_op {
  std::string channel;                // with `signed_name`: the signed stream name, to be verified
  std::optional<std::int64_t> since;  // absent: live only
  std::optional<std::string> epoch;
  bool signed_name = false;
};
struct unsubscribe_op {
  std::string channel;
};
struct ping_op {};
struct op_error {
  std::string code;  // invalid_json, invalid_op, invalid_channel, invalid_since, invalid_epoch
  std::string message;
  std::optional<std::string> channel;
};
using client_op = std::variant<subscribe_op, unsubscribe_op, ping_op, op_error>;

// Parses one text frame; anything unexpected becomes an op_error to send back.
client_op parse_client_op(std::string_view text, int max_depth);

}  // namespace seqcast::protocol
