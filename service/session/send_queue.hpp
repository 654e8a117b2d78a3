// A connection's outbound queue, bounded in bytes: past the limit the caller closes the
// connection as a slow consumer (it resumes later from its position) instead of buffering.
#pragma once

#include <cstddef>
#include <deque>
#include <utility>

namespace seqcast::session {

// Not thread-safe: owned by one session strand.
template <class T>
class send_queue {
 public:
  explicit send_queue(std::size_t limit_bytes) : limit_(limit_bytes) {}

  // Queues `item`; returns false when the queue now holds more than its limit.
  bool push(T item, std::size_t bytes) {
    items_.emplace_back(std::move(item), bytes);
    bytes_ += bytes;
    return bytes_ <= limit_;
  }

  bool empty() const { return items_.empty(); }
  std::size_t size() const { return items_.size(); }
  std::size_t bytes() const { return bytes_; }
  const T& front() const { return items_.front().first; }
  const T& at(std::size_t i) const { return items_[i].first; }

  void pop() {
    bytes_ -= items_.front().second;
    items_.pop_front();
  }

  // Room for more history: a quarter of the limit or less is queued.
  bool below_low_water() const { return bytes_ <= limit_ / 4; }

  // Frees every item but the first when `keep_front` (it is partly written).
  void clear(bool keep_front) {
    while (items_.size() > (keep_front ? 1u : 0u)) {
      bytes_ -= items_.back().second;
      items_.pop_back();
    }
  }

 private:
  std::deque<std::pair<T, std::size_t>> items_;
  std::size_t bytes_ = 0;
  std::size_t limit_;
};

}  // namespace seqcast::session
