// Every open WebSocket and SSE connection, so that a drain can reach them all.
#include "drain/session_registry.hpp"

namespace seqcast::drain {

std::uint64_t session_registry::add(std::weak_ptr<drainable> session) {
  std::lock_guard lock(mutex_);
  const std::uint64_t id = next_id_++;
  sessions_.emplace(id, std::move(session));
  return id;
}

void session_registry::remove(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  sessions_.erase(id);
}

std::vector<std::weak_ptr<drainable>> session_registry::snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<std::weak_ptr<drainable>> out;
  out.reserve(sessions_.size());
  for (const auto& [id, s] : sessions_) out.push_back(s);
  return out;
}

std::size_t session_registry::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

}  // namespace seqcast::drain
