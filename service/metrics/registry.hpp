// Every metric of a node, declared once: rendered as Prometheus text (/metrics) and
// as JSON (/v1/stats), and sampled into an in-memory history of the last minutes, so
// that the console can chart a node without a Prometheus server.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics/histogram.hpp"

namespace seqcast::metrics {

// Declared while the node starts (not thread-safe against the readers), then read
// from any thread: the values come from the read functions (atomics of their
// owners) and the histograms, which must outlive the registry's readers.
class registry {
 public:
  using read_fn = std::function<std::uint64_t()>;

  // `samples` values, one per `interval`, are kept: samples - 1 intervals of history.
  explicit registry(std::chrono::seconds interval = std::chrono::seconds(5),
                    std::size_t samples = 61);

  // A value that only grows (rendered with TYPE counter; charted as a rate per second).
  void counter(std::string name, std::string help, read_fn value_of);
  // A value that goes up and down (TYPE gauge; charted as it is).
  void gauge(std::string name, std::string help, read_fn value_of);
  // One gauge per value of `label`, as one family: name{label="value"}.
  void gauge_family(std::string name, std::string help, std::string label,
                    std::vector<std::pair<std::string, read_fn>> members);
  // A histogram (charted as the mean of what was observed in each interval).
  void histogram(std::string name, std::string help, const metrics::histogram& h);

  // Prometheus text exposition 0.0.4 of every metric, in declaration order.
  std::string prometheus() const;
  // The current values as a JSON object, by metric name: a number; {"<label value>":
  // number} for a family; {"count":N,"sum":S} for a histogram.
  std::string json() const;

  // Records every metric's value at `unix_ms` (called once per interval).
  void sample(std::int64_t unix_ms);
  // The history as JSON: {"interval_seconds":I,"t":[unix ms of each interval's end],
  // "series":{"<name>":{"kind":"rate"|"value"|"mean","values":[…]}}}; a family's
  // values are {"<label value>":[…]}; a mean with nothing observed is null.
  std::string history_json() const;

  std::chrono::seconds interval() const { return interval_; }

 private:
  enum class type { counter, gauge, histogram };
  struct metric {
    std::string name;
    std::string help;
    type kind;
    std::string label;                                    // families only
    std::vector<std::pair<std::string, read_fn>> values;  // one, unlabelled, unless a family
    const metrics::histogram* hist = nullptr;
  };
  struct snapshot {
    std::int64_t unix_ms = 0;
    std::vector<std::uint64_t> values;  // per metric in order: its values, or count and sum_micros
  };

  std::chrono::seconds interval_;
  std::size_t capacity_;
  std::vector<metric> metrics_;
  mutable std::mutex mutex_;
  std::deque<snapshot> history_;  // guarded by mutex_; oldest first
};

}  // namespace seqcast::metrics
