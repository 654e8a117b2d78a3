// One WebSocket client, whatever face it speaks: its read loop, its subscriptions,
// its bounded send queue, heartbeat and drain.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "auth/authenticator.hpp"
#include "session/context.hpp"
#include "session/face.hpp"

namespace seqcast::session {

// Takes over an accepted HTTP connection whose request is a valid WebSocket
// upgrade: answers it (101, with the face's subprotocol) with the accept value for
// `key`, then serves the face. `early` holds bytes the client sent right behind the
// request; `reader` says which channels the client may subscribe to by name.
void run_websocket_session(boost::asio::ip::tcp::socket socket, std::string key, std::string early,
                           auth::reader reader, std::unique_ptr<face> face, const context& ctx);

}  // namespace seqcast::session
