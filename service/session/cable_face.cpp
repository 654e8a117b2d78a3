// Action Cable (/cable): protocol/cable.hpp over the session. Subscriptions are
// keyed by identifier (two identifiers may name one stream); with ext-json every
// message carries its position and a subscribe may carry one to resume from.
#include <chrono>
#include <unordered_map>

#include "log.hpp"
#include "protocol/cable.hpp"
#include "protocol/frames.hpp"
#include "session/face.hpp"
#include "text/names.hpp"

namespace seqcast::session {

namespace {

constexpr int max_command_depth = 16;

// A live message reaches every connection of a thread in one pass: the first
// connection of an identifier encodes it, the others send the same bytes.
class message_cache {
 public:
  hub::frame_ptr get(const hub::frame_ptr& src, bool ext, const std::string& identifier,
                     const std::string& channel) {
    key k{src.get(), ext, identifier};
    if (auto it = map_.find(k); it != map_.end()) return it->second.out;
    if (map_.size() >= max_entries) map_.clear();
    std::string text = protocol::cable::message_head(identifier, src->data().size());
    text += src->data();
    text += protocol::cable::message_tail(ext, channel, src->epoch(), src->seq);
    hub::frame_ptr out = own_text(std::move(text));
    map_.emplace(std::move(k), entry{src, out});
    return out;
  }

 private:
  static constexpr std::size_t max_entries = 4096;
  struct key {
    const hub::frame* src;
    bool ext;
    std::string identifier;
    bool operator==(const key&) const = default;
  };
  struct key_hash {
    std::size_t operator()(const key& k) const {
      return std::hash<const void*>()(k.src) ^ (std::hash<std::string>()(k.identifier) << 1) ^
             static_cast<std::size_t>(k.ext);
    }
  };
  struct entry {
    hub::frame_ptr src;  // kept so that its address names it while cached
    hub::frame_ptr out;
  };
  std::unordered_map<key, entry, key_hash> map_;
};

message_cache& thread_cache() {
  thread_local message_cache cache;
  return cache;
}

// One ping frame per second per thread, shared by its connections.
hub::frame_ptr ping_frame() {
  thread_local std::int64_t second = -1;
  thread_local hub::frame_ptr frame;
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  if (now != second) {
    second = now;
    frame = own_text(protocol::cable::ping(now));
  }
  return frame;
}

class cable final : public face {
 public:
  cable(std::string_view subprotocol, bool token_refused)
      : subprotocol_(subprotocol),
        ext_(subprotocol == protocol::cable::ext_json_protocol),
        token_refused_(token_refused) {}

  connection_kind kind() const override { return connection_kind::cable; }
  std::string_view subprotocol() const override { return subprotocol_; }

  void greet(host& h) override {
    if (token_refused_) {
      h.send(protocol::cable::disconnect("unauthorized", false));
      return h.close(1000, "unauthorized");
    }
    static const hub::frame_ptr welcome = own_text(protocol::cable::welcome());
    h.send(welcome);
  }

  std::chrono::seconds ping_period(const config&) const override { return std::chrono::seconds(3); }
  void ping(host& h) override { h.send(ping_frame()); }

  void on_binary(host&) override {}  // Action Cable speaks text only; nothing is answered

  void on_text(std::string_view text, host& h) override {
    auto c = protocol::cable::parse_command(text, max_command_depth);
    using kind = protocol::cable::command::kind;
    switch (c.type) {
      case kind::subscribe:
        return subscribe(std::move(c), h);
      case kind::unsubscribe:
        return h.unsubscribe(c.identifier);
      case kind::history:
        return history(std::move(c), h);
      case kind::ignored:
        return;
    }
  }

  std::string drain_notice(std::int64_t) const override {
    return protocol::cable::disconnect("server_restart", true);
  }

  bool deliver(subscription& sub, const hub::frame_ptr& f, host& h) override {
    using k = hub::frame::kind;
    switch (f->type) {
      case k::subscribed:
        sub.head_at_subscribe = f->head_seq;
        if (!sub.confirmed) {
          sub.confirmed = true;
          h.send(protocol::cable::confirm(sub.key));
        }
        return true;
      case k::error:
        h.send(protocol::cable::reject(sub.key));
        return false;
      case k::reset:
        // A position that cannot be resumed: say so, then live only. (Asked by
        // time, the oldest retained is where it starts anyway; and once live, a
        // channel's new incarnation simply continues.)
        if (sub.history_due && sub.min_ts_us == 0) {
          sub.history_due = false;
          sub.last_seq = std::max(sub.last_seq, sub.head_at_subscribe);
          h.send(protocol::cable::reject_history(sub.key));
        }
        return true;
      case k::message:
        if (sub.min_ts_us != 0 && f->ts_us < sub.min_ts_us) return true;
        h.send(thread_cache().get(f, ext_, sub.key, sub.channel));
        return true;
    }
    return true;
  }

  void caught_up(subscription& sub, host& h) override {
    sub.min_ts_us = 0;
    if (!sub.history_due) return;
    sub.history_due = false;
    h.send(protocol::cable::confirm_history(sub.key));
  }

 private:
  void subscribe(protocol::cable::command c, host& h) {
    if (h.find(c.identifier)) return;  // already subscribed: no answer, nothing changes
    if (c.identifier.size() > protocol::max_identifier_bytes) {
      return h.send(protocol::cable::reject(c.identifier));
    }
    auto channel = channel_of(c.identifier, h);
    if (!channel) return h.send(protocol::cable::reject(c.identifier));
    subscribe_request r;
    r.sub.key = std::move(c.identifier);
    r.sub.channel = std::move(*channel);
    if (ext_ && c.history) aim(r, *c.history, 0);
    if (!h.subscribe(r)) h.send(protocol::cable::reject(r.sub.key));
  }

  // The `history` command: the messages after the given position not yet delivered
  // here, then confirm_history (or reject_history), without a second confirm.
  void history(protocol::cable::command c, host& h) {
    if (!ext_) return;
    subscription* sub = h.find(c.identifier);
    if (!sub) return;
    subscribe_request r;
    r.sub = *sub;
    r.sub.confirmed = true;
    aim(r, *c.history, sub->last_seq);
    if (!r.since) return;  // nothing asked
    h.unsubscribe(c.identifier);
    h.subscribe(std::move(r));
  }

  // Where a subscription with `history` starts: after the stream's position, or at
  // the first message at or after `since`; `delivered`: the last seq already sent.
  static void aim(subscribe_request& r, const protocol::cable::history_request& hist,
                  std::int64_t delivered) {
    if (auto it = hist.streams.find(r.sub.channel); it != hist.streams.end()) {
      r.since = std::max(it->second.offset, delivered);
      r.epoch = it->second.epoch;
      r.sub.history_due = true;
    } else if (hist.since > 0) {
      r.since = delivered;
      r.sub.min_ts_us = hist.since * 1'000'000;
      r.sub.history_due = true;
    }
  }

  static std::optional<std::string> channel_of(const std::string& identifier, host& h) {
    auto id = protocol::cable::parse_identifier(identifier, max_command_depth);
    if (!id) return std::nullopt;
    std::optional<std::string> name;
    if (id->type == protocol::cable::identifier::kind::signed_stream) {
      name = h.ctx().auth.verified_stream(id->value);
    } else if (h.reader().may_read(id->value)) {
      name = std::move(id->value);
    }
    if (!name || !text::valid_channel(*name)) return std::nullopt;
    return name;
  }

  std::string subprotocol_;
  bool ext_;
  bool token_refused_;
};

}  // namespace

std::unique_ptr<face> cable_face(std::string_view subprotocol, bool token_refused) {
  return std::make_unique<cable>(subprotocol, token_refused);
}

}  // namespace seqcast::session
