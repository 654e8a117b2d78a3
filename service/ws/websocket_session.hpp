// One WebSocket client: its read loop, its subscriptions, its bounded send queue.
// Included only by http_session.cpp (it pulls in Beast).
#pragma once

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/server.hpp"

namespace seqcast::ws {

// Takes over an accepted HTTP connection whose request is a WebSocket upgrade.
// `reader` says which channels the client may subscribe to.
void run_websocket_session(boost::beast::tcp_stream stream,
                           boost::beast::http::request<boost::beast::http::string_body> req,
                           auth::reader reader, const http::services& services);

}  // namespace seqcast::ws
