// Fuzzes the HTTP request path: Beast's parser with our limits, then what the router
// does with the target (path split, channel decoding, query parameters) and the body.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "text/json_scan.hpp"
#include "text/names.hpp"

namespace bhttp = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace seqcast;
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(64 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_done()) return 0;
  const auto& req = parser.get();
  const std::string_view target = req.target();
  const auto q = target.find('?');
  const std::string_view path = target.substr(0, q);
  if (q != std::string_view::npos) {
    (void)text::query_param(target.substr(q + 1), "from");
    (void)text::query_param(target.substr(q + 1), "limit");
  }
  constexpr std::string_view prefix = "/v1/channels/";
  if (path.starts_with(prefix)) {
    auto rest = path.substr(prefix.size());
    if (auto channel = text::percent_decode(rest.substr(0, rest.find('/')))) {
      (void)text::valid_channel(*channel);
    }
  }
  if (auto it = req.find("Idempotency-Key"); it != req.end()) {
    (void)text::valid_idempotency_key(it->value());
  }
  (void)json::validate(req.body(), 64);
  std::vector<json::batch_item> items;
  (void)json::parse_batch(req.body(), 66, items);
  return 0;
}
