// One WebSocket client: its read loop, its subscriptions, its bounded send queue.
#include "ws/websocket_session.hpp"

#include <atomic>
#include <deque>
#include <unordered_map>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "drain/session_registry.hpp"
#include "hub/subscriber.hpp"
#include "log.hpp"
#include "protocol/close_codes.hpp"
#include "protocol/frames.hpp"
#include "ws/send_queue.hpp"

namespace seqcast::ws {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

namespace {

constexpr int max_client_depth = 16;

std::atomic<std::uint64_t> next_subscription_id{1};

hub::frame_ptr control(std::string text) {
  return std::make_shared<const hub::frame>(
      hub::frame{hub::frame::kind::error, 0, std::move(text), -1, 0});
}

// Runs on its own strand; kept alive by its pending handlers. The hub holds
// only weak references and reaches it through deliver(), which posts.
class websocket_session : public std::enable_shared_from_this<websocket_session>,
                          public hub::subscriber,
                          public drain::drainable {
 public:
  websocket_session(beast::tcp_stream&& stream, auth::reader reader, const http::services& s)
      : ws_(std::move(stream)),
        s_(s),
        reader_(std::move(reader)),
        heartbeat_(ws_.get_executor()),
        drain_timer_(ws_.get_executor()),
        queue_(static_cast<std::size_t>(s.cfg.send_queue_bytes)) {
    s_.state.connections.fetch_add(1, std::memory_order_relaxed);
  }

  ~websocket_session() override {
    if (registry_id_ != 0) s_.sessions.remove(registry_id_);
    for (const auto& [channel, sub] : subs_) s_.hub.unsubscribe(sub.id, channel);
    s_.state.subscriptions.fetch_sub(subs_.size(), std::memory_order_relaxed);
    s_.state.connections.fetch_sub(1, std::memory_order_relaxed);
    account(-static_cast<std::int64_t>(queue_.bytes()));
  }

  void run(beast::http::request<beast::http::string_body> req) {
    net::dispatch(ws_.get_executor(), [self = shared_from_this(), req = std::move(req)]() mutable {
      self->do_accept(std::move(req));
    });
  }

  void deliver(std::uint64_t subscription_id, hub::frame_batch frames, bool replay_page) override {
    net::post(ws_.get_executor(),
              [self = shared_from_this(), subscription_id, frames = std::move(frames),
               replay_page] { self->on_deliver(subscription_id, *frames, replay_page); });
  }

  void reconnect(std::int64_t within_ms) override {
    net::post(ws_.get_executor(),
              [self = shared_from_this(), within_ms] { self->begin_reconnect(within_ms); });
  }

 private:
  void begin_reconnect(std::int64_t within_ms) {
    if (closing_) return;
    enqueue(control(protocol::reconnect(within_ms)));
    // Keep delivering while the client picks its moment, then close.
    heartbeat_.cancel();
    drain_timer_.expires_after(std::chrono::milliseconds(within_ms + 250));
    drain_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->closing_) return;
      self->closing_ = true;
      self->ws_.async_close(
          websocket::close_reason(static_cast<websocket::close_code>(protocol::close_draining),
                                  "draining"),
          [self](beast::error_code) {});
    });
  }

  struct subscription {
    std::uint64_t id;
    std::int64_t last_seq = 0;  // last message seq queued; dedupe guard
    bool wants_more = false;    // a replay page arrived; ask for the next when drained
  };

  void do_accept(beast::http::request<beast::http::string_body> req) {
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
    // A peer silent for this long is dead (half-open): Beast pings it at half
    // the idle time and closes the connection if nothing comes back.
    timeouts.idle_timeout = std::chrono::seconds(2 * s_.cfg.heartbeat_seconds + 5);
    timeouts.keep_alive_pings = true;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(beast::http::field::server, "seqcast"); }));
    ws_.read_message_max(static_cast<std::size_t>(s_.cfg.max_frame_bytes));
    ws_.async_accept(req,
                     beast::bind_front_handler(&websocket_session::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec) {
    if (ec) return fail(ec, "accept");
    registry_id_ = s_.sessions.add(weak_from_this());
    enqueue(control(protocol::welcome(s_.cfg.heartbeat_seconds)));
    schedule_heartbeat();
    do_read();
  }

  void schedule_heartbeat() {
    heartbeat_.expires_after(std::chrono::seconds(s_.cfg.heartbeat_seconds));
    heartbeat_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->closing_) return;
      static const hub::frame_ptr ping = control(std::string(protocol::ping()));
      self->enqueue(ping);
      self->schedule_heartbeat();
    });
  }

  void do_read() {
    ws_.async_read(buffer_,
                   beast::bind_front_handler(&websocket_session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) {
      // The client is gone: nothing may keep this session alive any longer.
      heartbeat_.cancel();
      drain_timer_.cancel();
      return fail(ec, "read");
    }
    if (!ws_.got_text()) {
      enqueue(control(protocol::error("invalid_frame", "binary frames are not accepted")));
    } else {
      const auto data = buffer_.cdata();
      handle(std::string_view(static_cast<const char*>(data.data()), data.size()));
    }
    buffer_.consume(buffer_.size());
    do_read();
  }

  void handle(std::string_view text) {
    auto op = protocol::parse_client_op(text, max_client_depth);
    if (auto* e = std::get_if<protocol::op_error>(&op)) {
      std::optional<std::string_view> ch;
      if (e->channel) ch = *e->channel;
      return enqueue(control(protocol::error(e->code, e->message, ch)));
    }
    if (std::holds_alternative<protocol::ping_op>(op)) {
      static const hub::frame_ptr pong = control(std::string(protocol::pong()));
      return enqueue(pong);
    }
    if (auto* u = std::get_if<protocol::unsubscribe_op>(&op)) return unsubscribe(u->channel);
    subscribe(std::get<protocol::subscribe_op>(std::move(op)));
  }

  void subscribe(protocol::subscribe_op op) {
    if (!reader_.may_read(op.channel)) {
      return enqueue(control(protocol::error("forbidden", "this token may not subscribe here",
                                             std::string_view(op.channel))));
    }
    // A repeated subscribe replaces the previous one (e.g. to resume again).
    unsubscribe(op.channel);
    if (subs_.size() >= static_cast<std::size_t>(s_.cfg.max_subscriptions)) {
      return enqueue(control(protocol::error(
          "too_many_subscriptions",
          fmt::format("at most {} subscriptions per connection", s_.cfg.max_subscriptions),
          std::string_view(op.channel))));
    }
    const std::uint64_t id = next_subscription_id.fetch_add(1, std::memory_order_relaxed);
    subs_.emplace(op.channel, subscription{id, op.since.value_or(0)});
    by_id_.emplace(id, op.channel);
    s_.state.subscriptions.fetch_add(1, std::memory_order_relaxed);
    s_.hub.subscribe(id, weak_from_this(), std::move(op.channel), op.since, std::move(op.epoch));
  }

  void unsubscribe(const std::string& channel) {
    auto it = subs_.find(channel);
    if (it == subs_.end()) return;
    if (it->second.wants_more) --wanting_more_;
    s_.hub.unsubscribe(it->second.id, channel);
    by_id_.erase(it->second.id);
    subs_.erase(it);
    s_.state.subscriptions.fetch_sub(1, std::memory_order_relaxed);
  }

  void on_deliver(std::uint64_t id, const std::vector<hub::frame_ptr>& frames, bool replay_page) {
    auto name = by_id_.find(id);
    if (name == by_id_.end()) return;  // unsubscribed since; drop
    auto& sub = subs_.at(name->second);
    for (const auto& f : frames) {
      if (f->reset_to >= 0) sub.last_seq = f->reset_to;
      if (f->seq != 0) {
        if (f->seq <= sub.last_seq) continue;
        sub.last_seq = f->seq;
      }
      enqueue(f);
    }
    if (replay_page && !sub.wants_more) {
      sub.wants_more = true;
      ++wanting_more_;
      request_more();
    }
  }

  // Asks the hub for the next replay page of each catching-up subscription
  // once the queue has drained enough: a long replay flows at the client's
  // pace, in bounded memory.
  void request_more() {
    if (wanting_more_ == 0 || closing_ || !queue_.below_low_water()) return;
    for (auto& [channel, sub] : subs_) {
      if (!sub.wants_more) continue;
      sub.wants_more = false;
      s_.hub.more(sub.id, channel);
    }
    wanting_more_ = 0;
  }

  void enqueue(hub::frame_ptr f) {
    if (closing_) return;
    const std::size_t bytes = f->text.size();
    const bool fits = queue_.push(std::move(f), bytes);
    account(static_cast<std::int64_t>(bytes));
    if (!fits) return close_slow_consumer();
    if (!writing_) do_write();
  }

  void close_slow_consumer() {
    s_.state.slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
    log::info("ws", "closing slow consumer queued_bytes={}", queue_.bytes());
    closing_ = true;
    heartbeat_.cancel();
    // Free the queue now; keep only the frame being written (Beast holds its buffer).
    const auto before = queue_.bytes();
    queue_.clear(writing_);
    account(static_cast<std::int64_t>(queue_.bytes()) - static_cast<std::int64_t>(before));
    ws_.async_close(
        websocket::close_reason(static_cast<websocket::close_code>(protocol::close_slow_consumer),
                                "slow consumer"),
        [self = shared_from_this()](beast::error_code) {});
  }

  void do_write() {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(queue_.front()->text),
                    beast::bind_front_handler(&websocket_session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) return fail(ec, "write");
    const auto before = queue_.bytes();
    if (closing_) {
      queue_.clear(false);
    } else {
      queue_.pop();
    }
    account(static_cast<std::int64_t>(queue_.bytes()) - static_cast<std::int64_t>(before));
    if (closing_) return;
    if (!queue_.empty()) do_write();
    request_more();
  }

  void account(std::int64_t delta) {
    s_.state.send_queue_bytes.fetch_add(delta, std::memory_order_relaxed);
  }

  static void fail(beast::error_code ec, std::string_view what) {
    if (ec == net::error::operation_aborted || ec == websocket::error::closed ||
        ec == beast::error::timeout || ec == net::error::eof || ec == net::error::connection_reset)
      return;
    log::debug("ws", "{} failed error=\"{}\"", what, ec.message());
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  const http::services& s_;
  auth::reader reader_;
  net::steady_timer heartbeat_;
  net::steady_timer drain_timer_;
  std::uint64_t registry_id_ = 0;
  send_queue<hub::frame_ptr> queue_;
  bool writing_ = false;
  bool closing_ = false;
  std::size_t wanting_more_ = 0;  // subscriptions waiting to ask for their next replay page
  std::unordered_map<std::string, subscription> subs_;  // channel → subscription
  std::unordered_map<std::uint64_t, std::string> by_id_;
};

}  // namespace

void run_websocket_session(beast::tcp_stream stream,
                           beast::http::request<beast::http::string_body> req, auth::reader reader,
                           const http::services& services) {
  std::make_shared<websocket_session>(std::move(stream), std::move(reader), services)
      ->run(std::move(req));
}

}  // namespace seqcast::ws
