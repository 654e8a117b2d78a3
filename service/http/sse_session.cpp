// Server-Sent Events: one subscription streamed as text/event-stream.
#include "http/sse_session.hpp"

#include <fmt/format.h>

#include <atomic>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>

#include "drain/session_registry.hpp"
#include "hub/subscriber.hpp"
#include "io_threads.hpp"
#include "log.hpp"
#include "session/replay_credit.hpp"
#include "session/send_queue.hpp"

namespace seqcast::http {

namespace net = boost::asio;
namespace beast = boost::beast;

namespace {

std::atomic<std::uint64_t> next_sse_id{1ull << 62};  // apart from WebSocket subscription ids

constexpr std::string_view header =
    "HTTP/1.1 200 OK\r\n"
    "Server: seqcast\r\n"
    "Content-Type: text/event-stream; charset=utf-8\r\n"
    "Cache-Control: no-cache\r\n"
    "Connection: keep-alive\r\n"
    "X-Accel-Buffering: no\r\n"
    "\r\n"
    "retry: 1000\n\n";

// "data:" lines for a payload; a line break inside it starts a new data line,
// which EventSource joins back with "\n".
void append_data(std::string& out, std::string_view data) {
  for (;;) {
    auto nl = data.find_first_of("\r\n");
    out += "data: ";
    out += data.substr(0, nl);
    out += '\n';
    if (nl == std::string_view::npos) break;
    data.remove_prefix(nl + (data.substr(nl, 2) == "\r\n" ? 2 : 1));
  }
}

using chunk = std::shared_ptr<const std::string>;

// Runs on its own strand; kept alive by its pending handlers.
class sse_session : public std::enable_shared_from_this<sse_session>,
                    public hub::subscriber,
                    public drain::drainable {
 public:
  sse_session(beast::tcp_stream&& stream, std::string channel, const session::context& s)
      : stream_(std::move(stream)),
        s_(s),
        channel_(std::move(channel)),
        id_(next_sse_id.fetch_add(1)),
        heartbeat_(stream_.get_executor()),
        queue_(static_cast<std::size_t>(s.cfg.send_queue_bytes)),
        credit_(static_cast<std::size_t>(s.cfg.send_queue_bytes), min_replay_grant(s.cfg)) {
    s_.state.connection_opened(connection_kind::sse);
  }

  ~sse_session() override {
    s_.sessions.remove(registry_id_);
    s_.hub.unsubscribe(id_, channel_);
    s_.state.connection_closed(connection_kind::sse);
  }

  void run(std::optional<storage::seq_t> since, std::optional<std::string> epoch) {
    net::dispatch(stream_.get_executor(), [self = shared_from_this(), since, epoch]() mutable {
      self->last_seq_ = since.value_or(0);
      self->registry_id_ = self->s_.sessions.add(self->weak_from_this());
      self->enqueue(std::make_shared<const std::string>(header));
      self->s_.hub.subscribe(self->id_, self->weak_from_this(), self->channel_, since,
                             std::move(epoch), self->credit_.open(self->id_, since.has_value()));
      self->schedule_heartbeat();
      self->do_read();
    });
  }

  // EventSource has no hint to act on: closing makes it reconnect (after the
  // stream's `retry`) and resume with Last-Event-ID, spread by the drainer.
  void reconnect(std::int64_t) override {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

  std::size_t home() const override { return home_; }
  void deliver_here(std::uint64_t, const hub::frame_batch& frames, hub::pacing p) override {
    on_deliver(*frames, p);
  }
  // Its write chain starts at enqueue and takes one chunk at a time: nothing to flush.
  void flush_here() override {}

 private:
  void on_deliver(const std::vector<hub::frame_ptr>& frames, hub::pacing p) {
    std::string out;
    for (const auto& f : frames) {
      if (f->reset_to >= 0) last_seq_ = f->reset_to;
      switch (f->type) {
        case hub::frame::kind::message:
          if (f->seq <= last_seq_) continue;
          last_seq_ = f->seq;
          out += fmt::format("id: {}\nevent: message\n", f->seq);
          append_data(out, f->data());
          out += '\n';
          break;
        case hub::frame::kind::reset:
          out += "event: reset\n";
          append_data(out, f->text);
          out += '\n';
          break;
        case hub::frame::kind::error:
          out += "event: error\n";
          append_data(out, f->text);
          out += '\n';
          close_after_write_ = true;
          break;
        case hub::frame::kind::subscribed:
          break;
      }
    }
    if (!out.empty()) enqueue(std::make_shared<const std::string>(std::move(out)));
    credit_.on_delivery(id_, p);
    request_more();
  }

  // The same pacing as a WebSocket's (session/replay_credit.hpp).
  void request_more() {
    if (!credit_.anyone_waiting() || closing_ || !queue_.below_low_water()) return;
    credit_.grant_waiting(
        [this](std::uint64_t id, std::size_t grant) { s_.hub.more(id, channel_, grant); });
  }

  void schedule_heartbeat() {
    heartbeat_.expires_after(std::chrono::seconds(s_.cfg.heartbeat_seconds));
    heartbeat_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->closing_) return;
      static const chunk ping = std::make_shared<const std::string>(": ping\n\n");
      self->enqueue(ping);
      self->schedule_heartbeat();
    });
  }

  // The client sends nothing; a read completes only when it goes away.
  void do_read() {
    stream_.async_read_some(net::buffer(read_buf_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) return self->close();
                              self->do_read();
                            });
  }

  void enqueue(chunk c) {
    if (closing_) return;
    const std::size_t bytes = c->size();
    if (!queue_.push(std::move(c), bytes)) {
      s_.state.slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
      log::info("sse", "closing slow consumer queued_bytes={}", queue_.bytes());
      return close();
    }
    if (!writing_) do_write();
  }

  void do_write() {
    writing_ = true;
    net::async_write(
        stream_, net::buffer(*queue_.front()),
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    if (ec || closing_) return close();
    queue_.pop();
    if (!queue_.empty()) return do_write();
    if (close_after_write_) return close();
    request_more();
  }

  void close() {
    if (closed_) return;
    closed_ = closing_ = true;
    heartbeat_.cancel();
    queue_.clear(writing_);
    beast::error_code ignored;
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  const std::size_t home_ = io_threads::current();  // constructed on its own thread
  const session::context& s_;
  std::string channel_;
  std::uint64_t id_;
  std::uint64_t registry_id_ = 0;
  net::steady_timer heartbeat_;
  session::send_queue<chunk> queue_;
  std::array<char, 64> read_buf_{};
  storage::seq_t last_seq_ = 0;
  bool writing_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool close_after_write_ = false;
  session::replay_credit credit_;
};

}  // namespace

void run_sse_session(beast::tcp_stream stream, std::string channel,
                     std::optional<storage::seq_t> since, std::optional<std::string> epoch,
                     const session::context& services) {
  std::make_shared<sse_session>(std::move(stream), std::move(channel), services)
      ->run(since, std::move(epoch));
}

}  // namespace seqcast::http
