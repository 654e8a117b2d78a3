// Fuzzes the WebSocket frame reader: any bytes, split anywhere, must give
// events or one error with a close code, never a crash, and never more
// buffered than one message allows.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "ws/wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  constexpr std::size_t limit = 4096;
  seqcast::ws::reader r(limit);
  // The first byte picks where the input is split, as TCP might.
  const std::size_t cut = size > 1 ? data[0] % size : 0;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  bool stopped_seen = false;
  auto on = [&](const seqcast::ws::event& e) {
    if (stopped_seen) std::abort();  // nothing after a close or an error
    if (e.type == seqcast::ws::event::kind::error || e.type == seqcast::ws::event::kind::close)
      stopped_seen = true;
    if (e.type == seqcast::ws::event::kind::text && !seqcast::ws::valid_utf8(e.payload))
      std::abort();
    if (e.payload.size() > limit) std::abort();
  };
  const std::size_t first = std::min(cut, bytes.size());
  r.feed(std::span<char>(bytes.data(), first), on);
  r.feed(std::span<char>(bytes.data() + first, bytes.size() - first), on);
  if (r.buffered_bytes() > limit + 14) std::abort();
  return 0;
}
