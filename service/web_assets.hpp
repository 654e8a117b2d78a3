// Files served by the node itself, carried inside the binary.
#pragma once

#include <string_view>

namespace seqcast::web {

std::string_view index_html();   // the live console at /
std::string_view client_js();    // the bundled JS client at /v1/client.js
std::string_view client_d_ts();  // its TypeScript declarations at /v1/client.d.ts

}  // namespace seqcast::web
