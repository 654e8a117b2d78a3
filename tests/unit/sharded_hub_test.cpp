// The sharded hub: every call about a channel reaches the one shard that owns it, calls
// naming many channels are split without losing or reordering any, and calls about
// every channel reach every shard once.
#include "hub/sharded_hub.hpp"

#include <gtest/gtest.h>

#include <set>

#include "support/memory_history.hpp"

namespace seqcast::hub {
namespace {

class recording_subscriber : public subscriber {
 public:
  std::size_t home() const override { return 0; }
  void deliver_here(std::uint64_t, const frame_batch& frames, pacing) override {
    for (const auto& f : *frames) {
      if (f->type == frame::kind::message) seqs.push_back(f->seq);
      if (f->type == frame::kind::reset) ++resets;
    }
  }
  void flush_here() override {}
  std::vector<storage::seq_t> seqs;
  int resets = 0;
};

// Shards on one manual executor, each posting through its own queue so that a test
// can tell which shard ran what; all of them read one in-memory database.
class ShardedHubTest : public ::testing::Test {
 protected:
  static constexpr std::size_t shards = 3;

  ShardedHubTest()
      : history_(ex_),
        hub_(
            shards,
            [this](std::size_t, std::chrono::milliseconds d, std::function<void()> f) {
              if (d.count() > 0) return ex_.post_after(d, std::move(f));
              ex_.post(std::move(f));
            },
            1, std::chrono::milliseconds(0),
            [this](std::size_t k, hub_shared shared) {
              auto post = [this, k](std::function<void()> f) {
                ++posted_[k];
                ex_.post(std::move(f));
              };
              return std::make_unique<hub>(
                  post,
                  [this](std::chrono::milliseconds d, std::function<void()> f) {
                    ex_.post_after(d, std::move(f));
                  },
                  history_, hub_limits{}, shared);
            }) {}

  static std::string name(int i) { return "room-" + std::to_string(i); }

  test::manual_executor ex_;
  test::memory_history history_;
  std::size_t posted_[shards] = {};
  sharded_hub hub_;
};

TEST_F(ShardedHubTest, ManyChannelsEachGetTheirOwnMessagesInOrderAcrossShards) {
  constexpr int channels = 60;
  constexpr int messages = 20;
  std::vector<std::shared_ptr<recording_subscriber>> subs;
  for (int c = 0; c < channels; ++c) {
    subs.push_back(std::make_shared<recording_subscriber>());
    hub_.subscribe(static_cast<std::uint64_t>(c + 1), subs.back(), name(c), std::nullopt,
                   std::nullopt, 0);
  }
  ex_.run();
  std::set<const hub*> used;
  for (int c = 0; c < channels; ++c) used.insert(&hub_.shard_of(name(c)));
  ASSERT_EQ(used.size(), shards) << "60 names should land on every shard";
  EXPECT_EQ(hub_.channel_count(), static_cast<std::size_t>(channels));

  // Each NOTIFY names every channel (as one from a busy database does): it is split,
  // and each shard gets its channels' advances.
  for (int m = 0; m < messages; ++m) {
    std::vector<storage::channel_advance> advances;
    for (int c = 0; c < channels; ++c) advances.push_back(history_.append(name(c), "\"x\""));
    hub_.on_notify(std::move(advances));
    ex_.run();
  }
  std::vector<storage::seq_t> want;
  for (storage::seq_t s = 1; s <= messages; ++s) want.push_back(s);
  for (int c = 0; c < channels; ++c) {
    EXPECT_EQ(subs[static_cast<std::size_t>(c)]->seqs, want) << name(c);
    EXPECT_EQ(hub_.subscriber_count(name(c)), 1u) << name(c);
  }
  EXPECT_EQ(hub_.counters().messages_ingested.load(),
            static_cast<std::uint64_t>(channels * messages));
  EXPECT_EQ(hub_.counters().deliveries.load(), static_cast<std::uint64_t>(channels * messages));

  for (int c = 0; c < channels; ++c) hub_.unsubscribe(static_cast<std::uint64_t>(c + 1), name(c));
  ex_.run();
  EXPECT_EQ(hub_.channel_count(), 0u);
}

TEST_F(ShardedHubTest, ACallAboutOneChannelReachesOnlyItsShard) {
  auto s = std::make_shared<recording_subscriber>();
  const auto before = std::vector<std::size_t>(posted_, posted_ + shards);
  hub_.subscribe(1, s, "solo", std::nullopt, std::nullopt, 0);
  std::size_t owner = shards;
  for (std::size_t k = 0; k < shards; ++k) {
    if (posted_[k] != before[k]) {
      EXPECT_EQ(owner, shards) << "posted to two shards";
      owner = k;
    }
  }
  ASSERT_LT(owner, shards);
  ex_.run();
  hub_.on_notify({history_.append("solo", "\"a\""), history_.append("solo", "\"b\"")});
  ex_.run();
  EXPECT_EQ(s->seqs, (std::vector<storage::seq_t>{1, 2}));
}

TEST_F(ShardedHubTest, AFailoverIsCountedOnceAndEmptiesTheCacheFromEveryShard) {
  auto s = std::make_shared<recording_subscriber>();
  hub_.subscribe(1, s, "c", std::nullopt, std::nullopt, 0);
  ex_.run();
  for (int i = 0; i < 10; ++i) hub_.on_notify({history_.append("c", "\"m\"")});
  ex_.run();
  history_.rewind("c", 6, "e1b");
  history_.has_cache = true;
  hub_.on_timeline_changed();
  ex_.run();
  EXPECT_EQ(hub_.counters().timeline_changes.load(), 1u);
  EXPECT_EQ(history_.forgot_all, shards);
  EXPECT_EQ(s->resets, 1);  // rewound to 6, by the one shard that owns "c"
  EXPECT_EQ(hub_.counters().rewinds.load(), 1u);
}

}  // namespace
}  // namespace seqcast::hub
