// The RocksDB replay cache: contiguous reads, holes, depth trim, identity, reopen.
#include "rocksdb_replay_cache.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

namespace seqcast::storage {
namespace {

namespace fs = std::filesystem;

struct temp_dir {
  fs::path path = fs::temp_directory_path() / ("seqcast-cache-test-" + std::to_string(::getpid()) +
                                               "-" + std::to_string(counter++));
  ~temp_dir() { fs::remove_all(path); }
  static inline int counter = 0;
};

std::vector<stored_message> msgs(seq_t from, seq_t to) {
  std::vector<stored_message> out;
  for (seq_t s = from; s <= to; ++s)
    out.push_back({s, 1000 + s, "{\"n\":" + std::to_string(s) + "}"});
  return out;
}

std::vector<seq_t> seqs(const std::vector<stored_message>& m) {
  std::vector<seq_t> out;
  for (const auto& x : m) out.push_back(x.seq);
  return out;
}

TEST(RocksdbReplayCache, ReadsContiguousRunsAndStopsAtHoles) {
  temp_dir dir;
  auto c = rocksdb_replay_cache::open(dir.path.string(), "db1", {});
  ASSERT_TRUE(c) << c.err().message;
  auto& cache = *c.value();
  ASSERT_TRUE(cache.put(7, msgs(1, 5)));
  ASSERT_TRUE(cache.put(7, msgs(8, 9)));  // a hole at 6..7
  ASSERT_TRUE(cache.put(8, msgs(1, 3)));  // another channel row
  auto r = cache.read(7, 0, 100, {100, 1u << 30});
  ASSERT_TRUE(r);
  EXPECT_EQ(seqs(r.value()), (std::vector<seq_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(r.value()[2].payload, "{\"n\":3}");
  EXPECT_EQ(r.value()[2].ts_us, 1003);
  EXPECT_EQ(seqs(cache.read(7, 2, 4, {100, 1u << 30}).value()), (std::vector<seq_t>{3, 4}));
  EXPECT_EQ(seqs(cache.read(7, 0, 100, {2, 1u << 30}).value()), (std::vector<seq_t>{1, 2}));
  EXPECT_TRUE(cache.read(7, 5, 100, {100, 1u << 30}).value().empty());  // 6 is missing
  EXPECT_EQ(seqs(cache.read(7, 7, 100, {100, 1u << 30}).value()), (std::vector<seq_t>{8, 9}));
  EXPECT_EQ(seqs(cache.read(8, 0, 100, {100, 1u << 30}).value()), (std::vector<seq_t>{1, 2, 3}));
  cache.drop(7);
  EXPECT_TRUE(cache.read(7, 0, 100, {100, 1u << 30}).value().empty());
  EXPECT_EQ(cache.read(8, 0, 100, {100, 1u << 30}).value().size(), 3u);
}

TEST(RocksdbReplayCache, TrimsEachChannelToItsDepth) {
  temp_dir dir;
  auto c = rocksdb_replay_cache::open(dir.path.string(), "db1", {100, 1ull << 30});
  ASSERT_TRUE(c);
  for (seq_t s = 1; s <= 1000; s += 10) ASSERT_TRUE(c.value()->put(1, msgs(s, s + 9)));
  EXPECT_TRUE(c.value()->read(1, 0, 1000, {10, 1u << 30}).value().empty());  // old ones gone
  auto recent = c.value()->read(1, 900, 1000, {1000, 1u << 30});
  EXPECT_EQ(recent.value().size(), 100u);
}

TEST(RocksdbReplayCache, SurvivesReopenButNotAnotherDatabase) {
  temp_dir dir;
  {
    auto c = rocksdb_replay_cache::open(dir.path.string(), "db1", {});
    ASSERT_TRUE(c);
    ASSERT_TRUE(c.value()->put(3, msgs(1, 50)));
    ASSERT_TRUE(c.value()->put(4, msgs(1, 5)));
  }
  {
    auto c = rocksdb_replay_cache::open(dir.path.string(), "db1", {});
    ASSERT_TRUE(c) << c.err().message;
    EXPECT_FALSE(c.value()->emptied_on_open());
    EXPECT_EQ(c.value()->read(3, 0, 100, {100, 1u << 30}).value().size(), 50u);
    EXPECT_GT(c.value()->approximate_bytes(), 0u);
  }
  auto other = rocksdb_replay_cache::open(dir.path.string(), "db2", {});
  ASSERT_TRUE(other);
  EXPECT_TRUE(other.value()->emptied_on_open());
  EXPECT_TRUE(other.value()->read(3, 0, 100, {100, 1u << 30}).value().empty());
}

TEST(RocksdbReplayCache, ATimelineChangeEmptiesItAndItsIdentityFollows) {
  temp_dir dir;
  const auto before = rocksdb_replay_cache::identity("db1", 1);
  const auto after = rocksdb_replay_cache::identity("db1", 2);
  EXPECT_NE(before, after);
  {
    auto c = rocksdb_replay_cache::open(dir.path.string(), before, {});
    ASSERT_TRUE(c);
    ASSERT_TRUE(c.value()->put(3, msgs(1, 50)));
    ASSERT_TRUE(c.value()->put(4, msgs(1, 5)));
    ASSERT_TRUE(c.value()->drop_all(after));  // a failover while running
    EXPECT_TRUE(c.value()->read(3, 0, 100, {100, 1u << 30}).value().empty());
    EXPECT_TRUE(c.value()->read(4, 0, 100, {100, 1u << 30}).value().empty());
    EXPECT_EQ(c.value()->approximate_bytes(), 0u);
    ASSERT_TRUE(c.value()->put(3, msgs(1, 2)));  // read on the new timeline
  }
  {
    auto c = rocksdb_replay_cache::open(dir.path.string(), after, {});
    ASSERT_TRUE(c);
    EXPECT_FALSE(c.value()->emptied_on_open());
    EXPECT_EQ(seqs(c.value()->read(3, 0, 100, {100, 1u << 30}).value()),
              (std::vector<seq_t>{1, 2}));
  }
  // Opened after a failover it did not see: emptied.
  auto c =
      rocksdb_replay_cache::open(dir.path.string(), rocksdb_replay_cache::identity("db1", 3), {});
  ASSERT_TRUE(c);
  EXPECT_TRUE(c.value()->emptied_on_open());
}

TEST(RocksdbReplayCache, EvictsLeastRecentlyWrittenChannelsOverBudget) {
  temp_dir dir;
  auto c = rocksdb_replay_cache::open(dir.path.string(), "db1", {100000, 64 * 1024});
  ASSERT_TRUE(c);
  const std::string big(1000, 'x');
  for (channel_id ch = 1; ch <= 200; ++ch) {
    ASSERT_TRUE(c.value()->put(ch, {{1, 0, big}}));
  }
  EXPECT_LE(c.value()->approximate_bytes(), 64u * 1024);
  EXPECT_TRUE(c.value()->read(1, 0, 1, {1, 1u << 30}).value().empty());     // oldest evicted
  EXPECT_EQ(c.value()->read(200, 0, 1, {1, 1u << 30}).value().size(), 1u);  // newest kept
}

// The contract the hub relies on: reads from other threads beside the one
// writer, each a contiguous run from after+1 (run under TSan by the sanitizer stage).
TEST(RocksdbReplayCache, ReadsBesideTheWriterFromOtherThreads) {
  temp_dir dir;
  auto c = rocksdb_replay_cache::open(dir.path.string(), "db1", {100000, 1ull << 30});
  ASSERT_TRUE(c);
  auto& cache = *c.value();
  constexpr seq_t last = 4000;
  std::atomic<seq_t> written{0};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      while (written.load() < last) {
        const seq_t after = (written.load() * (r + 1)) % (last / 2);
        auto got = cache.read(1, after, last, {50, 1u << 20});
        if (!got) {
          ++bad;
          continue;
        }
        seq_t expect = after + 1;
        for (const auto& m : got.value())
          if (m.seq != expect++ || m.payload != "{\"n\":" + std::to_string(m.seq) + "}") ++bad;
      }
    });
  }
  for (seq_t s = 1; s <= last; s += 4) {
    ASSERT_TRUE(cache.put(1, msgs(s, s + 3)));
    written.store(s + 3);
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(cache.read(1, 0, last, {100000, 1u << 30}).value().size(),
            static_cast<std::size_t>(last));
}

// The hub's shards write at once, each its own channels, while the byte budget evicts
// channels of the others and a failover empties everything (run under TSan by the
// sanitizer stage): every read is still a contiguous run of the right messages.
TEST(RocksdbReplayCache, WritersOfDifferentChannelsAtOnce) {
  temp_dir dir;
  auto c = rocksdb_replay_cache::open(dir.path.string(), "db1", {200, 256 * 1024});
  ASSERT_TRUE(c);
  auto& cache = *c.value();
  constexpr seq_t last = 2000;
  std::atomic<int> bad{0};
  std::vector<std::thread> writers;
  for (channel_id first = 1; first <= 3; ++first) {
    writers.emplace_back([&, first] {
      // Channels first, first+3, first+6, …: no two writers share one.
      for (seq_t s = 1; s <= last; s += 5) {
        for (channel_id ch = first; ch <= 30; ch += 3) {
          if (!cache.put(ch, msgs(s, s + 4))) ++bad;
          auto got = cache.read(ch, s > 50 ? s - 50 : 0, s + 4, {100, 1u << 20});
          if (!got) {
            ++bad;
            continue;
          }
          seq_t expect = (s > 50 ? s - 50 : 0) + 1;
          for (const auto& m : got.value())
            if (m.seq != expect++ || m.payload != "{\"n\":" + std::to_string(m.seq) + "}") ++bad;
        }
        if (first == 1 && s == 1001) {
          if (!cache.drop_all("db1@2")) ++bad;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_LE(cache.approximate_bytes(), 256u * 1024);
  // The newest writes of some channel survived every eviction, contiguous.
  std::size_t kept = 0;
  for (channel_id ch = 1; ch <= 30; ++ch)
    kept += cache.read(ch, last - 100, last + 4, {1000, 1u << 30}).value().size();
  EXPECT_GT(kept, 0u);
}

}  // namespace
}  // namespace seqcast::storage
