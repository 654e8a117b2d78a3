// Who a node is to its operators.
#include "node_identity.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <array>

namespace seqcast {

node_identity make_node_identity(const config& cfg, std::string_view host_name, unsigned short port,
                                 std::string version, std::int64_t started_at_us) {
  node_identity id;
  id.version = std::move(version);
  id.started_at_us = started_at_us;
  id.name = cfg.node_name.empty() ? fmt::format("{}:{}", host_name, port) : cfg.node_name;
  if (!cfg.advertise_url.empty()) {
    id.address = cfg.advertise_url;
  } else {
    std::string host = cfg.listen.substr(0, cfg.listen.rfind(':'));
    if (host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]") {
      host = std::string(host_name);
    }
    id.address = fmt::format("http://{}:{}", host, port);
  }
  return id;
}

std::string host_name() {
  std::array<char, 256> buf{};
  if (gethostname(buf.data(), buf.size() - 1) != 0 || buf[0] == '\0') return "localhost";
  return std::string(buf.data());
}

}  // namespace seqcast
