// Fuzzes channel names, percent-decoding, query strings, and the JSON payload scanner.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "text/json_scan.hpp"
#include "text/names.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace seqcast;
  const std::string_view s(reinterpret_cast<const char*>(data), size);
  if (auto decoded = text::percent_decode(s)) (void)text::valid_channel(*decoded);
  (void)text::valid_idempotency_key(s);
  (void)text::query_param(s, "from");
  (void)text::query_param(s, "token");
  (void)text::parse_uint(s);
  const bool valid = !json::validate(s, 64).has_value();
  std::vector<json::batch_item> items;
  if (!json::parse_batch(s, 66, items)) {
    for (const auto& it : items) {
      // Every data span lies inside the input and is itself valid JSON.
      if (it.data.data() < s.data() || it.data.data() + it.data.size() > s.data() + s.size() ||
          json::validate(it.data, 66).has_value() || !valid) {
        __builtin_trap();
      }
    }
  }
  std::string out;
  json::append_string(out, s);
  return 0;
}
