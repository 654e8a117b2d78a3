// PostgreSQL array literals, so that a whole batch travels as one parameter per column.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seqcast::storage {

// Builds a text[] literal: {"a","b\"c",NULL}. Every element is quoted, with
// backslash and double quote escaped, so any text round-trips exactly.
class text_array {
 public:
  void add(std::string_view s);
  void add_null();
  void add_optional(const std::optional<std::string>& s) { s ? add(*s) : add_null(); }
  std::string str() const { return buf_ + "}"; }

 private:
  std::string buf_ = "{";
};

// Builds a bigint[] literal: {1,2,3}.
std::string int_array(const std::vector<std::int64_t>& values);

}  // namespace seqcast::storage
