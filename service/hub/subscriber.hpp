// What the hub sees of a connection: somewhere to deliver encoded frames.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace seqcast::hub {

// Bytes a transport puts before a frame's text (a WebSocket frame header; none for SSE).
struct frame_head {
  std::array<char, 10> bytes{};
  std::uint8_t size = 0;
  std::string_view view() const { return {bytes.data(), size}; }
};

// One encoded server frame, immutable and shared by every connection that sends it.
// The hub's frames are the native protocol's (hub/encode.hpp); other faces derive
// theirs from them once per thread (see session/face.hpp).
struct frame {
  enum class kind { message, subscribed, reset, error };
  kind type = kind::message;
  std::int64_t seq = 0;         // the message's seq; 0 for control frames
  std::string text;             // the frame's text (JSON)
  std::int64_t reset_to = -1;   // reset or live-only subscribed: delivery continues after this
  std::size_t data_offset = 0;  // a message frame: where the raw payload starts in `text`
  frame_head head;              // sent before `text` (see make_frame)
  std::int64_t ts_us = 0;       // a message frame: its commit time
  std::int64_t head_seq = 0;    // subscribed: the channel's head at that moment
  std::uint32_t epoch_offset = 0, epoch_size = 0;  // message/subscribed: the epoch in `text`

  // The payload as published (message frames: it ends the text, before the final '}').
  std::string_view data() const {
    return std::string_view(text).substr(data_offset, text.size() - data_offset - 1);
  }
  std::string_view epoch() const { return std::string_view(text).substr(epoch_offset, epoch_size); }
  // Bytes it takes in a send queue.
  std::size_t wire_size() const { return head.size + text.size(); }
};
using frame_ptr = std::shared_ptr<const frame>;

// Seals a frame for sharing as a WebSocket text frame: its header is computed once
// here, so every connection sends the same bytes without encoding anything.
frame_ptr make_frame(frame f);
using frame_batch = std::shared_ptr<const std::vector<frame_ptr>>;

// What a delivery means for a subscription's replay pacing. The hub sends a page of
// history only against a grant: bytes the subscriber can take now (given at
// subscribe, or with hub::more()).
enum class pacing {
  none,       // live frames, or control frames ahead of a page
  want_more,  // a page of history (maybe empty): its grant is used up; call hub::more()
              // with a new grant once there is room for the next page
  caught_up,  // the subscription is live from now on: its grant, if any, is released
};

// Implemented by WebSocket and SSE sessions. The hub reaches them only through
// hub/fanout.hpp, which calls these on the connection's own I/O thread.
class subscriber {
 public:
  virtual ~subscriber() = default;

  // The I/O thread this connection lives on (fixed for its life).
  virtual std::size_t home() const = 0;
  // Frames of subscription `subscription_id`, in hub order: first its `subscribed`
  // (or an error), maybe a `reset`, then messages in seq order. Only queues:
  // flush_here, called once per pass after every deliver_here of it, writes.
  virtual void deliver_here(std::uint64_t subscription_id, const frame_batch& frames, pacing p) = 0;
  virtual void flush_here() = 0;
};

}  // namespace seqcast::hub
