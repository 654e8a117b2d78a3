// Server-Sent Events: one subscription streamed as text/event-stream.
// Included only by http_session.cpp (it pulls in Beast).
#pragma once

#include <optional>
#include <string>

#include <boost/beast/core/tcp_stream.hpp>

#include "session/context.hpp"
#include "types.hpp"

namespace seqcast::http {

// Takes over a connection whose GET /v1/sse/{channel} was accepted: writes the
// event-stream header, subscribes (resuming after `since` when given), and
// streams `message`/`reset` events and `: ping` comments until the client goes.
void run_sse_session(boost::beast::tcp_stream stream, std::string channel,
                     std::optional<storage::seq_t> since, std::optional<std::string> epoch,
                     const session::context& ctx);

}  // namespace seqcast::http
