// The WebSocket wire format (RFC 6455) on the server side, without sockets:
// the opening handshake's answer, frame headers for what the server sends, and
// an incremental reader of what clients send (masked frames, fragments,
// control frames, close codes). Kept apart from I/O so it is unit-tested and
// fuzzed on its own; the session (websocket_session.cpp) only moves bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace seqcast::ws {

enum class opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

// RFC 6455 §1.3: base64(SHA-1(key + GUID)), the Sec-WebSocket-Accept value.
std::string accept_key(std::string_view client_key);

// A client key is the base64 encoding of 16 bytes (24 characters, "==" at the end).
bool valid_client_key(std::string_view key);

// The header of an unmasked server frame with FIN set: 2 to 10 bytes. Server
// frames are not masked, so header + payload are the same bytes for every
// client, which lets one encoded frame be shared by all of them.
struct frame_header {
  std::array<char, 10> bytes{};
  std::uint8_t size = 0;
  std::string_view view() const { return {bytes.data(), size}; }
};
frame_header encode_header(opcode op, std::size_t payload_size);

// A close frame's payload: the code in network order, then the reason.
std::string close_payload(std::uint16_t code, std::string_view reason);

bool valid_utf8(std::string_view text);

// What reader::feed() found. Views point into the reader's buffers or the
// fed bytes and stay valid only during the callback.
struct event {
  enum class kind { text, binary, ping, pong, close, error };
  kind type = kind::text;
  std::string_view payload;  // message or control payload; close: the reason
  std::uint16_t code = 0;    // close: the peer's code (1005 if none); error: ours to send
};

// Turns the bytes a client sends into whole messages and control frames.
// After an error event the reader stops: the connection must be closed with
// the event's code (1002 protocol error, 1007 invalid UTF-8, 1009 too big).
class reader {
 public:
  explicit reader(std::size_t max_message_bytes) : max_message_(max_message_bytes) {}

  // Parses `in`, unmasking payloads in place, and calls `on(const event&)` for
  // each complete message or control frame. An incomplete frame at the end is
  // kept for the next call; nothing is buffered when `in` ends on a frame
  // boundary, so an idle connection holds no read memory.
  template <class F>
  void feed(std::span<char> in, F&& on) {
    event e;
    while (!stopped_) {
      switch (next(in, e)) {
        case outcome::event:
          on(e);
          break;
        case outcome::fragment:
          break;
        case outcome::need_bytes:
          return;
      }
    }
  }

  // After a close or an error event nothing more is read.
  bool stopped() const { return stopped_; }
  std::size_t buffered_bytes() const { return pending_.size() + message_.size(); }

 private:
  enum class outcome { event, fragment, need_bytes };

  // Parses the next frame from pending_ + in, consuming what it used. A tail
  // too short for a whole frame is moved into pending_ (need_bytes).
  outcome next(std::span<char>& in, event& out);
  outcome on_frame(opcode op, bool fin, std::string_view payload, event& out);
  outcome fail(std::uint16_t code, std::string_view why, event& out);

  std::size_t max_message_;
  std::string pending_;  // an incomplete frame carried over between feeds
  std::string message_;  // fragments of a message in progress
  std::optional<opcode> fragmented_;
  bool stopped_ = false;
  bool drop_pending_ = false;  // the last event pointed into pending_ or message_:
  bool drop_message_ = false;  // release them on the next call
};

}  // namespace seqcast::ws
