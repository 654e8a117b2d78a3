// Every open WebSocket and SSE connection, so that a drain can reach them all.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace seqcast::drain {

// Implemented by sessions. Called from any thread; implementations post to their strand.
class drainable {
 public:
  virtual ~drainable() = default;
  // Tell the client to reconnect within `within_ms` (and resume elsewhere), then close.
  virtual void reconnect(std::int64_t within_ms) = 0;
};

// Thread-safe.
class session_registry {
 public:
  std::uint64_t add(std::weak_ptr<drainable> session);
  void remove(std::uint64_t id);
  std::vector<std::weak_ptr<drainable>> snapshot() const;
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::uint64_t next_id_ = 1;                                             // guarded by mutex_
  std::unordered_map<std::uint64_t, std::weak_ptr<drainable>> sessions_;  // guarded by mutex_
};

}  // namespace seqcast::drain
