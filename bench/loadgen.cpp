// seqcast-loadgen: the load generator behind bench/run.sh.
//
//   publish     N keep-alive HTTP publishers, as fast as acknowledged (or paced by --rate);
//               --pipeline D: D publishes written at once per round trip (HTTP pipelining)
//   subscribe   C WebSocket subscribers: deliveries, seq continuity, publish->deliver latency
//               (connection i subscribes to channel (--first-index + i) % --channels);
//               --cable json|ext-json speaks Action Cable instead (--ws ws://…/cable):
//               {"channel":--cable-channel (default $pubsub),"stream_name":…} identifiers;
//               ext-json checks offsets like seqs. Latency: from the frame's commit time
//               ("ts"), or from a payload member "sent_us" (wall µs) when there is one
//               (bench/rails.sh: the time Rails' broadcast was called)
//               --raw: a plain socket and frames parsed in place (native protocol), so
//               that the generator is not the limit of a replay to one client
//   resume      C subscribers that resume after every loss and check 1..--expect exactly
//   raw-fanout  the loopback ceiling: a minimal sender writing pre-encoded frames
//
// One single-threaded io_context per process; every result is one JSON object on stdout.
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

// ---- small helpers ----------------------------------------------------------

struct args {
  std::map<std::string, std::string> values;
  std::string get(const std::string& key, const std::string& fallback) const {
    auto it = values.find(key);
    return it == values.end() ? fallback : it->second;
  }
  long long num(const std::string& key, long long fallback) const {
    auto it = values.find(key);
    return it == values.end() ? fallback : std::stoll(it->second);
  }
  double real(const std::string& key, double fallback) const {
    auto it = values.find(key);
    return it == values.end() ? fallback : std::stod(it->second);
  }
  bool has(const std::string& key) const { return values.count(key) != 0; }
};

args parse_args(int argc, char** argv) {
  args a;
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) continue;
    k = k.substr(2);
    if (i + 1 < argc && std::string_view(argv[i + 1]).rfind("--", 0) != 0) {
      a.values[k] = argv[++i];
    } else {
      a.values[k] = "1";
    }
  }
  return a;
}

struct host_port {
  std::string host, port, path;
};

// "http://127.0.0.1:8080/x" or "ws://..." -> host, port, path.
host_port split_url(std::string url) {
  host_port hp;
  auto scheme = url.find("://");
  if (scheme != std::string::npos) url = url.substr(scheme + 3);
  auto slash = url.find('/');
  hp.path = slash == std::string::npos ? "/" : url.substr(slash);
  auto hostport = url.substr(0, slash);
  auto colon = hostport.rfind(':');
  hp.host = hostport.substr(0, colon);
  hp.port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  return hp;
}

std::int64_t now_us_wall() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double seconds_since(steady::time_point t0) {
  return std::chrono::duration<double>(steady::now() - t0).count();
}

// Percentile of an unsorted sample (sorts it in place once).
struct percentiles {
  std::vector<std::int64_t> v;
  bool sorted = false;
  std::int64_t at(double q) {
    if (v.empty()) return 0;
    if (!sorted) {
      std::sort(v.begin(), v.end());
      sorted = true;
    }
    auto idx = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(idx, v.size() - 1)];
  }
};

double cpu_seconds_self() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string make_payload(std::size_t bytes) {
  // A JSON object of exactly `bytes` bytes (at least 8): {"p":"xxx..."}
  const std::size_t overhead = 8;
  std::size_t n = bytes > overhead ? bytes - overhead : 0;
  return "{\"p\":\"" + std::string(n, 'x') + "\"}";
}

// ---- publish ----------------------------------------------------------------

struct publish_stats {
  std::uint64_t acked = 0, errors = 0, requests = 0;
  percentiles latency_us;
};

awaitable<void> publisher(int index, const args& a, publish_stats& st,
                          steady::time_point deadline) {
  auto ex = co_await asio::this_coro::executor;
  const auto hp = split_url(a.get("url", "http://127.0.0.1:8080"));
  const int channels = static_cast<int>(a.num("channels", 1));
  const int batch = static_cast<int>(a.num("batch", 0));
  // Publishes written back to back before their answers are read (HTTP pipelining).
  const int pipeline = batch > 0 || a.has("rate") ? 1 : static_cast<int>(a.num("pipeline", 1));
  const int publishers = static_cast<int>(a.num("publishers", 1));
  const double rate = a.real("rate", 0);  // total offered msgs/s over all publishers; 0 = open loop
  const std::string prefix = a.get("prefix", "bench-");
  const std::string payload = make_payload(static_cast<std::size_t>(a.num("payload-bytes", 200)));

  tcp::resolver resolver(ex);
  beast::tcp_stream stream(ex);
  auto endpoints = co_await resolver.async_resolve(hp.host, hp.port, use_awaitable);
  co_await stream.async_connect(endpoints, use_awaitable);
  stream.socket().set_option(tcp::no_delay(true));

  http::request<http::string_body> req;
  req.version(11);
  req.method(http::verb::post);
  req.set(http::field::host, hp.host);
  req.set(http::field::content_type, "application/json");
  if (a.has("key")) req.set(http::field::authorization, "Bearer " + a.get("key", ""));
  int next_channel = index % channels;
  if (batch > 0) {
    req.target("/v1/publish");
  }
  beast::flat_buffer buf;
  const auto interval =
      rate > 0 ? std::chrono::duration<double>(publishers * (batch > 0 ? batch : 1) / rate)
               : std::chrono::duration<double>(0);
  auto next_send =
      steady::now() + std::chrono::duration_cast<steady::duration>(interval * index / publishers);
  asio::steady_timer timer(ex);
  long long count = a.num("count", 0);  // requests per publisher; 0 = until the deadline
  while (steady::now() < deadline) {
    if (a.has("count") && count-- <= 0) break;
    if (rate > 0) {
      timer.expires_at(next_send);
      co_await timer.async_wait(use_awaitable);
      next_send += std::chrono::duration_cast<steady::duration>(interval);
      if (steady::now() >= deadline) break;
    }
    if (pipeline > 1) {
      // `pipeline` publishes written at once, then their answers read in order.
      std::string wire;
      for (int k = 0; k < pipeline; ++k) {
        req.target(fmt::format("/v1/channels/{}{}/messages", prefix, next_channel));
        next_channel = (next_channel + publishers) % channels;
        req.body() = payload;
        req.prepare_payload();
        std::ostringstream os;
        os << req;
        wire += std::move(os).str();
      }
      auto t0 = steady::now();
      boost::system::error_code ec;
      co_await asio::async_write(stream, asio::buffer(wire),
                                 asio::redirect_error(use_awaitable, ec));
      for (int k = 0; k < pipeline && !ec; ++k) {
        http::response<http::string_body> res;
        co_await http::async_read(stream, buf, res, asio::redirect_error(use_awaitable, ec));
        ++st.requests;
        if (ec) break;
        if (res.result_int() == 201) {
          ++st.acked;
          st.latency_us.v.push_back(
              std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t0).count());
        } else {
          ++st.errors;
        }
      }
      if (ec) {
        ++st.errors;
        break;
      }
      continue;
    }
    if (batch > 0) {
      std::string body = "{\"messages\":[";
      for (int i = 0; i < batch; ++i) {
        if (i) body += ',';
        body += fmt::format(R"({{"channel":"{}{}","data":{}}})", prefix, next_channel, payload);
        next_channel = (next_channel + publishers) % channels;
      }
      body += "]}";
      req.body() = std::move(body);
    } else {
      req.target(fmt::format("/v1/channels/{}{}/messages", prefix, next_channel));
      next_channel = (next_channel + publishers) % channels;
      req.body() = payload;
    }
    req.prepare_payload();
    auto t0 = steady::now();
    http::response<http::string_body> res;
    boost::system::error_code ec;
    co_await http::async_write(stream, req, asio::redirect_error(use_awaitable, ec));
    if (!ec) co_await http::async_read(stream, buf, res, asio::redirect_error(use_awaitable, ec));
    ++st.requests;
    if (ec) {
      ++st.errors;
      break;
    }
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t0).count();
    if (res.result_int() == 201 || res.result_int() == 200) {
      st.acked += static_cast<std::uint64_t>(batch > 0 ? batch : 1);
      st.latency_us.v.push_back(us);
    } else {
      ++st.errors;
      if (st.errors < 4) fmt::print(stderr, "publish: HTTP {}: {}\n", res.result_int(), res.body());
    }
    if (!res.keep_alive()) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

int run_publish(const args& a) {
  asio::io_context ioc(1);
  publish_stats st;
  const double secs = a.real("seconds", 5);
  const int n = static_cast<int>(a.num("publishers", 1));
  auto t0 = steady::now();
  auto deadline =
      t0 + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(secs));
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(ioc, publisher(i, a, st, deadline), [&st](std::exception_ptr e) {
      if (e) {
        ++st.errors;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          fmt::print(stderr, "publisher: {}\n", ex.what());
        }
      }
    });
  }
  ioc.run();
  double elapsed = seconds_since(t0);
  fmt::print(
      R"({{"mode":"publish","publishers":{},"channels":{},"batch":{},"payload_bytes":{},"seconds":{:.3f},)"
      R"("acked":{},"requests":{},"msgs_per_s":{:.1f},"ack_p50_us":{},"ack_p99_us":{},"errors":{},"loadgen_cpu_s":{:.3f}}})"
      "\n",
      n, a.num("channels", 1), a.num("batch", 0), a.num("payload-bytes", 200), elapsed, st.acked,
      st.requests, static_cast<double>(st.acked) / elapsed, st.latency_us.at(0.50),
      st.latency_us.at(0.99), st.errors, cpu_seconds_self());
  return 0;
}

// ---- subscribe --------------------------------------------------------------

// "2024-01-02T03:04:05.123456Z" -> µs since the epoch. The date/time prefix
// changes once a second, so its conversion is cached.
struct ts_parser {
  char cached[19] = {};
  std::int64_t cached_s = 0;
  bool valid = false;
  std::int64_t parse(std::string_view ts) {
    if (ts.size() < 20) return 0;
    if (!valid || std::memcmp(cached, ts.data(), 19) != 0) {
      std::tm tm{};
      auto d = [&](std::size_t pos, std::size_t len) {
        int v = 0;
        for (std::size_t i = 0; i < len; ++i) v = v * 10 + (ts[pos + i] - '0');
        return v;
      };
      tm.tm_year = d(0, 4) - 1900;
      tm.tm_mon = d(5, 2) - 1;
      tm.tm_mday = d(8, 2);
      tm.tm_hour = d(11, 2);
      tm.tm_min = d(14, 2);
      tm.tm_sec = d(17, 2);
      cached_s = static_cast<std::int64_t>(timegm(&tm));
      std::memcpy(cached, ts.data(), 19);
      valid = true;
    }
    std::int64_t frac = 0;
    int digits = 0;
    for (std::size_t i = 20; i < ts.size() && ts[i] >= '0' && ts[i] <= '9'; ++i, ++digits)
      frac = frac * 10 + (ts[i] - '0');
    while (digits < 6) {
      frac *= 10;
      ++digits;
    }
    while (digits > 6) {
      frac /= 10;
      --digits;
    }
    return cached_s * 1'000'000 + frac;
  }
};

struct subscribe_stats {
  int connections = 0;
  int connected = 0, subscribed = 0, done = 0, failed = 0, closed = 0;
  std::uint64_t deliveries = 0, delivered_bytes = 0, gaps = 0, duplicates = 0, resets = 0;
  percentiles latency_us;
  bool record_latency = true;
  ts_parser ts;
  steady::time_point started{}, ready_at{}, all_done_at{}, first_msg{}, last_msg{};
  bool any_msg = false;
};

// A steady_clock time point as seconds, or 0 when unset. steady_clock is
// CLOCK_MONOTONIC, shared by every process of the machine, so run.sh can merge
// several generators' figures by these (e.g. span = max(last) - min(first)).
double mono_s(steady::time_point t) {
  return t == steady::time_point{} ? 0.0
                                   : std::chrono::duration<double>(t.time_since_epoch()).count();
}

// What one subscriber checks of the frames it receives: continuity of seqs (or
// offsets), deliveries, latency, and when it has all it expects.
struct frame_checker {
  frame_checker(const args& a, subscribe_stats& stats)
      : st(stats),
        cable(a.get("cable", "")),
        expect(a.num("expect", 0)),
        last_seq(a.has("since") ? a.num("since", 0) : -1) {
    if (expect == 0) {
      counted_done = true;
      ++st.done;
    }
  }

  // One text frame. Returns true once everything expected has arrived.
  bool on_frame(std::string_view f) {
    const bool is_message = cable.empty() ? f.find(message_mark()) != std::string_view::npos
                                          : f.rfind(message_mark(), 0) == 0 &&
                                                f.find("\"message\":") != std::string_view::npos;
    auto seq_pos = !is_message     ? std::string_view::npos
                   : cable.empty() ? f.find(seq_key())
                                   : f.rfind(seq_key());  // ext-json: after the payload
    if (is_message && (seq_pos != std::string_view::npos || cable == "json")) {
      long long seq = 0;
      if (seq_pos != std::string_view::npos) {
        for (std::size_t i = seq_pos + seq_key().size(); i < f.size() && f[i] >= '0' && f[i] <= '9';
             ++i)
          seq = seq * 10 + (f[i] - '0');
      } else {
        seq = last_seq < 0 ? 1 : last_seq + 1;  // json: no positions to check
      }
      if (last_seq < 0) {
        last_seq = seq;  // first live message
      } else if (seq <= last_seq) {
        ++st.duplicates;
      } else {
        if (seq != last_seq + 1) ++st.gaps;
        last_seq = seq;
      }
      ++got;
      ++st.deliveries;
      st.delivered_bytes += f.size();
      auto now = steady::now();
      if (!st.any_msg) {
        st.first_msg = now;
        st.any_msg = true;
      }
      st.last_msg = now;
      if (st.record_latency) {
        if (auto sent_pos = f.find("\"sent_us\":"); sent_pos != std::string_view::npos) {
          long long sent = 0;
          for (std::size_t i = sent_pos + 10; i < f.size() && f[i] >= '0' && f[i] <= '9'; ++i)
            sent = sent * 10 + (f[i] - '0');
          st.latency_us.v.push_back(now_us_wall() - sent);
        } else if (auto ts_pos =
                       cable.empty() ? f.find("\"ts\":\"", seq_pos) : std::string_view::npos;
                   ts_pos != std::string_view::npos) {
          auto sent = st.ts.parse(f.substr(ts_pos + 6, 32));
          st.latency_us.v.push_back(now_us_wall() - sent);
        }
      }
      if (!counted_done && got >= expect) {
        counted_done = true;
        if (++st.done == st.connections) st.all_done_at = now;
      }
    } else if (f.find(subscribed_mark()) != std::string_view::npos) {
      if (++st.subscribed == st.connections) st.ready_at = steady::now();
    } else if (f.find("\"type\":\"reset\"") != std::string_view::npos) {
      ++st.resets;
    }
    return counted_done && expect > 0;
  }

  // A cable message: {"identifier":…,"message":…} (+ "offset":N on ext-json).
  std::string_view seq_key() const { return cable.empty() ? "\"seq\":" : "\"offset\":"; }
  std::string_view message_mark() const {
    return cable.empty() ? "\"type\":\"message\"" : "{\"identifier\":";
  }
  std::string_view subscribed_mark() const {
    return cable.empty() ? "\"type\":\"subscribed\"" : "\"type\":\"confirm_subscription\"";
  }

  subscribe_stats& st;
  const std::string cable;
  const long long expect;
  long long last_seq;
  long long got = 0;
  bool counted_done = false;
};

std::string subscribe_request(int index, const args& a) {
  const int channels = static_cast<int>(a.num("channels", 1));
  // Several generator processes share one numbering, so that together they
  // cover every channel evenly whatever their split.
  const long long first_index = a.num("first-index", 0);
  const std::string prefix = a.get("prefix", "bench-");
  const std::string cable = a.get("cable", "");
  std::string sub;
  if (cable.empty()) {
    sub = fmt::format(R"({{"op":"subscribe","channel":"{}{}")", prefix,
                      (first_index + index) % channels);
    if (a.has("since")) sub += fmt::format(R"(,"since":{})", a.num("since", 0));
    sub += "}";
  } else {
    sub = fmt::format(
        R"({{"command":"subscribe","identifier":"{{\"channel\":\"{}\",\"stream_name\":\"{}{}\"}}"}})",
        a.get("cable-channel", "$pubsub"), prefix, (first_index + index) % channels);
  }
  return sub;
}

awaitable<void> subscriber(int index, const args& a, subscribe_stats& st) {
  auto ex = co_await asio::this_coro::executor;
  const auto hp = split_url(a.get("ws", "ws://127.0.0.1:8080/v1/ws"));
  websocket::stream<beast::tcp_stream> ws(ex);
  frame_checker check(a, st);
  try {
    tcp::resolver resolver(ex);
    auto endpoints = co_await resolver.async_resolve(hp.host, hp.port, use_awaitable);
    co_await beast::get_lowest_layer(ws).async_connect(endpoints, use_awaitable);
    beast::get_lowest_layer(ws).expires_never();
    ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    if (!check.cable.empty()) {
      const std::string protocol = "actioncable-v1-" + check.cable;
      ws.set_option(websocket::stream_base::decorator([protocol](websocket::request_type& req) {
        req.set(http::field::sec_websocket_protocol, protocol);
      }));
    }
    co_await ws.async_handshake(hp.host, hp.path, use_awaitable);
    ++st.connected;
    co_await ws.async_write(asio::buffer(subscribe_request(index, a)), use_awaitable);
    beast::flat_buffer buf;
    for (;;) {
      co_await ws.async_read(buf, use_awaitable);
      auto data = buf.cdata();
      const bool done =
          check.on_frame(std::string_view(static_cast<const char*>(data.data()), data.size()));
      buf.consume(buf.size());
      if (done && !a.has("hold")) break;
    }
    co_await ws.async_close(websocket::close_code::normal, use_awaitable);
  } catch (const std::exception& e) {
    if (st.done + st.failed < st.connections) {
      if (st.failed < 3) fmt::print(stderr, "subscriber {}: {}\n", index, e.what());
    }
    if (!check.counted_done) ++st.failed;
  }
  ++st.closed;
}

// The same subscriber over a plain socket (--raw; native protocol only): the upgrade
// written by hand, server frames parsed in place from 256 KiB reads, so that one
// generator process can take what a node replays to one client without being the
// limit itself (Beast's per-frame read and UTF-8 check cost ≈ 3 µs a frame here).
// Pings are answered; a close ends it.
awaitable<void> raw_subscriber(int index, const args& a, subscribe_stats& st) {
  auto ex = co_await asio::this_coro::executor;
  const auto hp = split_url(a.get("ws", "ws://127.0.0.1:8080/v1/ws"));
  tcp::socket sock(ex);
  frame_checker check(a, st);
  // A client frame, masked with a zero key (so its payload is sent as is).
  auto client_frame = [](std::uint8_t opcode, std::string_view payload) {
    std::string out;
    out.push_back(static_cast<char>(0x80 | opcode));
    if (payload.size() < 126) {
      out.push_back(static_cast<char>(0x80 | payload.size()));
    } else {
      out.push_back(static_cast<char>(0x80 | 126));
      out.push_back(static_cast<char>(payload.size() >> 8));
      out.push_back(static_cast<char>(payload.size() & 0xff));
    }
    out.append(4, '\0');
    out.append(payload);
    return out;
  };
  try {
    tcp::resolver resolver(ex);
    auto endpoints = co_await resolver.async_resolve(hp.host, hp.port, use_awaitable);
    co_await asio::async_connect(sock, endpoints, use_awaitable);
    const std::string upgrade = fmt::format(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        hp.path, hp.host);
    co_await asio::async_write(sock, asio::buffer(upgrade), use_awaitable);
    std::string in;
    in.resize(256 * 1024);
    std::size_t have = 0;
    std::size_t head_end = std::string::npos;
    while (head_end == std::string::npos) {
      have += co_await sock.async_read_some(asio::buffer(in.data() + have, in.size() - have),
                                            use_awaitable);
      head_end = std::string_view(in.data(), have).find("\r\n\r\n");
      if (head_end == std::string::npos && have == in.size())
        throw std::runtime_error("upgrade answer too long");
    }
    if (std::string_view(in.data(), have).rfind("HTTP/1.1 101", 0) != 0)
      throw std::runtime_error("upgrade refused");
    ++st.connected;
    co_await asio::async_write(sock, asio::buffer(client_frame(1, subscribe_request(index, a))),
                               use_awaitable);
    std::size_t pos = head_end + 4;
    bool done = false;
    bool closed = false;
    while (!closed && !(done && !a.has("hold"))) {
      // Every whole frame in the buffer.
      for (;;) {
        const std::size_t left = have - pos;
        if (left < 2) break;
        const auto* p = reinterpret_cast<const unsigned char*>(in.data() + pos);
        const unsigned opcode = p[0] & 0x0f;
        std::uint64_t len = p[1] & 0x7f;
        std::size_t header = 2;
        if (len == 126) {
          if (left < 4) break;
          len = (std::uint64_t{p[2]} << 8) | p[3];
          header = 4;
        } else if (len == 127) {
          if (left < 10) break;
          len = 0;
          for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
          header = 10;
        }
        if (header + len > in.size()) in.resize(static_cast<std::size_t>(header + len) * 2);
        if (left < header + len) break;
        const std::string_view payload(in.data() + pos + header, static_cast<std::size_t>(len));
        if (opcode == 1) {
          done = check.on_frame(payload) || done;
        } else if (opcode == 9) {
          co_await asio::async_write(sock, asio::buffer(client_frame(10, payload)), use_awaitable);
        } else if (opcode == 8) {
          closed = true;
        }
        pos += header + static_cast<std::size_t>(len);
      }
      if (closed || (done && !a.has("hold"))) break;
      // Keep the partial frame, read more behind it.
      std::memmove(in.data(), in.data() + pos, have - pos);
      have -= pos;
      pos = 0;
      have += co_await sock.async_read_some(asio::buffer(in.data() + have, in.size() - have),
                                            use_awaitable);
    }
    if (!closed) {
      co_await asio::async_write(sock, asio::buffer(client_frame(8, "\x03\xe8")), use_awaitable);
    }
  } catch (const std::exception& e) {
    if (st.done + st.failed < st.connections) {
      if (st.failed < 3) fmt::print(stderr, "subscriber {}: {}\n", index, e.what());
    }
    if (!check.counted_done) ++st.failed;
  }
  ++st.closed;
}

int run_subscribe(const args& a) {
  asio::io_context ioc(1);
  subscribe_stats st;
  st.connections = static_cast<int>(a.num("connections", 1));
  st.record_latency = !a.has("no-latency");
  const int batch = static_cast<int>(a.num("connect-batch", 200));
  const double timeout = a.real("timeout", 60);
  const double hold = a.real("hold", 0);
  const std::string ready_file = a.get("ready-file", "");
  auto t0 = steady::now();
  st.started = t0;

  // Connect in batches: the next batch starts once the previous one subscribed.
  asio::co_spawn(
      ioc,
      [&]() -> awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        asio::steady_timer t(ex);
        for (int i = 0; i < st.connections; ++i) {
          asio::co_spawn(ex, a.has("raw") ? raw_subscriber(i, a, st) : subscriber(i, a, st),
                         asio::detached);
          if ((i + 1) % batch == 0) {
            while (st.subscribed + st.failed < i + 1 && seconds_since(t0) < timeout) {
              t.expires_after(std::chrono::milliseconds(2));
              co_await t.async_wait(use_awaitable);
            }
          }
        }
        while (st.subscribed + st.failed < st.connections && seconds_since(t0) < timeout) {
          t.expires_after(std::chrono::milliseconds(2));
          co_await t.async_wait(use_awaitable);
        }
        auto ready = steady::now();
        if (st.ready_at == steady::time_point{}) st.ready_at = ready;
        fmt::print(stderr, "subscribe: {} subscribed, {} failed after {:.2f} s\n", st.subscribed,
                   st.failed, seconds_since(t0));
        if (!ready_file.empty()) std::ofstream(ready_file) << st.subscribed << "\n";
        auto end = ready + std::chrono::duration_cast<steady::duration>(
                               std::chrono::duration<double>(hold));
        auto stop_at = t0 + std::chrono::duration_cast<steady::duration>(
                                std::chrono::duration<double>(timeout));
        for (;;) {
          auto now = steady::now();
          if (now >= stop_at) break;
          if (hold > 0 ? now >= end : st.done + st.failed >= st.connections) break;
          t.expires_after(std::chrono::milliseconds(5));
          co_await t.async_wait(use_awaitable);
        }
        ioc.stop();
      },
      asio::detached);
  ioc.run();

  const long long expect = a.num("expect", 0);
  const double fraction =
      expect > 0 ? static_cast<double>(st.deliveries) /
                       (static_cast<double>(st.connections) * static_cast<double>(expect))
                 : 0.0;
  const double to_all = st.done == st.connections && st.all_done_at != steady::time_point{}
                            ? std::chrono::duration<double>(st.all_done_at - st.ready_at).count()
                            : -1.0;
  const double span =
      st.any_msg ? std::chrono::duration<double>(st.last_msg - st.first_msg).count() : 0.0;
  fmt::print(
      R"({{"mode":"subscribe","connections":{},"subscribed":{},"failed":{},"expect":{},"deliveries":{},)"
      R"("delivered_bytes":{},"delivered_fraction":{:.6f},"gaps":{},"duplicates":{},"resets":{},)"
      R"("seconds_to_all":{:.3f},"delivery_span_s":{:.3f},"deliveries_per_s":{:.1f},)"
      R"("lat_p50_us":{},"lat_p99_us":{},"lat_p999_us":{},"loadgen_cpu_s":{:.3f},)"
      R"("started_mono_s":{:.6f},"ready_mono_s":{:.6f},"all_done_mono_s":{:.6f},)"
      R"("first_msg_mono_s":{:.6f},"last_msg_mono_s":{:.6f}}})"
      "\n",
      st.connections, st.subscribed, st.failed, expect, st.deliveries, st.delivered_bytes, fraction,
      st.gaps, st.duplicates, st.resets, to_all, span,
      span > 0 ? static_cast<double>(st.deliveries) / span : 0.0, st.latency_us.at(0.50),
      st.latency_us.at(0.99), st.latency_us.at(0.999), cpu_seconds_self(), mono_s(st.started),
      mono_s(st.ready_at), st.done == st.connections ? mono_s(st.all_done_at) : 0.0,
      mono_s(st.first_msg), mono_s(st.last_msg));
  // Every sample as raw native int64 µs, for run.sh to merge the percentiles of
  // several generator processes exactly (a percentile of percentiles would not be).
  if (const auto path = a.get("latency-file", ""); !path.empty()) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(st.latency_us.v.data()),
              static_cast<std::streamsize>(st.latency_us.v.size() * sizeof(std::int64_t)));
  }
  std::fflush(stdout);
  std::_Exit(0);  // skip tearing down thousands of sockets one handler at a time
}

// ---- resume -----------------------------------------------------------------
// C subscribers that never give up, for the soak's scale profile. Each one
// subscribes to its channel from seq 0, and after any loss resumes from the
// last seq it holds: after a `reconnect` hint it leaves at once and comes back
// at a random moment of the hinted window (as the bundled client does); after
// any other loss it waits the bundled client's backoff (full jitter, 250 ms
// doubling to 30 s, reset by a `subscribed`). It checks that its seqs run
// 1, 2, 3 … exactly, over all its connections, and ends once it holds
// --expect (or at --timeout). The JSON result counts gaps, repeats, resets,
// reconnects per second of CLOCK_MONOTONIC, and why connections ended.

struct resume_stats {
  int connections = 0, subscribed = 0, complete = 0;
  std::uint64_t deliveries = 0, gaps = 0, duplicates = 0, resets = 0, reconnects = 0;
  std::map<long long, int> reconnects_per_second;  // floor(monotonic s) -> reconnects
  std::map<std::string, int> ended_by;             // why a connection ended
  steady::time_point last_complete{};
  std::vector<std::string> first_errors;
};

long long json_number_after(std::string_view f, std::string_view key, std::size_t from = 0) {
  auto pos = f.find(key, from);
  if (pos == std::string_view::npos) return -1;
  long long v = 0;
  bool any = false;
  for (std::size_t i = pos + key.size(); i < f.size() && f[i] >= '0' && f[i] <= '9'; ++i) {
    v = v * 10 + (f[i] - '0');
    any = true;
  }
  return any ? v : -1;
}

// The bundled client's reconnect delay (client-js backoffDelay), in ms.
long long backoff_ms(int attempt, std::mt19937_64& rng) {
  const double cap = std::min(30000.0, 250.0 * std::pow(2.0, std::min(attempt, 31)));
  const double floor = std::min(cap, 50.0);
  return static_cast<long long>(
      std::max(floor, std::uniform_real_distribution<double>(0, cap)(rng)));
}

awaitable<void> resumer(int index, const args& a, resume_stats& st, steady::time_point stop_at) {
  auto ex = co_await asio::this_coro::executor;
  const auto hp = split_url(a.get("ws", "ws://127.0.0.1:8080/v1/ws"));
  const int channels = static_cast<int>(a.num("channels", 1));
  const long long channel = (a.num("first-index", 0) + index) % channels;
  const long long expect = a.num("expect", 1);
  const std::string prefix = a.get("prefix", "bench-");
  std::mt19937_64 rng(static_cast<std::uint64_t>(a.num("seed", 1)) * 1000003u +
                      static_cast<std::uint64_t>(index));
  asio::steady_timer timer(ex);
  long long last = 0;
  int attempt = 0;
  bool subscribed_once = false;
  for (int connection = 0; last < expect && steady::now() < stop_at; ++connection) {
    long long delay_ms = -1;  // set by a reconnect hint
    std::string ended = "error";
    try {
      websocket::stream<beast::tcp_stream> ws(ex);
      tcp::resolver resolver(ex);
      auto endpoints = co_await resolver.async_resolve(hp.host, hp.port, use_awaitable);
      beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(10));
      co_await beast::get_lowest_layer(ws).async_connect(endpoints, use_awaitable);
      co_await ws.async_handshake(hp.host, hp.path, use_awaitable);
      beast::get_lowest_layer(ws).expires_never();
      // A node that stops talking (its heartbeat is seconds) is gone.
      websocket::stream_base::timeout limits{};
      limits.handshake_timeout = std::chrono::seconds(10);
      limits.idle_timeout = std::chrono::seconds(a.num("idle-seconds", 20));
      limits.keep_alive_pings = false;
      ws.set_option(limits);
      co_await ws.async_write(
          asio::buffer(fmt::format(R"({{"op":"subscribe","channel":"{}{}","since":{}}})", prefix,
                                   channel, last)),
          use_awaitable);
      beast::flat_buffer buf;
      while (last < expect) {
        co_await ws.async_read(buf, use_awaitable);
        auto data = buf.cdata();
        std::string_view f(static_cast<const char*>(data.data()), data.size());
        if (f.find(R"("type":"message")") != std::string_view::npos) {
          const long long seq = json_number_after(f, R"("seq":)");
          ++st.deliveries;
          if (seq == last + 1) {
            last = seq;
          } else if (seq <= last) {
            ++st.duplicates;
          } else {
            ++st.gaps;
            if (st.first_errors.size() < 5)
              st.first_errors.push_back(
                  fmt::format("subscriber {}: seq {} after {}", index, seq, last));
            last = seq;
          }
          if (last == expect) {
            ++st.complete;
            st.last_complete = steady::now();
          }
        } else if (f.find(R"("type":"subscribed")") != std::string_view::npos) {
          attempt = 0;
          if (!subscribed_once) {
            subscribed_once = true;
            ++st.subscribed;
          }
        } else if (f.find(R"("type":"reset")") != std::string_view::npos) {
          ++st.resets;
          if (st.first_errors.size() < 5)
            st.first_errors.push_back(fmt::format("subscriber {}: {}", index, f));
          const auto missed = f.find(R"("missed":[)");
          const long long to =
              missed == std::string_view::npos ? -1 : json_number_after(f, ",", missed);
          if (to > last) last = to;
        } else if (f.find(R"("type":"reconnect")") != std::string_view::npos) {
          const long long within = json_number_after(f, R"("within_ms":)");
          delay_ms = within > 0 ? std::uniform_int_distribution<long long>(0, within - 1)(rng) : 0;
          ended = "reconnect hint";
          break;
        }
        buf.consume(buf.size());
      }
      if (last >= expect) ended = "complete";
      boost::system::error_code ignored;
      beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(2));
      co_await ws.async_close(websocket::close_code::normal,
                              asio::redirect_error(use_awaitable, ignored));
    } catch (const boost::system::system_error& e) {
      if (e.code() == websocket::error::closed) {
        // The node closed: say with which code.
        ended = "close";
      } else {
        ended = e.code().message();
      }
    }
    ++st.ended_by[ended];
    if (last >= expect) break;
    if (delay_ms < 0) delay_ms = backoff_ms(attempt++, rng);
    timer.expires_after(std::chrono::milliseconds(delay_ms));
    co_await timer.async_wait(use_awaitable);
    ++st.reconnects;
    ++st.reconnects_per_second[static_cast<long long>(mono_s(steady::now()))];
  }
}

int run_resume(const args& a) {
  asio::io_context ioc(1);
  resume_stats st;
  st.connections = static_cast<int>(a.num("connections", 1));
  const int batch = static_cast<int>(a.num("connect-batch", 200));
  const auto t0 = steady::now();
  const auto stop_at = t0 + std::chrono::duration_cast<steady::duration>(
                                std::chrono::duration<double>(a.real("timeout", 300)));
  const std::string ready_file = a.get("ready-file", "");
  int finished = 0;
  asio::co_spawn(
      ioc,
      [&]() -> awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        asio::steady_timer t(ex);
        auto wait_ms = [&](int ms) {
          t.expires_after(std::chrono::milliseconds(ms));
          return t.async_wait(use_awaitable);
        };
        for (int i = 0; i < st.connections; ++i) {
          asio::co_spawn(ex, resumer(i, a, st, stop_at), [&](std::exception_ptr) { ++finished; });
          if ((i + 1) % batch == 0) {
            while (st.subscribed < i + 1 && steady::now() < stop_at) co_await wait_ms(2);
          }
        }
        while (st.subscribed < st.connections && steady::now() < stop_at) co_await wait_ms(2);
        fmt::print(stderr, "resume: {} subscribed after {:.2f} s\n", st.subscribed,
                   seconds_since(t0));
        if (!ready_file.empty()) std::ofstream(ready_file) << st.subscribed << "\n";
        while (finished < st.connections && steady::now() < stop_at) co_await wait_ms(20);
        ioc.stop();
      },
      asio::detached);
  ioc.run();

  std::string per_second, ended_by, errors;
  for (const auto& [s, n] : st.reconnects_per_second)
    per_second += fmt::format("{}\"{}\":{}", per_second.empty() ? "" : ",", s, n);
  for (const auto& [why, n] : st.ended_by)
    ended_by += fmt::format("{}\"{}\":{}", ended_by.empty() ? "" : ",", why, n);
  for (const auto& e : st.first_errors) {
    std::string quoted;
    for (char c : e) quoted += c == '"' || c == '\\' ? std::string{'\\', c} : std::string{c};
    errors += fmt::format("{}\"{}\"", errors.empty() ? "" : ",", quoted);
  }
  fmt::print(
      R"({{"mode":"resume","connections":{},"subscribed":{},"complete":{},"expect":{},"deliveries":{},)"
      R"("gaps":{},"duplicates":{},"resets":{},"reconnects":{},"reconnects_per_second":{{{}}},)"
      R"("ended_by":{{{}}},"first_errors":[{}],"last_complete_mono_s":{:.6f},"loadgen_cpu_s":{:.3f}}})"
      "\n",
      st.connections, st.subscribed, st.complete, a.num("expect", 1), st.deliveries, st.gaps,
      st.duplicates, st.resets, st.reconnects, per_second, ended_by, errors,
      mono_s(st.last_complete), cpu_seconds_self());
  std::fflush(stdout);
  std::_Exit(0);
}

// ---- raw-fanout -------------------------------------------------------------

std::string ws_frame(std::size_t payload_bytes) {
  std::string f;
  f += static_cast<char>(0x81);  // FIN + text
  if (payload_bytes < 126) {
    f += static_cast<char>(payload_bytes);
  } else if (payload_bytes < 65536) {
    f += static_cast<char>(126);
    f += static_cast<char>((payload_bytes >> 8) & 0xff);
    f += static_cast<char>(payload_bytes & 0xff);
  } else {
    f += static_cast<char>(127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((payload_bytes >> (8 * i)) & 0xff);
  }
  f += std::string(payload_bytes, 'x');
  return f;
}

int run_raw_fanout(const args& a) {
  const int conns = static_cast<int>(a.num("connections", 1000));
  const long long messages = a.num("messages", 200);
  const std::size_t bytes = static_cast<std::size_t>(a.num("bytes", 200));
  const int coalesce = static_cast<int>(std::max<long long>(1, a.num("coalesce", 1)));
  const std::string frame = ws_frame(bytes);
  std::string chunk;
  for (int i = 0; i < coalesce; ++i) chunk += frame;

  asio::io_context ioc(1);
  tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = acceptor.local_endpoint().port();
  const long long total_bytes = static_cast<long long>(frame.size()) * messages * conns;

  pid_t child = fork();
  if (child == 0) {
    // Receivers: C sockets, counting bytes until every frame arrived.
    asio::io_context rx(1);
    std::vector<std::unique_ptr<tcp::socket>> socks;
    long long received = 0;
    std::vector<std::vector<char>> bufs(static_cast<std::size_t>(conns), std::vector<char>(65536));
    for (int i = 0; i < conns; ++i) {
      socks.push_back(std::make_unique<tcp::socket>(rx));
      socks.back()->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    }
    std::function<void(int)> read_one = [&](int i) {
      auto& s = *socks[static_cast<std::size_t>(i)];
      s.async_read_some(asio::buffer(bufs[static_cast<std::size_t>(i)]),
                        [&, i](boost::system::error_code ec, std::size_t n) {
                          received += static_cast<long long>(n);
                          if (received >= total_bytes) rx.stop();
                          if (!ec) read_one(i);
                        });
    };
    for (int i = 0; i < conns; ++i) read_one(i);
    rx.run();
    std::_Exit(received >= total_bytes ? 0 : 1);
  }
  std::vector<tcp::socket> socks;
  socks.reserve(static_cast<std::size_t>(conns));
  for (int i = 0; i < conns; ++i) socks.push_back(acceptor.accept());
  std::vector<int> fds;
  for (auto& s : socks) fds.push_back(s.native_handle());

  const double cpu0 = cpu_seconds_self();
  auto t0 = steady::now();
  long long writes = 0;
  for (long long m = 0; m < messages; m += coalesce) {
    const auto n =
        static_cast<std::size_t>(std::min<long long>(coalesce, messages - m)) * frame.size();
    for (int fd : fds) {
      std::size_t off = 0;
      while (off < n) {
        auto w =
            ::write(fd, chunk.data() + off, n - off);  // blocking socket: waits for the receiver
        if (w <= 0) {
          fmt::print(stderr, "raw-fanout: write failed\n");
          return 1;
        }
        off += static_cast<std::size_t>(w);
        ++writes;
      }
    }
  }
  const double send_s = seconds_since(t0);
  const double cpu = cpu_seconds_self() - cpu0;
  int status = 0;
  waitpid(child, &status, 0);
  const double wall = seconds_since(t0);
  const double msgs = static_cast<double>(messages) * conns;
  fmt::print(
      R"({{"mode":"raw-fanout","connections":{},"messages_per_conn":{},"bytes":{},"coalesce":{},"writes":{},)"
      R"("received_ok":{},"wall_s":{:.3f},"send_s":{:.3f},"msgs_per_s":{:.1f},"sender_cpu_s":{:.3f},)"
      R"("sender_cpu_us_per_msg":{:.3f},"msgs_per_cpu_s":{:.1f}}})"
      "\n",
      conns, messages, bytes, coalesce, writes, WIFEXITED(status) && WEXITSTATUS(status) == 0, wall,
      send_s, msgs / wall, cpu, cpu * 1e6 / msgs, msgs / cpu);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: seqcast-loadgen publish|subscribe|resume|raw-fanout [--options]\n");
    return 2;
  }
  const std::string cmd = argv[1];
  const args a = parse_args(argc, argv);
  try {
    if (cmd == "publish") return run_publish(a);
    if (cmd == "subscribe") return run_subscribe(a);
    if (cmd == "resume") return run_resume(a);
    if (cmd == "raw-fanout") return run_raw_fanout(a);
  } catch (const std::exception& e) {
    fmt::print(stderr, "seqcast-loadgen: {}\n", e.what());
    return 1;
  }
  fmt::print(stderr, "unknown command {}\n", cmd);
  return 2;
}
