// Who a node is to its operators: its name, where to reach it, its version and start.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config.hpp"

namespace seqcast {

struct node_identity {
  std::string name;     // node_name: unique among the nodes of one database
  std::string address;  // advertise_url: where operators reach this node
  std::string version;
  std::int64_t started_at_us = 0;  // microseconds since the Unix epoch
};

// The identity of a node serving on `port`: node_name and advertise_url when set;
// else "<host_name>:<port>", and http://<listen host>:<port> (the host name in place
// of a wildcard listen host such as 0.0.0.0 or [::]).
node_identity make_node_identity(const config& cfg, std::string_view host_name, unsigned short port,
                                 std::string version, std::int64_t started_at_us);

// This machine's host name ("localhost" when it cannot be read).
std::string host_name();

}  // namespace seqcast
