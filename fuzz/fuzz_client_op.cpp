// Fuzzes the WebSocket op parser: any frame text must give an op or an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/frames.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto op = seqcast::protocol::parse_client_op(text, 16);
  if (auto* e = std::get_if<seqcast::protocol::op_error>(&op)) {
    // Error frames echo the channel: they must stay valid JSON text.
    std::optional<std::string_view> ch;
    if (e->channel) ch = *e->channel;
    (void)seqcast::protocol::error(e->code, e->message, ch);
  }
  return 0;
}
