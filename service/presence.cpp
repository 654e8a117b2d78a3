// This node's row in the `nodes` table, refreshed every few seconds.
#include "presence.hpp"

#include <atomic>

#include "log.hpp"

namespace seqcast {

struct presence::shared {
  node_identity self;
  const node_state& state;
  std::atomic<bool> in_flight{false};
  std::atomic<bool> registered{false};  // the last refresh succeeded
  std::atomic<bool> warned{false};      // a failure was logged since the last success
  std::uint64_t ticks = 0;              // on the caller's (ticker's) strand only

  shared(node_identity id, const node_state& st) : self(std::move(id)), state(st) {}
};

presence::presence(blocking_pool& pool, node_identity self, const node_state& state)
    : pool_(pool), s_(std::make_shared<shared>(std::move(self), state)) {}

void presence::tick() {
  // A refresh still running means the database is slow or away: skip this tick
  // rather than queue refreshes behind it.
  if (s_->in_flight.exchange(true)) return;
  const bool forget = s_->ticks++ % (forget_seconds / period.count()) == 0;
  storage::node_record row;
  row.name = s_->self.name;
  row.address = s_->self.address;
  row.version = s_->self.version;
  row.started_at_us = s_->self.started_at_us;
  const auto& st = s_->state;
  row.websocket = static_cast<std::int64_t>(st.connections_of(connection_kind::websocket));
  row.cable = static_cast<std::int64_t>(st.connections_of(connection_kind::cable));
  row.sse = static_cast<std::int64_t>(st.connections_of(connection_kind::sse));
  row.draining = st.draining;
  pool_.post([s = s_, row = std::move(row), forget](storage::pg_reader& db) {
    auto r = db.register_node(row);
    if (r && forget) {
      if (auto gone = db.forget_nodes(forget_seconds); gone && gone.value() > 0) {
        log::info("presence", "forgot nodes not seen for a day rows={}", gone.value());
      }
    }
    if (!r) {
      s->registered = false;
      if (!s->warned.exchange(true)) {
        log::warn("presence", "node refresh failed, retrying every {} s error=\"{}\"",
                  period.count(), r.err().message);
      }
    } else {
      const bool was_registered = s->registered.exchange(true);
      const bool had_failed = s->warned.exchange(false);
      if (!was_registered || had_failed) {
        log::info("presence", "node registered name={} address={}", row.name, row.address);
      }
    }
    s->in_flight = false;
  });
}

}  // namespace seqcast
