// A Prometheus histogram with fixed buckets; thread-safe, lock-free to observe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace seqcast::metrics {

class histogram {
 public:
  // `bounds` are the buckets' upper bounds, ascending (at most 16).
  explicit histogram(std::vector<double> bounds);

  void observe(double value);

  // Appends the exposition: # HELP, # TYPE, _bucket{le=…}, _sum, _count.
  void write(std::string& out, std::string_view name, std::string_view help) const;

  // Observations so far, and their sum in millionths (each read on its own: a
  // concurrent observe() may be in one and not yet in the other).
  std::uint64_t count() const;
  std::uint64_t sum_micros() const { return sum_micro_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::array<std::atomic<std::uint64_t>, 17> counts_{};  // per bucket, +Inf last
  std::atomic<std::uint64_t> sum_micro_{0};              // sum × 1e6, to stay atomic
};

}  // namespace seqcast::metrics
