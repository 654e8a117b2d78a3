// An in-memory twin of the hub's history, with a manual executor standing for the hub
// strand and its timers: hub tests run in microseconds, step by step, with failures
// injected where the real storage would fail.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "hub/history.hpp"

namespace seqcast::test {

// Runs posted functions when asked; timers fire when the clock is advanced past them.
class manual_executor {
 public:
  void post(std::function<void()> f) { queue_.push_back(std::move(f)); }
  void post_after(std::chrono::milliseconds d, std::function<void()> f) {
    timers_.emplace(now_ + d, std::move(f));
  }
  // Runs everything posted, including what that posts, until nothing is left.
  void run() {
    while (!queue_.empty()) {
      auto f = std::move(queue_.front());
      queue_.pop_front();
      f();
    }
  }
  // Moves the clock on by `d`, firing the timers due (and running what they post).
  void advance(std::chrono::milliseconds d) {
    const auto until = now_ + d;
    run();
    while (!timers_.empty() && timers_.begin()->first <= until) {
      auto it = timers_.begin();
      now_ = it->first;
      auto f = std::move(it->second);
      timers_.erase(it);
      f();
      run();
    }
    now_ = until;
  }
  std::size_t pending_timers() const { return timers_.size(); }

 private:
  std::deque<std::function<void()>> queue_;
  std::multimap<std::chrono::milliseconds, std::function<void()>> timers_;
  std::chrono::milliseconds now_{0};
};

class memory_history final : public hub::history {
 public:
  explicit memory_history(manual_executor& ex) : ex_(ex) {}

  struct channel {
    storage::channel_info info;
    std::map<storage::seq_t, storage::stored_message> rows;
  };
  std::map<std::string, channel> channels;
  // Failures to inject: the next N calls of each kind fail with `unavailable`.
  int fail_head = 0, fail_heads = 0, fail_read_log = 0;
  int read_log_calls = 0;
  std::vector<std::size_t> read_log_bytes;  // the byte limit of each read_log

  // Appends a message to `name` (creating the channel, id `id`) and returns its advance.
  storage::channel_advance append(const std::string& name, std::string payload,
                                  storage::channel_id id = 1) {
    auto& c = channels[name];
    if (c.info.id == 0) c.info = {id, name, "e" + std::to_string(id), 1, 0, {}};
    const auto seq = ++c.info.last_seq;
    c.rows[seq] = {seq, 1000 * seq, std::move(payload)};
    return {c.info.id, name, c.info.epoch, seq};
  }
  // A failover to a standby that had `name` only up to `survived`, then the rebase of
  // its row (storage/timeline.hpp): the same row continues in `epoch`.
  void rewind(const std::string& name, storage::seq_t survived, std::string epoch) {
    auto& c = channels.at(name);
    c.rows.erase(c.rows.upper_bound(survived), c.rows.end());
    c.info.past.push_back({c.info.epoch, survived});
    c.info.epoch = std::move(epoch);
    c.info.last_seq = survived;
  }
  void trim(const std::string& name, storage::seq_t first) {
    auto& c = channels.at(name);
    c.info.first_seq = first;
    c.rows.erase(c.rows.begin(), c.rows.lower_bound(first));
  }

  void head(std::string name,
            std::function<void(storage::result<storage::channel_info>)> done) override {
    ex_.post([this, name, done] {
      if (fail_head > 0 && fail_head--) return done(unavailable());
      auto it = channels.find(name);
      if (it == channels.end() || it->second.info.last_seq == 0) {
        return done(storage::error{storage::errc::not_found, "no such channel"});
      }
      done(it->second.info);
    });
  }
  void heads(
      std::vector<std::string> names,
      std::function<void(storage::result<std::vector<storage::channel_info>>)> done) override {
    ex_.post([this, names, done] {
      if (fail_heads > 0 && fail_heads--) return done(unavailable());
      std::vector<storage::channel_info> out;
      for (const auto& n : names) {
        auto it = channels.find(n);
        if (it != channels.end() && it->second.info.last_seq > 0) out.push_back(it->second.info);
      }
      done(out);
    });
  }
  bool cached() const override { return has_cache; }
  bool has_cache = false;  // a cache that never holds anything (its reads come back empty)
  void read_cache(storage::channel_id, storage::seq_t, storage::seq_t, storage::page_limit,
                  std::function<void(hub::rows_result)> done) override {
    ex_.post([done] { done(std::vector<storage::stored_message>{}); });
  }
  void read_log(storage::channel_id id, storage::seq_t after, storage::seq_t to,
                storage::page_limit limit, std::function<void(hub::rows_result)> done) override {
    ++read_log_calls;
    read_log_bytes.push_back(limit.bytes);
    ex_.post([this, id, after, to, limit, done] {
      if (fail_read_log > 0 && fail_read_log--) return done(unavailable());
      std::vector<storage::stored_message> out;
      std::size_t bytes = 0;
      for (auto& [name, c] : channels) {
        if (c.info.id != id) continue;
        for (auto it = c.rows.upper_bound(after); it != c.rows.end() && it->first <= to; ++it) {
          if (out.size() >= limit.messages) break;
          if (!out.empty() && bytes + it->second.payload.size() > limit.bytes) break;
          bytes += it->second.payload.size();
          out.push_back(it->second);
        }
      }
      done(std::move(out));
    });
  }
  void remember(storage::channel_id, const std::vector<storage::stored_message>&) override {}
  void remember(
      std::vector<std::pair<storage::channel_id, std::vector<storage::stored_message>>>) override {}
  void forget(storage::channel_id) override {}
  void forget_all() override { ++forgot_all; }
  std::size_t forgot_all = 0;  // forget_all() calls

 private:
  static storage::error unavailable() { return {storage::errc::unavailable, "injected failure"}; }
  manual_executor& ex_;
};

}  // namespace seqcast::test
