// seqcast's own WebSocket protocol (/v1/ws): protocol/frames.hpp over the session.
#include <fmt/format.h>

#include "protocol/frames.hpp"
#include "session/face.hpp"
#include "text/names.hpp"

namespace seqcast::session {

namespace {

constexpr int max_client_depth = 16;

class native final : public face {
 public:
  connection_kind kind() const override { return connection_kind::websocket; }
  std::string_view subprotocol() const override { return {}; }

  void greet(host& h) override { h.send(protocol::welcome(h.ctx().cfg.heartbeat_seconds)); }

  std::chrono::seconds ping_period(const config& cfg) const override {
    return std::chrono::seconds(cfg.heartbeat_seconds);
  }
  void ping(host& h) override {
    static const hub::frame_ptr frame = own_text(std::string(protocol::ping()));
    h.send(frame);
  }

  void on_binary(host& h) override {
    h.send(protocol::error("invalid_frame", "binary frames are not accepted"));
  }

  void on_text(std::string_view text, host& h) override {
    auto op = protocol::parse_client_op(text, max_client_depth);
    if (auto* e = std::get_if<protocol::op_error>(&op)) {
      std::optional<std::string_view> ch;
      if (e->channel) ch = *e->channel;
      return h.send(protocol::error(e->code, e->message, ch));
    }
    if (std::holds_alternative<protocol::ping_op>(op)) {
      static const hub::frame_ptr pong = own_text(std::string(protocol::pong()));
      return h.send(pong);
    }
    if (auto* u = std::get_if<protocol::unsubscribe_op>(&op)) return h.unsubscribe(u->channel);
    subscribe(std::get<protocol::subscribe_op>(std::move(op)), h);
  }

  std::string drain_notice(std::int64_t within_ms) const override {
    return protocol::reconnect(within_ms);
  }

  bool deliver(subscription&, const hub::frame_ptr& f, host& h) override {
    h.send(f);
    return true;
  }
  void caught_up(subscription&, host&) override {}

 private:
  void subscribe(protocol::subscribe_op op, host& h) {
    if (op.signed_name) {
      // The signature is the permission, as for Turbo's streams.
      auto name = h.ctx().auth.verified_stream(op.channel);
      if (!name) {
        return h.send(protocol::error("forbidden", "signed_stream_name does not verify"));
      }
      if (!text::valid_channel(*name)) {
        return h.send(protocol::error(
            "invalid_channel",
            fmt::format("the signed stream name is not a channel name: {}", text::channel_rule)));
      }
      op.channel = std::move(*name);
    } else if (!h.reader().may_read(op.channel)) {
      return h.send(protocol::error("forbidden", "this token may not subscribe here",
                                    std::string_view(op.channel)));
    }
    // A repeated subscribe replaces the previous one (e.g. to resume again).
    h.unsubscribe(op.channel);
    subscribe_request r;
    r.sub.key = op.channel;
    r.sub.channel = op.channel;
    r.since = op.since;
    r.epoch = std::move(op.epoch);
    if (!h.subscribe(std::move(r))) {
      const auto max = h.ctx().cfg.max_subscriptions;
      h.send(protocol::error("too_many_subscriptions",
                             fmt::format("at most {} subscriptions per connection", max),
                             std::string_view(op.channel)));
    }
  }
};

}  // namespace

std::unique_ptr<face> native_face() { return std::make_unique<native>(); }

}  // namespace seqcast::session
