// One WebSocket client: its read loop, its subscriptions, its bounded send queue.
// What it says is its face's (session/face.hpp); everything else is here, once.
//
// The session speaks the wire format itself (ws/wire.hpp) on a plain socket.
// That is what makes fan-out cheap: every frame it sends is shared, already
// encoded (header included) by the hub, and everything queued goes out in one
// gathered write — and because control frames (pong, ping, close) go through
// the same queue, nothing else ever writes to the socket in between.
#include "session/websocket_session.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <unordered_map>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "drain/session_registry.hpp"
#include "hub/subscriber.hpp"
#include "io_threads.hpp"
#include "log.hpp"
#include "protocol/close_codes.hpp"
#include "session/replay_credit.hpp"
#include "session/send_queue.hpp"
#include "ws/wire.hpp"

namespace seqcast::session {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using clock = std::chrono::steady_clock;

namespace {

using ws::opcode;
constexpr std::size_t max_gather = 64;  // frames per write (two buffers each)
constexpr auto close_timeout = std::chrono::seconds(5);

std::atomic<std::uint64_t> next_subscription_id{1};

// A frame of our own (not from the hub): protocol JSON, a control frame, or
// (with opcode nullopt) raw bytes such as the handshake response.
hub::frame_ptr own_frame(std::string payload, std::optional<opcode> op = opcode::text) {
  hub::frame f;
  f.type = hub::frame::kind::error;
  f.text = std::move(payload);
  if (op) {
    const auto h = ws::encode_header(*op, f.text.size());
    f.head.bytes = h.bytes;
    f.head.size = h.size;
  }
  return std::make_shared<const hub::frame>(std::move(f));
}

// Runs on its own strand; kept alive by its pending handlers. The hub holds
// only weak references and reaches it through hub/fanout.hpp, on this thread.
class websocket_session final : public std::enable_shared_from_this<websocket_session>,
                                public hub::subscriber,
                                public drain::drainable,
                                public host {
 public:
  websocket_session(tcp::socket socket, auth::reader reader, std::unique_ptr<face> f,
                    const context& s)
      : socket_(std::move(socket)),
        s_(s),
        reader_(std::move(reader)),
        face_(std::move(f)),
        in_(static_cast<std::size_t>(s.cfg.max_frame_bytes)),
        heartbeat_(socket_.get_executor()),
        drain_timer_(socket_.get_executor()),
        queue_(static_cast<std::size_t>(s.cfg.send_queue_bytes)),
        credit_(static_cast<std::size_t>(s.cfg.send_queue_bytes), min_replay_grant(s.cfg)),
        kind_(face_->kind()) {
    s_.state.connection_opened(kind_);
  }

  ~websocket_session() override {
    if (registry_id_ != 0) s_.sessions.remove(registry_id_);
    for (const auto& [id, sub] : subs_) s_.hub.unsubscribe(id, sub.channel);
    s_.state.subscriptions.fetch_sub(subs_.size(), std::memory_order_relaxed);
    s_.state.connection_closed(kind_);
    account(-static_cast<std::int64_t>(queue_.bytes()));
  }

  // `key` was validated by the caller; `early` holds bytes the client sent
  // right behind its request.
  void run(std::string key, std::string early) {
    net::dispatch(socket_.get_executor(),
                  [self = shared_from_this(), key = std::move(key),
                   early = std::move(early)]() mutable { self->start(key, std::move(early)); });
  }

  std::size_t home() const override { return home_; }
  void deliver_here(std::uint64_t subscription_id, const hub::frame_batch& frames,
                    hub::pacing p) override {
    on_deliver(subscription_id, *frames, p);
  }
  void flush_here() override {
    if (std::exchange(flush_due_, false)) flush();
  }

  void reconnect(std::int64_t within_ms) override {
    net::post(socket_.get_executor(),
              [self = shared_from_this(), within_ms] { self->begin_reconnect(within_ms); });
  }

 private:
  enum class state { open, closing, closed };  // closing: our close frame is queued or sent

  // ---- lifecycle ------------------------------------------------------------

  void start(const std::string& key, std::string early) {
    error_code ec;
    socket_.non_blocking(true, ec);
    socket_.set_option(tcp::no_delay(true), ec);
    if (ec) return finish();
    registry_id_ = s_.sessions.add(weak_from_this());
    last_heard_ = clock::now();
    // The 101 and the greeting leave in one write.
    const auto sub = face_->subprotocol();
    push(own_frame(fmt::format("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{}{}{}"
                               "Server: seqcast\r\n\r\n",
                               ws::accept_key(key), sub.empty() ? "" : "Sec-WebSocket-Protocol: ",
                               sub, sub.empty() ? "" : "\r\n"),
                   std::nullopt));
    face_->greet(*this);
    flush();
    last_ping_frame_ = clock::now();
    if (state_ == state::open) schedule_heartbeat();
    if (!early.empty()) consume(std::span<char>(early.data(), early.size()));
    if (state_ != state::closed) wait_readable();
  }

  // Sends a close frame (code 0: one without a code) after what is queued, then waits (bounded) for
  // the client's close frame or end of stream before dropping the connection.
  void start_close(std::uint16_t code, std::string_view reason) {
    if (state_ != state::open) return;
    // Past the queue's bound if need be: it is small, and the last frame.
    auto f = own_frame(code == 0 ? std::string() : ws::close_payload(code, reason), opcode::close);
    const std::size_t bytes = f->wire_size();
    queue_.push(std::move(f), bytes);
    account(static_cast<std::int64_t>(bytes));
    state_ = state::closing;
    drain_timer_.cancel();
    heartbeat_.expires_after(close_timeout);
    heartbeat_.async_wait([weak = weak_from_this()](error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->finish();
    });
    flush();
  }

  // The connection is over: nothing more is read or written.
  void finish() {
    if (state_ == state::closed) return;
    state_ = state::closed;
    heartbeat_.cancel();
    drain_timer_.cancel();
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    const auto before = queue_.bytes();
    queue_.clear(false);
    account(-static_cast<std::int64_t>(before));
  }

  void begin_reconnect(std::int64_t within_ms) {
    if (state_ != state::open) return;
    push(own_frame(face_->drain_notice(within_ms)));
    flush();
    // Keep delivering while the client picks its moment, then close.
    heartbeat_.cancel();
    drain_timer_.expires_after(std::chrono::milliseconds(within_ms + 250));
    drain_timer_.async_wait([weak = weak_from_this()](error_code ec) {
      if (auto self = weak.lock(); self && !ec)
        self->start_close(protocol::close_draining, "draining");
    });
  }

  // The face's app-level ping (for browsers and load balancers) every face period,
  // and every heartbeat_seconds a ping frame whose pong proves the client alive:
  // one silent for 2 × heartbeat + 5 s is gone (half-open), and so is one that has
  // not taken a byte for as long.
  void schedule_heartbeat() {
    heartbeat_.expires_after(face_->ping_period(s_.cfg));
    heartbeat_.async_wait([weak = weak_from_this()](error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->state_ != state::open) return;
      const auto now = clock::now();
      const auto heartbeat = std::chrono::seconds(self->s_.cfg.heartbeat_seconds);
      const auto dead_after = 2 * heartbeat + std::chrono::seconds(5);
      if (now - self->last_heard_ > dead_after ||
          (self->write_blocked_ && now - self->blocked_since_ > dead_after)) {
        log::debug("ws", "closing an unresponsive connection");
        return self->finish();
      }
      self->face_->ping(*self);
      if (now - self->last_ping_frame_ >= heartbeat - std::chrono::milliseconds(500)) {
        static const hub::frame_ptr ping_frame = own_frame({}, opcode::ping);
        self->push(ping_frame);
        self->last_ping_frame_ = now;
      }
      self->flush();
      self->schedule_heartbeat();
    });
  }

  // ---- reading --------------------------------------------------------------

  void wait_readable() {
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this()](error_code ec) { self->on_readable(ec); });
  }

  void on_readable(error_code ec) {
    if (ec || state_ == state::closed) return finish();
    // Read into a buffer of the thread, not of the connection: most
    // connections are idle and hold no read memory at all. What the reader
    // needs to keep (a partial frame) it copies.
    thread_local std::array<char, 16384> scratch;
    for (;;) {
      const std::size_t n = socket_.read_some(net::buffer(scratch), ec);
      if (ec == net::error::would_block || ec == net::error::try_again) break;
      if (ec) return finish();  // end of stream or reset: the client is gone
      last_heard_ = clock::now();
      consume(std::span<char>(scratch.data(), n));
      if (state_ == state::closed) return;
      if (n < scratch.size()) break;
    }
    wait_readable();
  }

  void consume(std::span<char> bytes) {
    in_.feed(bytes, [this](const ws::event& e) { on_event(e); });
  }

  void on_event(const ws::event& e) {
    using event = ws::event;
    switch (e.type) {
      case event::kind::text:
        if (state_ == state::open) face_->on_text(e.payload, *this);
        break;
      case event::kind::binary:
        if (state_ == state::open) face_->on_binary(*this);
        break;
      case event::kind::ping:
        push(own_frame(std::string(e.payload), opcode::pong));
        break;
      case event::kind::pong:
        break;
      case event::kind::close:
        // Answer with the same code (none for none), then drop the connection
        // once it is sent; if we had asked first, this is the answer.
        if (state_ == state::open) {
          peer_closed_ = true;
          start_close(e.code == 1005 ? 0 : e.code, {});
        } else {
          finish();
        }
        return;
      case event::kind::error:
        log::debug("ws", "closing code={} reason=\"{}\"", e.code, e.payload);
        return start_close(e.code, e.payload);
    }
    flush();
  }

  // ---- what the face may ask (host) ------------------------------------------

  const context& ctx() const override { return s_; }
  const auth::reader& reader() const override { return reader_; }
  void send(hub::frame_ptr f) override { push(std::move(f)); }
  void send(std::string text) override { push(own_frame(std::move(text))); }
  void close(std::uint16_t code, std::string_view reason) override { start_close(code, reason); }

  subscription* find(std::string_view key) override {
    auto it = by_key_.find(std::string(key));
    return it == by_key_.end() ? nullptr : &subs_.at(it->second);
  }

  bool subscribe(subscribe_request r) override {
    if (subs_.size() >= static_cast<std::size_t>(s_.cfg.max_subscriptions)) return false;
    const std::uint64_t id = next_subscription_id.fetch_add(1, std::memory_order_relaxed);
    r.sub.last_seq = r.since.value_or(0);
    by_key_.emplace(r.sub.key, id);
    std::string channel = r.sub.channel;
    subs_.emplace(id, std::move(r.sub));
    s_.state.subscriptions.fetch_add(1, std::memory_order_relaxed);
    const std::size_t grant = credit_.open(id, r.since.has_value());
    s_.hub.subscribe(id, weak_from_this(), std::move(channel), r.since, std::move(r.epoch), grant);
    return true;
  }

  void unsubscribe(std::string_view key) override {
    auto it = by_key_.find(std::string(key));
    if (it == by_key_.end()) return;
    drop(it->second);
  }

  void drop(std::uint64_t id) {
    auto sub = subs_.find(id);
    if (sub == subs_.end()) return;
    credit_.close(id);
    s_.hub.unsubscribe(id, sub->second.channel);
    by_key_.erase(sub->second.key);
    subs_.erase(sub);
    s_.state.subscriptions.fetch_sub(1, std::memory_order_relaxed);
  }

  // ---- delivering -----------------------------------------------------------

  // Queues; flush_here (once per fan-out pass) writes.
  void on_deliver(std::uint64_t id, const std::vector<hub::frame_ptr>& frames, hub::pacing p) {
    if (state_ != state::open) return;
    auto it = subs_.find(id);
    if (it == subs_.end()) return;  // unsubscribed since; drop
    auto& sub = it->second;
    for (const auto& f : frames) {
      if (f->reset_to >= 0) sub.last_seq = f->reset_to;
      if (f->seq != 0) {
        if (f->seq <= sub.last_seq) continue;
        sub.last_seq = f->seq;
      }
      if (!face_->deliver(sub, f, *this)) {
        drop(id);
        flush_due_ = true;
        return;
      }
    }
    if (p == hub::pacing::caught_up) face_->caught_up(sub, *this);
    credit_.on_delivery(id, p);
    flush_due_ = true;
  }

  // Grants the next replay pages once the queue has drained enough: a long
  // replay flows at the client's pace, in bounded memory (session/replay_credit.hpp).
  void request_more() {
    if (!credit_.anyone_waiting() || state_ != state::open || !queue_.below_low_water()) return;
    credit_.grant_waiting([this](std::uint64_t id, std::size_t grant) {
      s_.hub.more(id, subs_.at(id).channel, grant);
    });
  }

  // Queues a frame; flush() sends it. Past the queue's limit the client is a
  // slow consumer: it is closed (and resumes later) rather than buffered for.
  void push(hub::frame_ptr f) {
    if (state_ != state::open) return;
    const std::size_t bytes = f->wire_size();
    const bool fits = queue_.push(std::move(f), bytes);
    account(static_cast<std::int64_t>(bytes));
    if (!fits) close_slow_consumer();
  }

  void close_slow_consumer() {
    s_.state.slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
    log::info("ws", "closing slow consumer queued_bytes={}", queue_.bytes());
    // Free the queue now; a partly sent frame must still be finished.
    const auto before = queue_.bytes();
    queue_.clear(front_sent_ > 0);
    account(static_cast<std::int64_t>(queue_.bytes()) - static_cast<std::int64_t>(before));
    start_close(protocol::close_slow_consumer, "slow consumer");
  }

  // Writes as much of the queue as the socket takes now, in gathered writes of
  // up to max_gather frames; waits for the socket to become writable for the rest.
  void flush() {
    while (!write_blocked_ && !queue_.empty() && state_ != state::closed) {
      std::array<net::const_buffer, 2 * max_gather> buffers;
      std::size_t n = 0, total = 0, skip = front_sent_;
      for (std::size_t i = 0; i < queue_.size() && i < max_gather; ++i) {
        const auto& f = *queue_.at(i);
        for (std::string_view part : {f.head.view(), std::string_view(f.text)}) {
          if (skip >= part.size()) {
            skip -= part.size();
            continue;
          }
          buffers[n++] = net::buffer(part.data() + skip, part.size() - skip);
          total += part.size() - skip;
          skip = 0;
        }
      }
      error_code ec;
      std::size_t sent = socket_.write_some(std::span(buffers.data(), n), ec);
      if (ec == net::error::would_block || ec == net::error::try_again) {
        sent = 0;
      } else if (ec) {
        return finish();  // the client is gone
      }
      pop_sent(sent);
      if (sent < total) return wait_writable();
    }
    if (queue_.empty() && state_ == state::closing) return on_close_sent();
    request_more();
  }

  void pop_sent(std::size_t sent) {
    const auto before = queue_.bytes();
    sent += front_sent_;
    while (!queue_.empty()) {
      const auto& f = *queue_.front();
      const std::size_t size = f.wire_size();
      if (sent < size) break;
      sent -= size;
      queue_.pop();
    }
    front_sent_ = sent;
    account(static_cast<std::int64_t>(queue_.bytes()) - static_cast<std::int64_t>(before));
  }

  void wait_writable() {
    write_blocked_ = true;
    blocked_since_ = clock::now();
    socket_.async_wait(tcp::socket::wait_write, [self = shared_from_this()](error_code ec) {
      self->write_blocked_ = false;
      if (ec) return self->finish();
      self->flush();
    });
  }

  // Our close frame is out. The client answers with its own (or has already
  // sent it): then the server drops the TCP connection first (RFC 6455 §7.1.1).
  void on_close_sent() {
    if (peer_closed_) return finish();
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
  }

  void account(std::int64_t delta) {
    s_.state.send_queue_bytes.fetch_add(delta, std::memory_order_relaxed);
  }

  tcp::socket socket_;
  const std::size_t home_ = io_threads::current();  // constructed on its own thread
  const context& s_;
  auth::reader reader_;
  std::unique_ptr<face> face_;
  ws::reader in_;
  net::steady_timer heartbeat_;    // heartbeat, or the close timeout once closing
  net::steady_timer drain_timer_;  // reconnect sent; close after the client's window
  std::uint64_t registry_id_ = 0;
  send_queue<hub::frame_ptr> queue_;
  std::size_t front_sent_ = 0;  // bytes of the queue's first frame already written
  state state_ = state::open;
  bool write_blocked_ = false;  // waiting for the socket to take more
  bool flush_due_ = false;      // frames queued by deliver_here, not yet written
  bool peer_closed_ = false;    // the client's close frame has arrived
  clock::time_point last_heard_;
  clock::time_point blocked_since_;
  clock::time_point last_ping_frame_;
  session::replay_credit credit_;  // replay grants of this connection's subscriptions
  const connection_kind kind_;     // what its face speaks, for the connection counts
  std::unordered_map<std::uint64_t, subscription> subs_;   // by subscription id
  std::unordered_map<std::string, std::uint64_t> by_key_;  // by the face's key
};

}  // namespace

hub::frame_ptr own_text(std::string text) { return own_frame(std::move(text)); }

void run_websocket_session(tcp::socket socket, std::string key, std::string early,
                           auth::reader reader, std::unique_ptr<face> face, const context& ctx) {
  std::make_shared<websocket_session>(std::move(socket), std::move(reader), std::move(face), ctx)
      ->run(std::move(key), std::move(early));
}

}  // namespace seqcast::session
