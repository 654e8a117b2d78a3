// Drives the LISTEN connection from Asio.
#include "ingest/notify_listener.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "log.hpp"
#include "notify_codec.hpp"
#include "pg_notification_source.hpp"
#include "util/backoff.hpp"

namespace seqcast::ingest {

namespace net = boost::asio;

struct notify_listener::impl : std::enable_shared_from_this<notify_listener::impl> {
  impl(net::io_context& io, const storage::database& db, blocking_pool& p, hub::sharded_hub& h,
       node_state& st, std::function<void()> outbox)
      : strand(net::make_strand(io)),
        descriptor(strand),
        timer(strand),
        source(db),
        pool(p),
        hub(h),
        state(st),
        on_outbox(std::move(outbox)) {}

  void connect() {
    if (stopped) return;
    pool.post([self = shared_from_this()](storage::pg_reader&) {
      auto r = self->source.connect();
      net::post(self->strand, [self, r = std::move(r)] { self->on_connect(r); });
    });
  }

  void on_connect(const storage::result<storage::none>& r) {
    if (stopped) return;
    if (!r) {
      const auto delay = backoff.next();
      log::warn("listener", "connect failed error=\"{}\" retry_in_ms={}", r.err().message,
                delay.count());
      return retry(delay);
    }
    backoff.reset();
    // libpq owns the socket: wrap it to wait on, and release() before closing.
    descriptor.assign(source.fd());
    state.listener_connected = true;
    state.listener_reconnects.fetch_add(1, std::memory_order_relaxed);
    log::info("listener", "listening pid={}", source.backend_pid());
    hub.on_listener_connected();
    if (on_outbox) on_outbox();
    wait();
  }

  void wait() {
    descriptor.async_wait(
        net::posix::stream_descriptor::wait_read,
        [self = shared_from_this()](boost::system::error_code ec) { self->on_readable(ec); });
  }

  void on_readable(boost::system::error_code ec) {
    if (stopped || ec == net::error::operation_aborted) return;
    auto payloads = source.drain();
    if (ec || !payloads) {
      log::warn("listener", "connection lost error=\"{}\"",
                ec ? ec.message() : payloads.err().message);
      lost();
      return retry(backoff.next());
    }
    std::vector<storage::channel_advance> advances;
    bool outbox = false;
    for (const auto& p : payloads.value()) {
      if (p == storage::outbox_notify_payload) {
        outbox = true;
        continue;
      }
      auto a = storage::decode_notify(p);
      advances.insert(advances.end(), std::make_move_iterator(a.begin()),
                      std::make_move_iterator(a.end()));
    }
    if (!advances.empty()) hub.on_notify(std::move(advances));
    if (outbox && on_outbox) on_outbox();
    wait();
  }

  void lost() {
    state.listener_connected = false;
    if (descriptor.is_open()) descriptor.release();
    source.disconnect();
  }

  void retry(std::chrono::milliseconds delay) {
    timer.expires_after(delay);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->connect();
    });
  }

  net::strand<net::io_context::executor_type> strand;
  net::posix::stream_descriptor descriptor;
  net::steady_timer timer;
  storage::pg_notification_source source;
  blocking_pool& pool;
  hub::sharded_hub& hub;
  node_state& state;
  std::function<void()> on_outbox;
  util::backoff backoff;
  bool stopped = false;
};

notify_listener::notify_listener(net::io_context& ioc, const storage::database& db,
                                 blocking_pool& pool, hub::sharded_hub& hub, node_state& state,
                                 std::function<void()> on_outbox)
    : impl_(std::make_shared<impl>(ioc, db, pool, hub, state, std::move(on_outbox))) {}

notify_listener::~notify_listener() = default;

void notify_listener::start() {
  net::post(impl_->strand, [i = impl_] { i->connect(); });
}

void notify_listener::stop() {
  net::post(impl_->strand, [i = impl_] {
    i->stopped = true;
    i->timer.cancel();
    boost::system::error_code ignored;
    i->descriptor.cancel(ignored);
    i->lost();
  });
}

}  // namespace seqcast::ingest
