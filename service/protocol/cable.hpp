// Action Cable's protocol (actioncable-v1-json, and AnyCable's actioncable-v1-ext-json
// with positions and history): its frames and its commands. Pure; no sockets.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace seqcast::protocol::cable {

inline constexpr std::string_view json_protocol = "actioncable-v1-json";
inline constexpr std::string_view ext_json_protocol = "actioncable-v1-ext-json";
inline constexpr std::string_view unsupported_protocol = "actioncable-unsupported";

// The subprotocol to select from the client's offer (the Sec-WebSocket-Protocol
// values, comma-separated, maybe over several headers joined by ','):
// ext-json, else json, else unsupported if offered, else "" (none selected).
std::string_view select_subprotocol(std::string_view offered);

// Server → client, exactly these members (`identifier` is the identifier string as
// the client sent it; `payload` is spliced in raw: it was validated at publish).
std::string welcome();
std::string ping(std::int64_t unix_seconds);
std::string confirm(std::string_view identifier);
std::string reject(std::string_view identifier);
std::string confirm_history(std::string_view identifier);
std::string reject_history(std::string_view identifier);
std::string disconnect(std::string_view reason, bool reconnect);
// `{"identifier":I,"message":P`; a message frame is this, then `}` (json) or
// `,"stream_id":…,"epoch":…,"offset":N}` (ext-json): see message_tail.
std::string message_head(std::string_view identifier, std::size_t payload_size);
std::string message_tail(bool ext, std::string_view channel, std::string_view epoch,
                         std::int64_t seq);

// A stream's position as the ext-json client last saw it.
struct position {
  std::string epoch;
  std::int64_t offset = 0;
};
struct history_request {
  std::int64_t since = 0;                   // unix seconds; 0: none
  std::map<std::string, position> streams;  // by stream_id (a seqcast channel)
};

// Client → server.
struct command {
  enum class kind { subscribe, unsubscribe, history, ignored };
  kind type = kind::ignored;
  std::string identifier;  // the identifier string
  std::optional<history_request> history;
};
// Anything that is not a well-formed subscribe/unsubscribe/history with a string
// identifier (message, pong, junk) is `ignored`: Action Cable answers none of them.
command parse_command(std::string_view text, int max_depth);

// What an identifier names.
struct identifier {
  enum class kind { signed_stream, stream_name };
  kind type = kind::signed_stream;
  std::string value;  // the signed name (to verify) or the stream name
};
// {"channel":"Turbo::StreamsChannel"|"$pubsub","signed_stream_name":S,…} or
// {"channel":"$pubsub","stream_name":N}; nullopt for anything else.
std::optional<identifier> parse_identifier(std::string_view text, int max_depth);

}  // namespace seqcast::protocol::cable
