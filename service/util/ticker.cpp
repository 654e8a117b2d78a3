// Runs a function at a fixed rate on a strand of an io_context.
#include "util/ticker.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

namespace seqcast::util {

namespace net = boost::asio;

struct ticker::impl : std::enable_shared_from_this<ticker::impl> {
  impl(net::io_context& io, std::chrono::milliseconds p, std::function<void()> f)
      : strand(net::make_strand(io)), timer(strand), period(p), tick(std::move(f)) {}

  void run() {
    if (stopped) return;
    tick();
    due += period;
    // Late by more than a period (a busy thread, a suspended process): start afresh.
    if (due < std::chrono::steady_clock::now()) due = std::chrono::steady_clock::now() + period;
    timer.expires_at(due);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->run();
    });
  }

  net::strand<net::io_context::executor_type> strand;
  net::steady_timer timer;
  std::chrono::milliseconds period;
  std::function<void()> tick;
  std::chrono::steady_clock::time_point due;
  bool stopped = false;  // on the strand only
};

ticker::ticker(net::io_context& ioc, std::chrono::milliseconds period, std::function<void()> tick)
    : impl_(std::make_shared<impl>(ioc, period, std::move(tick))) {}

ticker::~ticker() = default;

void ticker::start() {
  net::post(impl_->strand, [i = impl_] {
    i->due = std::chrono::steady_clock::now();
    i->run();
  });
}

void ticker::stop() {
  net::post(impl_->strand, [i = impl_] {
    i->stopped = true;
    i->timer.cancel();
  });
}

}  // namespace seqcast::util
