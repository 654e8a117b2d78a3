// One WebSocket client: its read loop, its subscriptions, its bounded send queue.
#pragma once

#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "http/server.hpp"

namespace seqcast::ws {

// Takes over an accepted HTTP connection whose request is a valid WebSocket
// upgrade: answers it (101) with the accept value for `key`, then serves the
// protocol. `early` holds bytes the client sent right behind the request;
// `reader` says which channels the client may subscribe to.
void run_websocket_session(boost::asio::ip::tcp::socket socket, std::string key, std::string early,
                           auth::reader reader, const http::services& services);

}  // namespace seqcast::ws
