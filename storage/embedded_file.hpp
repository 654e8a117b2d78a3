// A file carried inside the binary (migrations, web assets), made by cmake/embed.cmake.
#pragma once

#include <string_view>
#include <vector>

namespace seqcast {

struct embedded_file {
  std::string_view name;     // file name without directory, e.g. "001_init.sql"
  std::string_view content;  // exact bytes of the file
};

}  // namespace seqcast
