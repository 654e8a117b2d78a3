// The hub's frames in the native protocol.
#include "hub/encode.hpp"

#include <algorithm>

#include "protocol/frames.hpp"
#include "ws/wire.hpp"

namespace seqcast::hub {

frame_ptr make_frame(frame f) {
  const auto h = ws::encode_header(ws::opcode::text, f.text.size());
  f.head.bytes = h.bytes;
  f.head.size = h.size;
  return std::make_shared<const frame>(std::move(f));
}

frame_batch batch_of(std::vector<frame_ptr> frames) {
  return std::make_shared<const std::vector<frame_ptr>>(std::move(frames));
}

frame_ptr control(frame::kind type, std::string text, std::int64_t reset_to) {
  frame f;
  f.type = type;
  f.text = std::move(text);
  f.reset_to = reset_to;
  return make_frame(std::move(f));
}

frame_ptr message_frame(const channel_state& st, const std::string& name,
                        const storage::stored_message& m) {
  frame f;
  f.seq = m.seq;
  f.text = protocol::message(name, st.epoch, m.seq, m.ts_us, m.payload);
  f.data_offset = f.text.size() - m.payload.size() - 1;
  f.ts_us = m.ts_us;
  // Channel names and epochs need no escaping: the epoch's text is the epoch.
  static constexpr std::string_view epoch_key = R"(,"epoch":")";
  f.epoch_offset = static_cast<std::uint32_t>(f.text.find(epoch_key) + epoch_key.size());
  f.epoch_size = static_cast<std::uint32_t>(st.epoch.size());
  return make_frame(std::move(f));
}

namespace {
std::optional<std::string_view> epoch_of(const channel_state& st) {
  if (st.id == 0) return std::nullopt;
  return st.epoch;
}
}  // namespace

frame_ptr subscribed_frame(const channel_state& st, const std::string& name, bool live_only) {
  // The head is the last seq known to exist, even if this node still reads it back.
  const storage::seq_t head = std::max(st.head, st.target);
  frame f;
  f.type = frame::kind::subscribed;
  f.text = protocol::subscribed(name, epoch_of(st), head);
  f.reset_to = live_only ? head : -1;
  f.head_seq = head;
  if (st.id != 0) {
    static constexpr std::string_view epoch_key = R"(,"epoch":")";
    f.epoch_offset = static_cast<std::uint32_t>(f.text.find(epoch_key) + epoch_key.size());
    f.epoch_size = static_cast<std::uint32_t>(st.epoch.size());
  }
  return make_frame(std::move(f));
}

frame_ptr reset_frame(const channel_state& st, const std::string& name, std::string_view reason,
                      storage::seq_t after) {
  storage::seq_t first = st.id == 0 ? 1 : std::max<storage::seq_t>(st.first_seq, 1);
  std::optional<std::pair<std::int64_t, std::int64_t>> missed;
  std::optional<std::int64_t> rewound_to;
  if (reason == "truncated") missed = std::make_pair(after + 1, first - 1);
  if (reason == "rewound") {
    rewound_to = after;  // delivery goes on right after what survived
    first = std::max(first, after + 1);
  }
  return control(frame::kind::reset,
                 protocol::reset(name, epoch_of(st), first, std::max(st.head, st.target), reason,
                                 missed, rewound_to),
                 first - 1);
}

frame_ptr error_frame(std::string_view code, std::string_view message, const std::string& name) {
  return control(frame::kind::error, protocol::error(code, message, std::string_view(name)));
}

}  // namespace seqcast::hub
