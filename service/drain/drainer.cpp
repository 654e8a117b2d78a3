// Drains a node: reconnect hints spread evenly over a window.
#include "drain/drainer.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "log.hpp"

namespace seqcast::drain {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;

namespace {
constexpr auto tick = std::chrono::milliseconds(20);
constexpr auto grace = std::chrono::seconds(5);  // for the last clients to go
}  // namespace

struct drainer::impl : std::enable_shared_from_this<drainer::impl> {
  impl(net::io_context& io, session_registry& s)
      : strand(net::make_strand(io)), timer(strand), sessions(s) {}

  void begin(std::chrono::milliseconds w, std::function<void()> d) {
    timer.cancel();
    targets = sessions.snapshot();
    told = 0;
    window = w;
    done = std::move(d);
    started = clock::now();
    log::info("drain", "started sessions={} window_ms={}", targets.size(), window.count());
    step();
  }

  void step() {
    const auto elapsed = clock::now() - started;
    // How many should have been told by now: an even spread over the window.
    std::size_t due = targets.size();
    if (window.count() > 0 && elapsed < window) {
      due = static_cast<std::size_t>(static_cast<double>(targets.size()) *
                                     std::chrono::duration<double>(elapsed) /
                                     std::chrono::duration<double>(window)) +
            1;
      due = std::min(due, targets.size());
    }
    const std::int64_t within =
        std::min<std::int64_t>(std::max<std::int64_t>(window.count(), 1), 1000);
    for (; told < due; ++told) {
      if (auto s = targets[told].lock()) s->reconnect(within);
    }
    const bool all_told = told == targets.size();
    if ((all_told && sessions.size() == 0) || elapsed > window + grace) {
      log::info("drain", "finished told={} still_open={}", told, sessions.size());
      targets.clear();
      if (auto d = std::move(done)) d();
      return;
    }
    timer.expires_after(tick);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->step();
    });
  }

  net::strand<net::io_context::executor_type> strand;
  net::steady_timer timer;
  session_registry& sessions;
  std::vector<std::weak_ptr<drainable>> targets;
  std::size_t told = 0;
  std::chrono::milliseconds window{0};
  clock::time_point started;
  std::function<void()> done;
};

drainer::drainer(net::io_context& ioc, session_registry& sessions)
    : impl_(std::make_shared<impl>(ioc, sessions)) {}

drainer::~drainer() = default;

void drainer::start(std::chrono::milliseconds window, std::function<void()> done) {
  net::post(impl_->strand, [i = impl_, window, done = std::move(done)]() mutable {
    i->begin(window, std::move(done));
  });
}

}  // namespace seqcast::drain
