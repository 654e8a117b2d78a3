#include "ws/wire.hpp"

#include <openssl/evp.h>

#include <cstring>

namespace seqcast::ws {

std::string accept_key(std::string_view client_key) {
  static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input;
  input.reserve(client_key.size() + guid.size());
  input.append(client_key).append(guid);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  EVP_Digest(input.data(), input.size(), digest, &digest_size, EVP_sha1(), nullptr);
  unsigned char encoded[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(encoded, digest, static_cast<int>(digest_size));
  return std::string(reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(n));
}

bool valid_client_key(std::string_view key) {
  if (key.size() != 24 || !key.ends_with("==")) return false;
  for (char c : key.substr(0, 22)) {
    const bool b64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '+' || c == '/';
    if (!b64) return false;
  }
  return true;
}

frame_header encode_header(opcode op, std::size_t payload_size) {
  frame_header h;
  h.bytes[0] = static_cast<char>(0x80 | static_cast<std::uint8_t>(op));
  if (payload_size < 126) {
    h.bytes[1] = static_cast<char>(payload_size);
    h.size = 2;
  } else if (payload_size <= 0xFFFF) {
    h.bytes[1] = 126;
    h.bytes[2] = static_cast<char>(payload_size >> 8);
    h.bytes[3] = static_cast<char>(payload_size & 0xFF);
    h.size = 4;
  } else {
    h.bytes[1] = 127;
    for (int i = 0; i < 8; ++i)
      h.bytes[2 + i] =
          static_cast<char>((static_cast<std::uint64_t>(payload_size) >> (56 - 8 * i)) & 0xFF);
    h.size = 10;
  }
  return h;
}

std::string close_payload(std::uint16_t code, std::string_view reason) {
  std::string p;
  p.reserve(2 + reason.size());
  p += static_cast<char>(code >> 8);
  p += static_cast<char>(code & 0xFF);
  p.append(reason.substr(0, 123));  // a control payload is at most 125 bytes
  return p;
}

bool valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // Eight ASCII bytes at a time: most JSON is ASCII.
    if (end - p >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      if ((w & 0x8080808080808080ULL) == 0) {
        p += 8;
        continue;
      }
    }
    const unsigned char b = *p;
    if (b < 0x80) {
      ++p;
      continue;
    }
    int len;
    std::uint32_t cp, min;
    if ((b & 0xE0) == 0xC0) {
      len = 2, cp = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3, cp = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4, cp = b & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (end - p < len) return false;
    for (int i = 1; i < len; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += len;
  }
  return true;
}

namespace {

bool is_control(std::uint8_t op) { return op >= 0x8; }

bool valid_close_code(std::uint16_t c) {
  if (c >= 3000 && c <= 4999) return true;  // registered and private codes
  return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014);
}

// The first two bytes of a frame say how long its header is.
std::size_t header_size(std::string_view b) {
  const auto len7 = static_cast<std::uint8_t>(b[1]) & 0x7F;
  const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  const std::size_t mask = (static_cast<std::uint8_t>(b[1]) & 0x80) ? 4 : 0;
  return 2 + ext + mask;
}

std::uint64_t payload_size(std::string_view b) {
  const auto len7 = static_cast<std::uint8_t>(b[1]) & 0x7F;
  if (len7 < 126) return len7;
  const int n = len7 == 126 ? 2 : 8;
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<std::uint8_t>(b[2 + i]);
  return v;
}

}  // namespace

reader::outcome reader::fail(std::uint16_t code, std::string_view why, event& out) {
  stopped_ = true;
  out = event{event::kind::error, why, code};
  return outcome::event;
}

reader::outcome reader::next(std::span<char>& in, event& out) {
  // What the previous event pointed into is no longer needed. Released, not
  // kept: idle connections are many, and carry-overs are rare.
  if (drop_pending_) std::string().swap(pending_), drop_pending_ = false;
  if (drop_message_) std::string().swap(message_), drop_message_ = false;

  // Top up a carried-over frame from `in` just far enough to know its size.
  auto top_up = [&](std::size_t want) {
    if (pending_.size() >= want) return true;
    const std::size_t k = std::min(want - pending_.size(), in.size());
    pending_.append(in.data(), k);
    in = in.subspan(k);
    return pending_.size() >= want;
  };
  const bool carried = !pending_.empty();
  std::string_view bytes =
      carried ? std::string_view(pending_) : std::string_view(in.data(), in.size());
  if (carried && !top_up(2)) return outcome::need_bytes;
  if (carried) bytes = pending_;
  if (bytes.size() < 2) {
    pending_.assign(in.data(), in.size());
    in = {};
    return outcome::need_bytes;
  }

  const auto b0 = static_cast<std::uint8_t>(bytes[0]);
  const auto b1 = static_cast<std::uint8_t>(bytes[1]);
  const bool fin = b0 & 0x80;
  const std::uint8_t op = b0 & 0x0F;
  if (b0 & 0x70) return fail(1002, "reserved bits set (no extension was negotiated)", out);
  if (!(b1 & 0x80)) return fail(1002, "client frames must be masked", out);
  if (op != 0x0 && op != 0x1 && op != 0x2 && op != 0x8 && op != 0x9 && op != 0xA)
    return fail(1002, "unknown opcode", out);
  if (is_control(op) && !fin) return fail(1002, "fragmented control frame", out);
  if (is_control(op) && (b1 & 0x7F) > 125) return fail(1002, "control frame over 125 bytes", out);

  const std::size_t hs = header_size(bytes);
  if (carried && !top_up(hs)) return outcome::need_bytes;
  if (carried) bytes = pending_;
  if (bytes.size() < hs) {
    pending_.assign(in.data(), in.size());
    in = {};
    return outcome::need_bytes;
  }
  const std::uint64_t len = payload_size(bytes);
  const auto len7 = b1 & 0x7F;
  if ((len7 == 126 && len < 126) || (len7 == 127 && len <= 0xFFFF) || (len >> 63) != 0)
    return fail(1002, "frame length not minimally encoded", out);
  if (!is_control(op) && len + message_.size() > max_message_)
    return fail(1009, "message too big", out);

  const std::size_t total = hs + static_cast<std::size_t>(len);
  char* frame;
  if (carried) {
    if (!top_up(total)) return outcome::need_bytes;
    frame = pending_.data();
    drop_pending_ = true;
  } else {
    if (in.size() < total) {
      pending_.assign(in.data(), in.size());
      in = {};
      return outcome::need_bytes;
    }
    frame = in.data();
    in = in.subspan(total);
  }

  // Unmask in place (RFC 6455 §5.3).
  char* payload = frame + hs;
  const char* key = frame + hs - 4;
  for (std::size_t i = 0; i < len; ++i) payload[i] = static_cast<char>(payload[i] ^ key[i & 3]);
  return on_frame(static_cast<opcode>(op), fin,
                  std::string_view(payload, static_cast<std::size_t>(len)), out);
}

reader::outcome reader::on_frame(opcode op, bool fin, std::string_view payload, event& out) {
  switch (op) {
    case opcode::ping:
      out = event{event::kind::ping, payload, 0};
      return outcome::event;
    case opcode::pong:
      out = event{event::kind::pong, payload, 0};
      return outcome::event;
    case opcode::close: {
      stopped_ = true;
      if (payload.empty()) {
        out = event{event::kind::close, {}, 1005};
        return outcome::event;
      }
      if (payload.size() == 1) return fail(1002, "close frame with a one-byte payload", out);
      const auto code = static_cast<std::uint16_t>((static_cast<std::uint8_t>(payload[0]) << 8) |
                                                   static_cast<std::uint8_t>(payload[1]));
      if (!valid_close_code(code)) return fail(1002, "invalid close code", out);
      const auto reason = payload.substr(2);
      if (!valid_utf8(reason)) return fail(1007, "close reason is not valid UTF-8", out);
      out = event{event::kind::close, reason, code};
      return outcome::event;
    }
    case opcode::continuation:
      if (!fragmented_) return fail(1002, "continuation frame without a message", out);
      message_.append(payload);
      if (!fin) return outcome::fragment;
      payload = message_;
      op = *fragmented_;
      fragmented_.reset();
      drop_message_ = true;
      break;
    case opcode::text:
    case opcode::binary:
      if (fragmented_) return fail(1002, "new message inside a fragmented one", out);
      if (!fin) {
        fragmented_ = op;
        message_.assign(payload);
        return outcome::fragment;
      }
      break;
  }
  if (op == opcode::text && !valid_utf8(payload))
    return fail(1007, "text message is not valid UTF-8", out);
  out = event{op == opcode::text ? event::kind::text : event::kind::binary, payload, 0};
  return outcome::event;
}

}  // namespace seqcast::ws
