// The one retry rule of the server: exponential backoff with jitter, capped.
#pragma once

#include <algorithm>
#include <chrono>
#include <random>

namespace seqcast::util {

// Not thread-safe: one per retrying loop (the writer, the listener, one channel's reads).
//
// next() returns the delay before the next attempt: it starts at `first`, doubles after
// each failure up to `cap`, and is drawn uniformly from [delay/2, delay] so that nodes
// cut off together do not come back in lockstep. reset() after a success.
class backoff {
 public:
  using ms = std::chrono::milliseconds;

  explicit backoff(ms first = ms(100), ms cap = ms(5000)) : first_(first), cap_(cap), next_(first) {}

  ms next() {
    const ms current = next_;
    next_ = std::min(next_ * 2, cap_);
    thread_local std::minstd_rand rng{std::random_device{}()};
    std::uniform_int_distribution<long long> spread(current.count() / 2, current.count());
    return ms(spread(rng));
  }

  void reset() { next_ = first_; }
  bool failing() const { return next_ != first_; }

 private:
  ms first_;
  ms cap_;
  ms next_;
};

}  // namespace seqcast::util
