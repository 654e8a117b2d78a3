// The metrics registry: one declaration, rendered as Prometheus text, JSON and history.
#include "metrics/registry.hpp"

#include <gtest/gtest.h>

#include <atomic>

namespace seqcast::metrics {
namespace {

struct fixture {
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> open{0};
  std::atomic<std::uint64_t> ws{0}, sse{0};
  metrics::histogram latency{{0.1, 1}};
  registry r{std::chrono::seconds(5), 4};

  fixture() {
    r.counter("x_sent_total", "Sent.", [this] { return sent.load(); });
    r.gauge("x_open", "Open.", [this] { return open.load(); });
    r.gauge_family(
        "x_open_by_kind", "Open by kind.", "kind",
        {{"websocket", [this] { return ws.load(); }}, {"sse", [this] { return sse.load(); }}});
    r.histogram("x_seconds", "Latency.", latency);
  }
};

TEST(Registry, RendersPrometheusTextInDeclarationOrder) {
  fixture f;
  f.sent = 7;
  f.open = 2;
  f.ws = 1;
  f.sse = 1;
  f.latency.observe(0.05);
  EXPECT_EQ(f.r.prometheus(),
            "# HELP x_sent_total Sent.\n# TYPE x_sent_total counter\nx_sent_total 7\n"
            "# HELP x_open Open.\n# TYPE x_open gauge\nx_open 2\n"
            "# HELP x_open_by_kind Open by kind.\n# TYPE x_open_by_kind gauge\n"
            "x_open_by_kind{kind=\"websocket\"} 1\nx_open_by_kind{kind=\"sse\"} 1\n"
            "# HELP x_seconds Latency.\n# TYPE x_seconds histogram\n"
            "x_seconds_bucket{le=\"0.1\"} 1\nx_seconds_bucket{le=\"1\"} 1\n"
            "x_seconds_bucket{le=\"+Inf\"} 1\nx_seconds_sum 0.05\nx_seconds_count 1\n");
}

TEST(Registry, RendersTheSameValuesAsJson) {
  fixture f;
  f.sent = 7;
  f.open = 2;
  f.ws = 2;
  f.latency.observe(0.25);
  f.latency.observe(0.5);
  EXPECT_EQ(f.r.json(), R"({"x_sent_total":7,"x_open":2,"x_open_by_kind":{"websocket":2,"sse":0},)"
                        R"("x_seconds":{"count":2,"sum":0.75}})");
}

TEST(Registry, HistoryHoldsRatesValuesAndMeansOfTheLastIntervals) {
  fixture f;
  EXPECT_EQ(f.r.history_json(),
            R"({"interval_seconds":5,"t":[],"series":{"x_sent_total":{"kind":"rate","values":[]},)"
            R"("x_open":{"kind":"value","values":[]},)"
            R"("x_open_by_kind":{"kind":"value","values":{"websocket":[],"sse":[]}},)"
            R"("x_seconds":{"kind":"mean","values":[]}}})");
  f.r.sample(1'000'000);
  f.sent = 10;  // 10 in 5 s: 2/s
  f.open = 3;
  f.ws = 3;
  f.latency.observe(0.2);
  f.latency.observe(0.4);
  f.r.sample(1'005'000);
  f.sent = 11;  // 1 in 4 s (the timer drifted): 0.25/s
  f.r.sample(1'009'000);
  f.sent = 41;
  f.open = 1;
  f.r.sample(1'019'000);  // 30 in 10 s
  f.r.sample(1'024'000);  // the oldest sample goes: 4 kept, 3 intervals
  EXPECT_EQ(f.r.history_json(),
            R"({"interval_seconds":5,"t":[1009000,1019000,1024000],"series":{)"
            R"("x_sent_total":{"kind":"rate","values":[0.25,3,0]},)"
            R"("x_open":{"kind":"value","values":[3,1,1]},)"
            R"("x_open_by_kind":{"kind":"value","values":{"websocket":[3,3,3],"sse":[0,0,0]}},)"
            R"("x_seconds":{"kind":"mean","values":[null,null,null]}}})");
}

TEST(Registry, HistoryMeanIsOfTheObservationsInEachInterval) {
  fixture f;
  f.r.sample(0);
  f.latency.observe(0.2);
  f.latency.observe(0.4);
  f.r.sample(5000);
  f.r.sample(10000);
  const auto h = f.r.history_json();
  EXPECT_NE(h.find(R"("x_seconds":{"kind":"mean","values":[0.3,null]})"), std::string::npos) << h;
}

}  // namespace
}  // namespace seqcast::metrics
