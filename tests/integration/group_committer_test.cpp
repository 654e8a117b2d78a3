// The group committer against a real database: many concurrent publishers,
// every publish answered once with a gapless seq, and each publisher's own
// publishes to a channel in the order it made them.
#include "publish/group_committer.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "support/temp_database.hpp"

namespace seqcast::publish {
namespace {

TEST(GroupCommitter, ConcurrentPublishersGetGaplessSeqsInTheirOwnOrder) {
  test::temp_database db;
  SEQCAST_REQUIRE_DATABASE(db);
  constexpr int publishers = 24, per_publisher = 60, channels = 5;
  std::mutex mutex;
  std::map<std::string, std::vector<storage::seq_t>> committed;  // from on_committed
  group_committer committer(db.database(), [&](std::vector<storage::committed_message> ms) {
    std::lock_guard lock(mutex);
    for (const auto& m : ms) committed[m.name].push_back(m.message.seq);
  });

  // Each publisher waits for its answer before the next publish, as an HTTP
  // client on one keep-alive connection does.
  std::vector<std::thread> threads;
  std::map<std::string, std::vector<storage::seq_t>> answered;
  std::vector<std::string> failures;
  for (int p = 0; p < publishers; ++p) {
    threads.emplace_back([&, p] {
      storage::seq_t last_on[channels] = {};
      for (int i = 0; i < per_publisher; ++i) {
        const int c = (p + i) % channels;
        const std::string channel = fmt::format("gc{}", c);
        storage::publish_request r;
        r.items.push_back({channel, fmt::format(R"({{"p":{},"i":{}}})", p, i), std::nullopt});
        std::mutex m;
        std::condition_variable cv;
        std::optional<storage::publish_outcome> out;
        committer.submit(std::move(r), [&](storage::publish_outcome o) {
          std::lock_guard lock(m);
          out = std::move(o);
          cv.notify_one();
        });
        std::unique_lock lock(m);
        ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return out.has_value(); }));
        std::lock_guard g(mutex);
        if (out->failure) {
          failures.push_back(out->failure->message);
          return;
        }
        const auto seq = out->results.at(0).seq;
        if (seq <= last_on[c]) failures.push_back(fmt::format("publisher {} out of order", p));
        last_on[c] = seq;
        answered[channel].push_back(seq);
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(failures.empty()) << failures.front();

  std::lock_guard lock(mutex);
  int total = 0;
  for (auto& [channel, seqs] : answered) {
    std::sort(seqs.begin(), seqs.end());
    for (std::size_t i = 0; i < seqs.size(); ++i)
      ASSERT_EQ(seqs[i], static_cast<storage::seq_t>(i + 1)) << channel;
    // The hub was handed exactly the same messages, each channel's in seq order.
    ASSERT_EQ(committed[channel], seqs) << channel;
    total += static_cast<int>(seqs.size());
  }
  EXPECT_EQ(total, publishers * per_publisher);
}

}  // namespace
}  // namespace seqcast::publish
