// A WebSocket face: what one protocol says over the shared session machinery
// (session/websocket_session.cpp: read loop, send queue, pacing, heartbeat, drain).
// The session never looks inside a face's frames; a face never touches the socket.
//
//   face          subprotocol                          subscribed by  live messages encoded
//   native        none                                 channel        once per channel (the hub)
//   Action Cable  actioncable-v1-json, -v1-ext-json    identifier     once per (frame, identifier)
//                                                                     per I/O thread
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/authenticator.hpp"
#include "hub/subscriber.hpp"
#include "session/context.hpp"
#include "types.hpp"

namespace seqcast::session {

// One subscription of a connection, as the session keeps it.
struct subscription {
  std::string key;            // the face's name for it: a channel, an identifier
  std::string channel;        // the seqcast channel
  std::int64_t last_seq = 0;  // last message seq queued; dedupe guard
  // Face state (Action Cable): history asked and not yet answered; the confirm
  // already sent (a `history` command); only messages at or after this time.
  bool history_due = false;
  bool confirmed = false;
  std::int64_t min_ts_us = 0;
  std::int64_t head_at_subscribe = 0;  // a refused history skips to here: live only
};

struct subscribe_request {
  subscription sub;  // key, channel, face state (last_seq is set from `since`)
  std::optional<storage::seq_t> since;
  std::optional<std::string> epoch;
};

// What a face may ask of its session (all on the session's thread).
class host {
 public:
  virtual const context& ctx() const = 0;
  virtual const auth::reader& reader() const = 0;
  // Queues a frame of the face's own (shared ones are sealed once by the face).
  virtual void send(hub::frame_ptr f) = 0;
  virtual void send(std::string text) = 0;
  // Starts a subscription; false when the connection has max_subscriptions already.
  virtual bool subscribe(subscribe_request r) = 0;
  virtual void unsubscribe(std::string_view key) = 0;
  virtual subscription* find(std::string_view key) = 0;
  // Sends a close frame after what is queued.
  virtual void close(std::uint16_t code, std::string_view reason) = 0;

 protected:
  ~host() = default;
};

class face {
 public:
  virtual ~face() = default;

  // What this face counts as in the node's connections (websocket or cable).
  virtual connection_kind kind() const = 0;
  // Selected in the 101 ("" for none).
  virtual std::string_view subprotocol() const = 0;
  // What follows the 101 in the same write (welcome; or a refusal and a close).
  virtual void greet(host& h) = 0;
  // The app-level ping and its period (the session also sends WebSocket pings).
  virtual std::chrono::seconds ping_period(const config& cfg) const = 0;
  virtual void ping(host& h) = 0;
  virtual void on_text(std::string_view text, host& h) = 0;
  virtual void on_binary(host& h) = 0;
  // Sent on drain before the close 1012 (`within_ms`: when the client should go).
  virtual std::string drain_notice(std::int64_t within_ms) const = 0;

  // A frame of `sub` from the hub, past the session's dedupe (a message's seq is
  // new; a reset's continuation already applied). Sends what goes out through `h`;
  // returns false when the subscription ends with it (the session drops it).
  virtual bool deliver(subscription& sub, const hub::frame_ptr& f, host& h) = 0;
  // The subscription is live: its history, if any, has all been delivered.
  virtual void caught_up(subscription& sub, host& h) = 0;
};

// A text frame of our own, sealed for the WebSocket once.
hub::frame_ptr own_text(std::string text);

// seqcast's own protocol (/v1/ws).
std::unique_ptr<face> native_face();
// Action Cable (/cable) with the selected subprotocol (ext-json: positions and history).
// `token_refused`: the connection's token did not verify; it is told so and closed.
std::unique_ptr<face> cable_face(std::string_view subprotocol, bool token_refused);

}  // namespace seqcast::session
