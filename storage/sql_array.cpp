// PostgreSQL array literals.
#include "sql_array.hpp"

#include <fmt/format.h>

namespace seqcast::storage {

void text_array::add(std::string_view s) {
  if (buf_.size() > 1) buf_ += ',';
  buf_.reserve(buf_.size() + s.size() + 2);
  buf_ += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') buf_ += '\\';
    buf_ += c;
  }
  buf_ += '"';
}

void text_array::add_null() {
  if (buf_.size() > 1) buf_ += ',';
  buf_ += "NULL";
}

std::string int_array(const std::vector<std::int64_t>& values) {
  return fmt::format("{{{}}}", fmt::join(values, ","));
}

}  // namespace seqcast::storage
