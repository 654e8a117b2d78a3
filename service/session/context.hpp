// What a client connection needs of the node, whatever protocol it speaks: owned by
// main, outlives every session. Not the REST API (sessions never publish).
#pragma once

#include "auth/authenticator.hpp"
#include "config.hpp"
#include "drain/session_registry.hpp"
#include "hub/sharded_hub.hpp"
#include "node_state.hpp"

namespace seqcast::session {

struct context {
  const config& cfg;
  const auth::authenticator& auth;
  hub::sharded_hub& hub;
  node_state& state;
  drain::session_registry& sessions;
};

}  // namespace seqcast::session
