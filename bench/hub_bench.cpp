// seqcast-hub-bench: the node's hub alone, without sockets or PostgreSQL, to show how
// its work (sequencing, encoding, the ring, the fan-out decisions) spreads over shards.
//
//   seqcast-hub-bench --shards N --channels C --subscribers S --messages M [--batch B]
//                     [--payload-bytes P]
//
// N I/O threads, each with one hub shard (as `seqcast serve --threads N`); C channels,
// each with S subscribers spread over the threads, each subscriber counting what it is
// handed on its own thread. A feeder thread hands the hub pre-built commits of B
// messages (B different channels, round robin), as the group committer does, keeping at
// most 256 commits ahead of what the hub has handed out, until every channel has M
// messages. It checks that every subscriber got 1..M in order and prints one JSON
// object: messages and deliveries per second, and the process's CPU per message.
// Pin it with taskset to compare 1 shard on 1 core with 2 shards on 2 cores.
#include <fmt/format.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "hub/sharded_hub.hpp"
#include "io_threads.hpp"

namespace {

namespace net = boost::asio;
using namespace seqcast;

// Every channel exists with no message yet: heads are read once, at subscribe.
class empty_history final : public hub::history {
 public:
  explicit empty_history(hub::hub::post_fn strand) : strand_(std::move(strand)) {}
  void head(std::string name,
            std::function<void(storage::result<storage::channel_info>)> done) override {
    const auto id = static_cast<storage::channel_id>(std::stoll(name.substr(3)) + 1);
    strand_([done, info = storage::channel_info{id, name, "e", 1, 0, {}}] { done(info); });
  }
  void heads(
      std::vector<std::string>,
      std::function<void(storage::result<std::vector<storage::channel_info>>)> done) override {
    strand_([done] { done(std::vector<storage::channel_info>{}); });
  }
  bool cached() const override { return false; }
  void read_cache(storage::channel_id, storage::seq_t, storage::seq_t, storage::page_limit,
                  std::function<void(hub::rows_result)> done) override {
    strand_([done] { done(std::vector<storage::stored_message>{}); });
  }
  void read_log(storage::channel_id, storage::seq_t, storage::seq_t, storage::page_limit,
                std::function<void(hub::rows_result)> done) override {
    strand_([done] { done(std::vector<storage::stored_message>{}); });
  }
  void remember(storage::channel_id, const std::vector<storage::stored_message>&) override {}
  void remember(
      std::vector<std::pair<storage::channel_id, std::vector<storage::stored_message>>>) override {}
  void forget(storage::channel_id) override {}
  void forget_all() override {}

 private:
  hub::hub::post_fn strand_;
};

class counting_subscriber final : public hub::subscriber {
 public:
  explicit counting_subscriber(std::size_t home) : home_(home) {}
  std::size_t home() const override { return home_; }
  void deliver_here(std::uint64_t, const hub::frame_batch& frames, hub::pacing) override {
    for (const auto& f : *frames) {
      if (f->type == hub::frame::kind::subscribed) subscribed = true;
      if (f->type != hub::frame::kind::message) continue;
      if (f->seq != last + 1) ++bad;
      last = f->seq;
      got.fetch_add(1, std::memory_order_relaxed);
    }
  }
  void flush_here() override {}

  // Written on its home thread only; last and bad read after the threads stopped.
  std::int64_t last = 0;
  std::atomic<std::uint64_t> got{0};
  std::uint64_t bad = 0;
  std::atomic<bool> subscribed{false};

 private:
  std::size_t home_;
};

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

long long arg(int argc, char** argv, const std::string& name, long long fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return std::stoll(argv[i + 1]);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const auto shards = static_cast<std::size_t>(arg(argc, argv, "shards", 1));
  const auto channels = static_cast<std::size_t>(arg(argc, argv, "channels", 1000));
  const auto per_channel = static_cast<std::size_t>(arg(argc, argv, "subscribers", 10));
  const auto messages = static_cast<storage::seq_t>(arg(argc, argv, "messages", 200));
  const auto batch = static_cast<std::size_t>(arg(argc, argv, "batch", 20));
  const auto payload_bytes = static_cast<std::size_t>(arg(argc, argv, "payload-bytes", 200));

  io_threads io(shards);
  std::vector<net::strand<net::io_context::executor_type>> strands;
  for (std::size_t k = 0; k < shards; ++k) strands.push_back(net::make_strand(io.at(k)));
  std::vector<std::unique_ptr<empty_history>> histories;
  auto at_home = [&io](std::size_t home, std::chrono::milliseconds delay, std::function<void()> f) {
    if (delay.count() <= 0) return net::post(io.at(home), std::move(f));
    auto t = std::make_shared<net::steady_timer>(io.at(home), delay);
    t->async_wait([t, f = std::move(f)](boost::system::error_code ec) {
      if (!ec) f();
    });
  };
  const hub::hub_limits limits{.coalesce = std::chrono::milliseconds(5), .homes = shards};
  hub::sharded_hub hub(
      shards, at_home, limits.homes, limits.coalesce, [&](std::size_t k, hub::hub_shared shared) {
        auto on_shard = [&strands, k](std::function<void()> f) {
          net::post(strands[k], std::move(f));
        };
        auto after = [&strands, k](std::chrono::milliseconds delay, std::function<void()> f) {
          auto t = std::make_shared<net::steady_timer>(strands[k], delay);
          t->async_wait([t, f = std::move(f)](boost::system::error_code ec) {
            if (!ec) f();
          });
        };
        histories.push_back(std::make_unique<empty_history>(on_shard));
        return std::make_unique<hub::hub>(on_shard, after, *histories.back(), limits, shared);
      });

  std::thread runner([&io] { io.run(); });

  // Subscribers, spread over the threads as accepted connections are.
  std::vector<std::shared_ptr<counting_subscriber>> subs;
  std::uint64_t id = 0;
  for (std::size_t c = 0; c < channels; ++c) {
    for (std::size_t s = 0; s < per_channel; ++s) {
      subs.push_back(std::make_shared<counting_subscriber>(subs.size() % shards));
      hub.subscribe(++id, subs.back(), fmt::format("ch-{}", c), std::nullopt, std::nullopt, 0);
    }
  }
  for (const auto& s : subs)
    while (!s->subscribed.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  // Commits of `batch` messages each, built before the clock starts.
  const std::string payload =
      "\"" + std::string(payload_bytes > 2 ? payload_bytes - 2 : 0, 'x') + "\"";
  std::vector<std::vector<storage::committed_message>> commits;
  std::vector<storage::seq_t> next(channels, 1);
  std::size_t channel = 0;
  const std::size_t total = channels * static_cast<std::size_t>(messages);
  for (std::size_t made = 0; made < total;) {
    std::vector<storage::committed_message> commit;
    for (std::size_t i = 0; i < batch && made < total; ++i, ++made) {
      while (next[channel] > messages) channel = (channel + 1) % channels;
      const auto seq = next[channel]++;
      commit.push_back({static_cast<storage::channel_id>(channel + 1),
                        fmt::format("ch-{}", channel),
                        "e",
                        {seq, 1'700'000'000'000'000 + seq, payload}});
      channel = (channel + 1) % channels;
    }
    commits.push_back(std::move(commit));
  }

  const auto& ingested = hub.counters().messages_ingested;
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t sent = 0;
  for (auto& commit : commits) {
    // Sleeps rather than spins: the feeder stands for the committer, whose thread
    // waits on PostgreSQL, not on a core.
    while (sent - ingested.load(std::memory_order_relaxed) > 256 * batch)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    sent += commit.size();
    hub.on_committed(std::move(commit));
  }
  const std::uint64_t deliveries = total * per_channel;
  while (hub.counters().deliveries.load() < deliveries)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  // Every frame handed out has reached its thread's outbox; the drains follow.
  auto all_got = [&] {
    std::uint64_t n = 0;
    for (const auto& s : subs) n += s->got.load(std::memory_order_relaxed);
    return n;
  };
  while (all_got() < deliveries) std::this_thread::sleep_for(std::chrono::microseconds(200));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  io.stop();
  runner.join();

  std::uint64_t bad = 0, got = 0;
  for (const auto& s : subs) {
    bad += s->bad + (s->last == messages ? 0 : 1);
    got += s->got.load();
  }
  fmt::print(
      R"({{"mode":"hub","shards":{},"channels":{},"subscribers_per_channel":{},"messages":{},)"
      R"("batch":{},"seconds":{:.3f},"msgs_per_s":{:.0f},"deliveries_per_s":{:.0f},)"
      R"("cpu_s":{:.3f},"cpu_us_per_msg":{:.3f},"cpu_us_per_delivery":{:.3f},"deliveries":{},)"
      R"("errors":{}}})"
      "\n",
      shards, channels, per_channel, total, batch, seconds, static_cast<double>(total) / seconds,
      static_cast<double>(got) / seconds, cpu, cpu * 1e6 / static_cast<double>(total),
      cpu * 1e6 / static_cast<double>(got), got, bad);
  return bad == 0 && got == deliveries ? 0 : 1;
}
