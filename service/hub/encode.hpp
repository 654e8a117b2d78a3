// The hub's frames in the native protocol: messages, subscribed, reset, error.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hub/channels.hpp"

namespace seqcast::hub {

// Bytes a frame takes in a connection's send queue (its text and its header).
inline std::size_t queued_size(const frame& f) { return f.wire_size(); }

frame_batch batch_of(std::vector<frame_ptr> frames);
frame_ptr control(frame::kind type, std::string text, std::int64_t reset_to = -1);
frame_ptr message_frame(const channel_state& st, const std::string& name,
                        const storage::stored_message& m);
// `subscribed` with the head known to exist; a live-only subscription skips up to it.
frame_ptr subscribed_frame(const channel_state& st, const std::string& name, bool live_only);
// `reset` for a position after `after`; delivery continues from the oldest retained
// ("rewound": `after` is the last seq that survived, and delivery continues after it).
frame_ptr reset_frame(const channel_state& st, const std::string& name, std::string_view reason,
                      storage::seq_t after);
frame_ptr error_frame(std::string_view code, std::string_view message, const std::string& name);

}  // namespace seqcast::hub
