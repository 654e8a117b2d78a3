// A validating JSON scanner that keeps the bytes: payloads are checked, never re-serialised.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seqcast::json {

// Checks that `text` is exactly one JSON value (RFC 8259) in valid UTF-8,
// nested at most `max_depth` deep. Returns the reason when it is not.
std::optional<std::string> validate(std::string_view text, int max_depth);

// One item of a batch publish; `data` points into the request body.
struct batch_item {
  std::string channel;
  std::string_view data;
  std::optional<std::string> idempotency_key;
};

// Parses {"messages":[{"channel":…,"data":…,"idempotency_key":…?},…]}.
// Returns the reason when the body is not of that shape.
std::optional<std::string> parse_batch(std::string_view body, int max_depth,
                                       std::vector<batch_item>& out);

// Appends `s` to `out` as a JSON string literal (quotes and escapes added).
void append_string(std::string& out, std::string_view s);

// `s` as a JSON string literal.
std::string quoted(std::string_view s);

}  // namespace seqcast::json
