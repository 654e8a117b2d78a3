// Runs the retention trim every retention_check_seconds on the blocking pool.
#include "retention.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "log.hpp"

namespace seqcast {

namespace net = boost::asio;

namespace {
constexpr std::int64_t delete_batch = 5000;  // rows per DELETE: short locks, steady progress
}

struct retention::impl : std::enable_shared_from_this<retention::impl> {
  impl(net::io_context& io, const config& c, blocking_pool& p)
      : strand(net::make_strand(io)), timer(strand), cfg(c), pool(p) {}

  void schedule() {
    timer.expires_after(std::chrono::seconds(cfg.retention_check_seconds));
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && !self->stopped) self->run();
    });
  }

  void run() {
    pool.post([self = shared_from_this()](storage::pg_reader& db) {
      auto r = db.trim(self->cfg.retention_messages, self->cfg.retention_seconds, delete_batch);
      if (!r) {
        log::warn("retention", "trim failed error=\"{}\"", r.err().message);
      } else if (r.value().messages_deleted > 0) {
        log::info("retention", "trimmed channels={} messages={}", r.value().channels_trimmed,
                  r.value().messages_deleted);
      }
      net::post(self->strand, [self] {
        if (!self->stopped) self->schedule();
      });
    });
  }

  net::strand<net::io_context::executor_type> strand;
  net::steady_timer timer;
  const config& cfg;
  blocking_pool& pool;
  bool stopped = false;
};

retention::retention(net::io_context& ioc, const config& cfg, blocking_pool& pool)
    : impl_(std::make_shared<impl>(ioc, cfg, pool)) {}

retention::~retention() = default;

void retention::start() {
  net::post(impl_->strand, [i = impl_] { i->run(); });
}

void retention::stop() {
  net::post(impl_->strand, [i = impl_] {
    i->stopped = true;
    i->timer.cancel();
  });
}

}  // namespace seqcast
