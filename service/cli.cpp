// The operator subcommands that talk to PostgreSQL directly: replay and channels.
#include "cli.hpp"

#include <fmt/format.h>
#include <poll.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "notify_codec.hpp"
#include "pg_notification_source.hpp"
#include "pg_reader.hpp"
#include "text/json_scan.hpp"
#include "text/names.hpp"

namespace seqcast::cli {

namespace {

// Rows per read, and payload bytes (a page of big messages stays a few MiB).
constexpr storage::page_limit page{1000, 4 << 20};

storage::seq_t int_option(const command_line& cl, const std::string& name, storage::seq_t dflt) {
  auto it = cl.args.find(name);
  if (it == cl.args.end()) return dflt;
  auto v = text::parse_uint(it->second);
  if (!v) throw std::invalid_argument(fmt::format("--{}: expected a non-negative integer", name));
  return *v;
}

void print(const std::string& channel, const storage::stored_message& m) {
  std::string line = R"({"channel":)";
  json::append_string(line, channel);
  line += fmt::format(R"(,"seq":{},"ts":"{}","data":)", m.seq, text::rfc3339(m.ts_us));
  line += m.payload;
  line += "}\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
}

template <class T>
T must(storage::result<T> r) {
  if (!r) throw std::runtime_error(r.err().message);
  return std::move(r).value();
}

// Prints (after, to] of the channel row; returns the last seq printed.
storage::seq_t print_range(storage::pg_reader& db, const storage::channel_info& c,
                           storage::seq_t after, storage::seq_t to) {
  while (after < to) {
    auto rows = must(db.read_range(c.id, after, to, page));
    if (rows.empty()) return to;  // trimmed meanwhile: nothing more in range
    for (const auto& m : rows) print(c.name, m);
    after = rows.back().seq;
  }
  std::fflush(stdout);
  return after;
}

void wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  (void)::poll(&p, 1, timeout_ms);
}

}  // namespace

int replay(const command_line& cl) {
  auto ch = cl.args.find("channel");
  if (ch == cl.args.end() || !text::valid_channel(ch->second)) {
    throw std::invalid_argument("replay needs --channel with a valid channel name");
  }
  const std::string& name = ch->second;
  const bool follow = cl.args.contains("follow");
  const storage::seq_t from = int_option(cl, "from", 0);
  const storage::seq_t to = int_option(cl, "to", INT64_MAX);
  storage::pg_reader db(cl.settings.database());
  storage::pg_notification_source listen(cl.settings.database());
  // LISTEN before reading the backlog, so no commit falls between the two.
  if (follow) must(listen.connect());

  auto info = db.channel(name);
  if (!info && info.err().code != storage::errc::not_found)
    throw std::runtime_error(info.err().message);
  if (!info && !follow) {
    std::cerr << "seqcast: channel '" << name << "' not found\n";
    return 1;
  }
  storage::channel_info c = info ? info.value() : storage::channel_info{};
  storage::seq_t after = std::max(from, c.first_seq) - 1;
  if (c.id != 0) after = print_range(db, c, after, std::min(to, c.last_seq));
  while (follow && after < to) {
    wait_readable(listen.fd(), 1000);
    if (auto r = listen.drain(); !r) {
      std::cerr << "seqcast: listen connection lost; reconnecting\n";
      must(listen.connect());
    }
    auto now = db.channel(name);
    if (!now) continue;  // not created yet, or deleted: wait for it
    if (now.value().id != c.id) {
      if (c.id != 0)
        std::cerr << "seqcast: channel re-created with a new epoch; following it from seq 1\n";
      c = now.value();
      after = std::max<storage::seq_t>(from, 1) - 1;
    }
    c.last_seq = now.value().last_seq;
    after = print_range(db, c, after, std::min(to, c.last_seq));
  }
  std::fflush(stdout);
  return 0;
}

int channels(const config& cfg) {
  storage::pg_reader db(cfg.database());
  // Page by page in byte order of the names, as GET /v1/channels does.
  std::vector<storage::channel_stats> list;
  for (;;) {
    auto more = must(db.list_channels("", list.empty() ? "" : list.back().info.name, 1000));
    const bool last = more.size() < 1000;
    list.insert(list.end(), std::make_move_iterator(more.begin()),
                std::make_move_iterator(more.end()));
    if (last) break;
  }
  std::size_t width = 7;
  for (const auto& s : list) width = std::max(width, s.info.name.size());
  fmt::print("{:<{}}  {:<16}  {:>12}  {:>12}  {:>10}  {:>12}\n", "CHANNEL", width, "EPOCH",
             "FIRST_SEQ", "LAST_SEQ", "MESSAGES", "BYTES");
  for (const auto& s : list) {
    fmt::print("{:<{}}  {:<16}  {:>12}  {:>12}  {:>10}  {:>12}\n", s.info.name, width, s.info.epoch,
               s.info.first_seq, s.info.last_seq, s.messages, s.bytes);
  }
  return 0;
}

int drain(const command_line& cl) {
  namespace net = boost::asio;
  auto url = cl.args.find("url");
  if (url == cl.args.end() || !url->second.starts_with("http://")) {
    throw std::invalid_argument("drain needs --url http://host:port of the node");
  }
  std::string_view rest = std::string_view(url->second).substr(7);
  rest = rest.substr(0, rest.find('/'));
  const auto colon = rest.rfind(':');
  const std::string host(rest.substr(0, colon));
  const std::string port(colon == std::string_view::npos ? "80" : rest.substr(colon + 1));
  std::string target = "/v1/admin/drain";
  if (auto w = cl.args.find("window-seconds"); w != cl.args.end()) {
    target += "?window_seconds=" + std::to_string(int_option(cl, "window-seconds", 0));
  }
  std::string request = fmt::format(
      "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n", target, rest);
  if (!cl.settings.admin_key.empty()) {
    request += fmt::format("Authorization: Bearer {}\r\n", cl.settings.admin_key);
  }
  request += "\r\n";
  net::io_context ioc;
  net::ip::tcp::socket socket(ioc);
  net::connect(socket, net::ip::tcp::resolver(ioc).resolve(host, port));
  net::write(socket, net::buffer(request));
  std::string response;
  boost::system::error_code ec;
  net::read(socket, net::dynamic_buffer(response), ec);  // until the node closes
  const auto line_end = response.find("\r\n");
  const auto body = response.find("\r\n\r\n");
  std::cout << response.substr(0, line_end) << "\n"
            << (body == std::string::npos ? "" : response.substr(body + 4)) << "\n";
  return response.starts_with("HTTP/1.1 202") ? 0 : 1;
}

}  // namespace seqcast::cli
