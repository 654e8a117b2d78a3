// Which server timeline the database is on (see timeline.hpp).
#include "timeline.hpp"

#include <atomic>
#include <mutex>

namespace seqcast::storage {

namespace {
std::atomic<std::int32_t> known{0};
std::mutex change_mutex;  // one change reported at a time, in order
std::function<void(std::int32_t, std::int32_t)> on_change;
}  // namespace

std::int32_t current_timeline() { return known.load(std::memory_order_acquire); }

void on_timeline_change(std::function<void(std::int32_t, std::int32_t)> fn) {
  std::lock_guard lock(change_mutex);
  on_change = std::move(fn);
}

void note_timeline(std::int32_t timeline) {
  if (timeline == 0) return;
  // Under the lock even when nothing changed: a caller that returns has its change
  // reported, or waited for the report of the one another connection found first, so
  // what it reads next reaches the hub after the hub heard of the change.
  std::lock_guard lock(change_mutex);
  const std::int32_t before = known.exchange(timeline, std::memory_order_acq_rel);
  // The first timeline a process learns is no change: the cache checked it when it
  // opened (its identity names the timeline).
  if (before != 0 && before != timeline && on_change) on_change(before, timeline);
}

// The derived epoch is a function of the old one and the new timeline, so that nodes
// rebasing the same row at once agree; the UPDATE re-checks the timeline after any
// concurrent rebase (READ COMMITTED re-evaluates its WHERE on the newest row version),
// so a row is rebased once per timeline.
const char* const rebase_sql =
    "WITH stale AS ("
    " SELECT id, epoch, last_seq FROM channels"
    " WHERE id = ANY($1::bigint[]) AND $2 <> 0 AND timeline <> 0 AND timeline <> $2),"
    " gone AS ("
    " INSERT INTO rewinds (channel_id, epoch, rewound_to)"
    " SELECT id, epoch, last_seq FROM stale ON CONFLICT (channel_id, epoch) DO NOTHING)"
    " UPDATE channels c SET epoch = substr(md5(s.epoch || '/' || $2::text), 1, 16), timeline = $2"
    " FROM stale s WHERE c.id = s.id AND c.timeline <> 0 AND c.timeline <> $2"
    " RETURNING c.id, c.epoch";

}  // namespace seqcast::storage
