// The timer-free live fan-out (hub/fanout.hpp): one post per I/O thread while its
// outbox waits, every frame in order, one flush per connection per pass.
#include "hub/fanout.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <string>

#include "hub/channels.hpp"

namespace seqcast::hub {
namespace {

class recording_subscriber : public subscriber {
 public:
  explicit recording_subscriber(std::size_t home, std::vector<std::string>& log)
      : home_(home), log_(log) {}
  std::size_t home() const override { return home_; }
  void deliver_here(std::uint64_t id, const frame_batch& frames, pacing) override {
    for (const auto& f : *frames) log_.push_back(fmt(id, f->seq));
  }
  void flush_here() override { log_.push_back("flush " + std::to_string(home_)); }

 private:
  static std::string fmt(std::uint64_t id, std::int64_t seq) {
    return "sub " + std::to_string(id) + " seq " + std::to_string(seq);
  }
  std::size_t home_;
  std::vector<std::string>& log_;
};

frame_batch batch(std::int64_t from, std::int64_t to) {
  std::vector<frame_ptr> frames;
  for (auto s = from; s <= to; ++s) {
    frame f;
    f.seq = s;
    frames.push_back(make_frame(std::move(f)));
  }
  return std::make_shared<const std::vector<frame_ptr>>(std::move(frames));
}

// A fan-out whose posts are kept, to be run by the test (`hold`: as fanout's).
struct posting_fanout {
  explicit posting_fanout(std::size_t homes, std::chrono::milliseconds hold = {})
      : f([this](std::size_t home, std::chrono::milliseconds,
                 std::function<void()> fn) { posted.emplace_back(home, fn); },
          homes, hold) {}
  std::vector<std::pair<std::size_t, std::function<void()>>> posted;
  fanout f;
};

TEST(Fanout, WhatArrivesBeforeTheThreadRunsGoesOutInOnePass) {
  posting_fanout pf(2, std::chrono::milliseconds(0));
  auto& f = pf.f;
  auto& posted = pf.posted;
  std::vector<std::string> log;
  auto a = std::make_shared<recording_subscriber>(1, log);
  live_set subs;
  subs.add(7, a);
  EXPECT_EQ(f.send(subs.by_home(2), batch(1, 2)), 1u);
  EXPECT_EQ(f.send(subs.by_home(2), batch(3, 3)), 1u);
  ASSERT_EQ(posted.size(), 1u) << "one post while the outbox waits";
  EXPECT_EQ(posted[0].first, 1u);
  posted[0].second();
  EXPECT_EQ(log, (std::vector<std::string>{"sub 7 seq 1", "sub 7 seq 2", "sub 7 seq 3", "flush 1",
                                           "flush 1"}));
  // Drained: the next batch posts again and goes out at once.
  log.clear();
  f.send(subs.by_home(2), batch(4, 4));
  ASSERT_EQ(posted.size(), 2u);
  posted[1].second();
  EXPECT_EQ(log, (std::vector<std::string>{"sub 7 seq 4", "flush 1"}));
}

TEST(Fanout, DeadSubscribersAreDroppedAndEachThreadGetsItsOwn) {
  posting_fanout pf(2, std::chrono::milliseconds(0));
  auto& f = pf.f;
  auto& posted = pf.posted;
  std::vector<std::string> log;
  auto a = std::make_shared<recording_subscriber>(0, log);
  auto b = std::make_shared<recording_subscriber>(1, log);
  live_set subs;
  subs.add(1, a);
  subs.add(2, b);
  {
    auto gone = std::make_shared<recording_subscriber>(1, log);
    subs.add(3, gone);
  }
  EXPECT_EQ(f.send(subs.by_home(2), batch(1, 1)), 2u);
  EXPECT_EQ(subs.size(), 2u);
  ASSERT_EQ(posted.size(), 2u);
  for (auto& [home, fn] : posted) fn();
  std::sort(log.begin(), log.end());
  EXPECT_EQ(log, (std::vector<std::string>{"flush 0", "flush 1", "sub 1 seq 1", "sub 2 seq 1"}));
}

TEST(Fanout, ControlFramesAndLiveFramesKeepHubOrderOnAThread) {
  posting_fanout pf(1, std::chrono::milliseconds(5));
  auto& f = pf.f;
  auto& posted = pf.posted;
  std::vector<std::string> log;
  auto live = std::make_shared<recording_subscriber>(0, log);
  auto joining = std::make_shared<recording_subscriber>(0, log);
  live_set subs;
  subs.add(1, live);
  f.send(subs.by_home(1), batch(10, 10));
  f.deliver(joining, 2, batch(9, 10), pacing::caught_up);  // its last replay page
  subs.add(2, joining);                                    // then it is live
  f.send(subs.by_home(1), batch(11, 11));
  for (std::size_t i = 0; i < posted.size(); ++i) posted[i].second();
  std::vector<std::string> order;
  for (const auto& l : log)
    if (l.rfind("sub 2", 0) == 0) order.push_back(l);
  EXPECT_EQ(order, (std::vector<std::string>{"sub 2 seq 9", "sub 2 seq 10", "sub 2 seq 11"}));
}

TEST(Fanout, ALiveListIsBuiltOncePerChangeAndASubscriberGoneMeanwhileIsSkipped) {
  posting_fanout pf(2, std::chrono::milliseconds(0));
  auto& f = pf.f;
  auto& posted = pf.posted;
  std::vector<std::string> log;
  auto a = std::make_shared<recording_subscriber>(0, log);
  auto b = std::make_shared<recording_subscriber>(0, log);
  live_set subs;
  subs.add(1, a);
  subs.add(2, b);
  const auto first = subs.by_home(2);
  EXPECT_EQ(subs.by_home(2)[0], first[0]) << "the same list until a change";
  EXPECT_EQ(first[1], nullptr) << "nobody on thread 1";
  f.send(subs.by_home(2), batch(1, 1));
  b.reset();  // closes before its thread drains: skipped there
  ASSERT_EQ(posted.size(), 1u);
  posted[0].second();
  EXPECT_EQ(log, (std::vector<std::string>{"sub 1 seq 1", "flush 0"}));
  subs.erase(1);
  EXPECT_NE(subs.by_home(2)[0], first[0]) << "rebuilt after a change";
  EXPECT_EQ(subs.by_home(2)[0], nullptr) << "1 left, 2 gone";
  EXPECT_TRUE(subs.empty());
}

}  // namespace
}  // namespace seqcast::hub
