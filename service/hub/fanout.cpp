// Hub → connections: one outbox per I/O thread, posted to only when it was empty.
#include "hub/fanout.hpp"

#include <algorithm>
#include <utility>

namespace seqcast::hub {

namespace {
constexpr auto load_window = std::chrono::milliseconds(100);
}

fanout::fanout(post_home_fn post, std::size_t homes, std::chrono::milliseconds hold)
    : post_(std::move(post)), hold_(hold) {
  for (std::size_t h = 0; h < std::max<std::size_t>(homes, 1); ++h)
    outboxes_.push_back(std::make_unique<outbox>());
}

std::uint64_t fanout::send(const std::vector<live_list>& lists, const frame_batch& frames) {
  std::uint64_t n = 0;
  for (std::size_t h = 0; h < lists.size() && h < outboxes_.size(); ++h) {
    if (!lists[h] || lists[h]->empty()) continue;
    n += lists[h]->size();
    queue(h, {{}, lists[h], frames, pacing::none}, false);
  }
  return n;
}

void fanout::deliver(std::shared_ptr<subscriber> who, std::uint64_t id, frame_batch frames,
                     pacing p) {
  const std::size_t h = who->home() < outboxes_.size() ? who->home() : 0;
  queue(h, {{{std::move(who), id}}, nullptr, std::move(frames), p}, true);
}

void fanout::queue(std::size_t home, group g, bool urgent) {
  auto& box = *outboxes_[home];
  std::chrono::milliseconds delay{-1};  // -1: no post needed
  {
    std::lock_guard lock(box.mutex);
    box.groups.push_back(std::move(g));
    if (!box.posted) {
      box.posted = true;
      box.held = box.loaded && !urgent && hold_.count() > 0;
      delay = box.held ? hold_ : std::chrono::milliseconds(0);
    } else if (urgent && box.held) {
      // Do not make it wait for the held live frames: drain now (the held
      // drain, when it fires, finds what came after).
      box.held = false;
      delay = std::chrono::milliseconds(0);
    }
  }
  if (delay.count() >= 0) post_(home, delay, [this, home] { drain(home); });
}

void fanout::drain(std::size_t home) {
  auto& box = *outboxes_[home];
  const auto started = clock::now();
  std::vector<group> groups;
  {
    std::lock_guard lock(box.mutex);
    groups.swap(box.groups);
    box.posted = false;
    box.held = false;
  }
  if (groups.empty()) return;
  // The live subscribers reached, held for the flush below (this thread's scratch).
  thread_local std::vector<std::shared_ptr<subscriber>> reached;
  for (const auto& g : groups) {
    for (const auto& d : g.to) d.who->deliver_here(d.id, g.frames, g.p);
    if (!g.live) continue;
    for (const auto& d : *g.live) {
      if (auto s = d.who.lock()) {
        s->deliver_here(d.id, g.frames, g.p);
        reached.push_back(std::move(s));
      }
    }
  }
  // Each connection writes once, whatever number of channels and batches it got.
  for (const auto& g : groups)
    for (const auto& d : g.to) d.who->flush_here();
  for (const auto& s : reached) s->flush_here();
  reached.clear();

  const auto now = clock::now();
  std::lock_guard lock(box.mutex);
  box.busy += now - started;
  if (now - box.window_start >= load_window) {
    const auto elapsed = now - box.window_start;
    // On above a quarter of the time, off below a tenth: no flapping at the edge.
    if (box.busy * 4 > elapsed) {
      box.loaded = true;
    } else if (box.busy * 10 < elapsed) {
      box.loaded = false;
    }
    box.window_start = now;
    box.busy = {};
  }
}

}  // namespace seqcast::hub
