// The settings of a seqcast process: parsing flags and environment, help, validation.
#include "config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <functional>
#include <stdexcept>

#include "auth/signed_stream.hpp"
#include "protocol/frames.hpp"

namespace seqcast {

namespace {

struct setting {
  std::string_view name;  // snake_case; flag --name-with-dashes, env SEQCAST_NAME
  std::string_view help;  // what it is, with unit
  std::function<void(config&, std::string_view)> set;
  std::function<std::string(const config&)> show;
};

std::int64_t to_int(std::string_view name, std::string_view v, std::int64_t lo, std::int64_t hi) {
  std::int64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size() || out < lo || out > hi) {
    throw std::invalid_argument(
        fmt::format("{}: expected an integer in [{}, {}], got '{}'", name, lo, hi, v));
  }
  return out;
}

std::vector<std::string> to_list(std::string_view v) {
  std::vector<std::string> out;
  while (!v.empty()) {
    auto comma = v.find(',');
    auto item = v.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    v.remove_prefix(comma == std::string_view::npos ? v.size() : comma + 1);
  }
  return out;
}

template <class T>
setting int_setting(std::string_view name, std::string_view help, T config::*field, std::int64_t lo,
                    std::int64_t hi) {
  return {
      name, help,
      [=](config& c, std::string_view v) { c.*field = static_cast<T>(to_int(name, v, lo, hi)); },
      [=](const config& c) { return std::to_string(c.*field); }};
}

setting string_setting(std::string_view name, std::string_view help, std::string config::*field,
                       bool secret = false) {
  return {name, help, [=](config& c, std::string_view v) { c.*field = std::string(v); },
          [=](const config& c) {
            return secret ? std::string(c.*field).empty() ? "(unset)" : "(set)" : c.*field;
          }};
}

// A string whose unset value stands for something worked out at start.
setting derived_setting(std::string_view name, std::string_view help, std::string config::*field,
                        std::string_view when_unset) {
  return {name, help, [=](config& c, std::string_view v) { c.*field = std::string(v); },
          [=](const config& c) { return (c.*field).empty() ? std::string(when_unset) : c.*field; }};
}

setting list_setting(std::string_view name, std::string_view help,
                     std::vector<std::string> config::*field, bool secret = false) {
  return {name, help, [=](config& c, std::string_view v) { c.*field = to_list(v); },
          [=](const config& c) {
            if ((c.*field).empty()) return std::string("(unset)");
            return secret ? std::string("(set)") : fmt::format("{}", fmt::join(c.*field, ","));
          }};
}

const std::vector<setting>& settings() {
  static const std::vector<setting> all = {
      string_setting("listen", "host:port to serve HTTP, WebSocket and SSE on", &config::listen),
      derived_setting("node_name",
                      "this node's name in GET /v1/nodes and the console; unique among the "
                      "nodes sharing a database (nodes with one name share one row)",
                      &config::node_name, "<host name>:<listen port>"),
      derived_setting("advertise_url",
                      "where operators reach this node (http:// or https://), as GET /v1/nodes "
                      "shows it; the host name stands in for a wildcard listen host",
                      &config::advertise_url, "http://<listen host>:<listen port>"),
      string_setting("actioncable_path",
                     "path of the Action Cable endpoint for Rails front ends (@rails/actioncable, "
                     "Turbo Streams, @anycable/web)",
                     &config::actioncable_path),
      string_setting("database_url",
                     "PostgreSQL URL (required), e.g. postgresql://user@host/db; with a standby, "
                     "name every host: postgresql://user@a,b/db (the one taking writes is used)",
                     &config::database_url, true),
      string_setting("database_schema",
                     "PostgreSQL schema that holds seqcast's tables and its publish() function "
                     "(1-63 of a-z 0-9 _), so that sharing the application's database touches "
                     "none of its tables; created by migrate",
                     &config::database_schema),
      string_setting("cache_dir", "directory of the RocksDB replay cache (safe to delete)",
                     &config::cache_dir),
      int_setting("cache_max_bytes",
                  "approximate bytes the replay cache may use; least recently written "
                  "channels are dropped first",
                  &config::cache_max_bytes, 1 << 20, INT64_MAX),
      int_setting("cache_channel_messages", "newest messages cached per channel",
                  &config::cache_channel_messages, 16, 100000000),
      list_setting("publish_keys", "comma-separated Bearer keys that may publish",
                   &config::publish_keys, true),
      string_setting("admin_key", "Bearer key for DELETE, drain, and reading any channel",
                     &config::admin_key, true),
      string_setting("jwt_secret", "HS256 secret that signs subscriber tokens", &config::jwt_secret,
                     true),
      string_setting("streams_secret",
                     "key that verifies Rails-signed stream names (signed_stream_name): the app's "
                     "Turbo.signed_stream_verifier_key as text, or hex:<its bytes in hex> for the "
                     "64-byte key turbo-rails derives by default (bin/rails runner 'puts "
                     "Turbo.signed_stream_verifier_key.unpack1(\"H*\")'); unset = signed names "
                     "are refused",
                     &config::streams_secret, true),
      list_setting("allowed_origins",
                   "comma-separated browser origins allowed to open WebSocket/SSE "
                   "(exact, or https://*.example.com); unset = any",
                   &config::allowed_origins),
      int_setting("retention_messages", "messages kept per channel, newest first (0 = no limit)",
                  &config::retention_messages, 0, INT64_MAX),
      int_setting("retention_seconds", "seconds a message is kept (0 = no limit)",
                  &config::retention_seconds, 0, INT64_MAX),
      int_setting("retention_check_seconds", "seconds between retention trims",
                  &config::retention_check_seconds, 1, 86400),
      int_setting("heartbeat_seconds",
                  "seconds between app-level pings to clients (keep under proxies' 60 s idle)",
                  &config::heartbeat_seconds, 1, 3600),
      int_setting("coalesce_ms",
                  "milliseconds live messages may wait for more, so that a connection gets "
                  "several in one write, only while an I/O thread is busy with fan-out (over a "
                  "quarter of its time); a quiet node sends each at once (0 = never wait)",
                  &config::coalesce_ms, 0, 1000),
      int_setting("drain_delay_seconds",
                  "seconds after SIGTERM before clients are told to reconnect",
                  &config::drain_delay_seconds, 0, 3600),
      int_setting("drain_window_seconds", "seconds over which reconnect hints are spread",
                  &config::drain_window_seconds, 0, 3600),
      int_setting("max_payload_bytes", "largest message payload, in bytes",
                  &config::max_payload_bytes, 1, 64 << 20),
      int_setting("max_batch_bytes", "largest POST /v1/publish body, in bytes",
                  &config::max_batch_bytes, 1, 256 << 20),
      int_setting("send_queue_bytes",
                  "bytes queued to one connection before it is closed as a slow consumer (1013)",
                  &config::send_queue_bytes, 65536, 1LL << 32),
      int_setting("max_subscriptions", "channels one WebSocket connection may subscribe to",
                  &config::max_subscriptions, 1, 1000000),
      int_setting("max_connections",
                  "open HTTP, WebSocket and SSE connections per node; more are refused",
                  &config::max_connections, 1, 10000000),
      int_setting("max_frame_bytes", "largest WebSocket message a client may send (else 1009)",
                  &config::max_frame_bytes, 1024, 16 << 20),
      int_setting("max_header_bytes", "largest HTTP request header block, in bytes (else 431)",
                  &config::max_header_bytes, 1024, 1 << 20),
      int_setting("max_json_depth", "deepest JSON nesting accepted in a payload",
                  &config::max_json_depth, 1, 10000),
      int_setting("http_idle_seconds",
                  "seconds a kept-alive HTTP connection may wait for its next request header",
                  &config::http_idle_seconds, 1, 3600),
      int_setting("http_body_seconds", "seconds to deliver a request body once the header arrived",
                  &config::http_body_seconds, 1, 3600),
      int_setting(
          "threads",
          "I/O threads, each also running one shard of the hub's channels (0 = one per core)",
          &config::threads, 0, 256),
      int_setting("db_pool_size", "PostgreSQL connections for reads", &config::db_pool_size, 1, 64),
      string_setting("log_level", "debug, info, warn or error", &config::log_level),
      string_setting("log_format", "text (key=value) or json", &config::log_format),
  };
  return all;
}

std::string flag_of(std::string_view name) {
  std::string f = "--" + std::string(name);
  for (auto& ch : f)
    if (ch == '_') ch = '-';
  return f;
}

std::string env_of(std::string_view name) {
  std::string e = "SEQCAST_";
  for (char ch : name) e += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return e;
}

const setting* find_setting(std::string_view flag) {
  for (const auto& s : settings())
    if (flag_of(s.name) == flag) return &s;
  return nullptr;
}

// Options of subcommands that are not settings; `true` = takes a value.
const std::map<std::string_view, bool>& command_options() {
  static const std::map<std::string_view, bool> opts = {
      {"--channel", true}, {"--from", true},           {"--to", true},         {"--follow", false},
      {"--url", true},     {"--window-seconds", true}, {"--no-migrate", false}};
  return opts;
}

}  // namespace

command_line parse_command_line(int argc, const char* const* argv) {
  command_line cl;
  for (const auto& s : settings()) {
    if (const char* v = std::getenv(env_of(s.name).c_str()); v != nullptr) s.set(cl.settings, v);
  }
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h" || a == "help") {
      cl.command = "help";
      return cl;
    }
    if (a == "--version") {
      cl.command = "version";
      return cl;
    }
    if (!a.starts_with("--")) {
      if (!cl.command.empty())
        throw std::invalid_argument(fmt::format("unexpected argument '{}'", a));
      cl.command = a;
      continue;
    }
    std::string_view flag = a, value;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string_view::npos) {
      flag = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    auto take_value = [&]() -> std::string_view {
      if (has_value) return value;
      if (i + 1 >= argc) throw std::invalid_argument(fmt::format("{} needs a value", flag));
      return argv[++i];
    };
    if (const setting* s = find_setting(flag)) {
      s->set(cl.settings, take_value());
    } else if (auto it = command_options().find(flag); it != command_options().end()) {
      std::string key(flag.substr(2));
      cl.args[key] = it->second ? std::string(take_value()) : "true";
      if (key == "no-migrate") cl.settings.migrate_on_start = false;
    } else {
      throw std::invalid_argument(fmt::format("unknown option '{}' (see --help)", flag));
    }
  }
  if (cl.command.empty()) cl.command = "serve";
  return cl;
}

std::string help_text() {
  std::string out =
      "seqcast: reliable-delivery broadcast over WebSocket and SSE, backed by PostgreSQL\n\n"
      "Usage: seqcast <command> [options]\n\n"
      "Commands:\n"
      "  serve      run a node (default); applies migrations first unless --no-migrate\n"
      "  migrate    apply the built-in database migrations (idempotent)\n"
      "  replay     --channel C --from S [--to T] [--follow]: the log as NDJSON on stdout\n"
      "  channels   table of channels: epoch, first/last seq, messages, bytes\n"
      "  drain      --url http://node:port [--window-seconds W]: ask a node to move its clients\n\n"
      "Settings (flag, or environment variable; the flag wins):\n";
  const config defaults;
  for (const auto& s : settings()) {
    out += fmt::format("  {:<28} {}\n  {:<28} {} [default: {}]\n", flag_of(s.name), env_of(s.name),
                       "", s.help, s.show(defaults));
  }
  out += "  --no-migrate                 serve: do not apply migrations at start\n";
  return out;
}

std::size_t min_replay_grant(const config& c) {
  return static_cast<std::size_t>(c.max_payload_bytes) + protocol::max_message_overhead;
}

void validate(const config& c, const std::string& command) {
  static const std::vector<std::string> commands = {"serve", "migrate", "replay", "channels",
                                                    "drain"};
  if (std::find(commands.begin(), commands.end(), command) == commands.end()) {
    throw std::invalid_argument(fmt::format("unknown command '{}' (see --help)", command));
  }
  if (command != "drain" && c.database_url.empty()) {
    throw std::invalid_argument(
        "database_url is required: set --database-url or SEQCAST_DATABASE_URL");
  }
  if (!storage::valid_schema_name(c.database_schema)) {
    throw std::invalid_argument(
        fmt::format("database_schema: expected 1-63 of a-z 0-9 _, not starting with a digit, "
                    "got '{}'",
                    c.database_schema));
  }
  if (c.listen.rfind(':') == std::string::npos) {
    throw std::invalid_argument(fmt::format("listen: expected host:port, got '{}'", c.listen));
  }
  if (!c.advertise_url.empty() && !c.advertise_url.starts_with("http://") &&
      !c.advertise_url.starts_with("https://")) {
    throw std::invalid_argument(
        fmt::format("advertise_url: expected a URL starting with http:// or https://, got '{}'",
                    c.advertise_url));
  }
  if (c.node_name.size() > 255 || std::any_of(c.node_name.begin(), c.node_name.end(), [](char ch) {
        return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f;
      })) {
    throw std::invalid_argument(
        "node_name: expected at most 255 characters, without control characters");
  }
  static const std::vector<std::string> levels = {"debug", "info", "warn", "error"};
  if (std::find(levels.begin(), levels.end(), c.log_level) == levels.end()) {
    throw std::invalid_argument(
        fmt::format("log_level: expected debug|info|warn|error, got '{}'", c.log_level));
  }
  // Half the queue is what replay may fill; it must hold the largest message, or a
  // backlog of them could never be delivered (every resume would end in 1013).
  if (static_cast<std::size_t>(c.send_queue_bytes) < 2 * min_replay_grant(c)) {
    throw std::invalid_argument(fmt::format(
        "send_queue_bytes ({}) must hold two of the largest messages with their framing: at "
        "least 2 x (max_payload_bytes {} + {}) = {}",
        c.send_queue_bytes, c.max_payload_bytes, protocol::max_message_overhead,
        2 * min_replay_grant(c)));
  }
  if (!auth::streams_key(c.streams_secret)) {
    throw std::invalid_argument(
        "streams_secret: after hex: expected the key's bytes as an even number of hex digits");
  }
  if (c.log_format != "text" && c.log_format != "json") {
    throw std::invalid_argument(
        fmt::format("log_format: expected text or json, got '{}'", c.log_format));
  }
}

}  // namespace seqcast
