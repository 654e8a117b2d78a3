// The settings of a seqcast process: one struct, loaded once from flags and environment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "database.hpp"

namespace seqcast {

struct config {
  // Network and storage.
  std::string actioncable_path = "/cable";  // Action Cable's protocol (Rails front ends)
  std::string listen = "127.0.0.1:8080";    // host:port to serve HTTP and WebSocket on
  std::string node_name;      // this node in GET /v1/nodes; "" = <host name>:<listen port>
  std::string advertise_url;  // where operators reach this node; "" = http://<listen host:port>
  std::string database_url;   // PostgreSQL URL; required by every subcommand
  std::string database_schema = "seqcast";      // PostgreSQL schema of seqcast's tables
  std::string cache_dir = "./seqcast-cache";    // RocksDB replay cache directory (disposable)
  std::int64_t cache_max_bytes = 268435456;     // approximate cache size bound (256 MiB)
  std::int64_t cache_channel_messages = 10000;  // newest messages cached per channel

  // Auth: empty lists mean open access (a warning is logged at start).
  std::vector<std::string> publish_keys;  // Bearer keys allowed to publish
  std::string admin_key;                  // Bearer key for DELETE, drain, and any read
  std::string jwt_secret;                 // HS256 secret of subscriber tokens
  std::string streams_secret;  // key of Rails-signed stream names: its text, or hex:<bytes in hex>
  std::vector<std::string> allowed_origins;  // exact origins or https://*.example.com

  // Retention: 0 = no limit by that rule.
  std::int64_t retention_messages = 100000;   // newest messages kept per channel
  std::int64_t retention_seconds = 604800;    // seconds a message is kept (7 days)
  std::int64_t retention_check_seconds = 60;  // seconds between trims

  // Connections.
  int heartbeat_seconds = 25;  // app-level {"type":"ping"} interval; keep under 60 (proxies)
  int coalesce_ms = 5;         // under load only: live messages may wait this long to share a write
  int drain_delay_seconds = 5;    // after SIGTERM, seconds before clients are told to reconnect
  int drain_window_seconds = 10;  // seconds over which reconnect hints are spread
  std::int64_t max_payload_bytes = 1048576;  // largest message payload (1 MiB)
  std::int64_t max_batch_bytes = 16777216;   // largest POST /v1/publish body (16 MiB)
  std::int64_t send_queue_bytes = 8388608;   // per-connection outbound bytes before 1013
  int max_subscriptions = 1000;              // channels per WebSocket connection
  int max_connections = 19000;               // open HTTP/WebSocket/SSE connections per node
  int max_frame_bytes = 65536;               // largest client WebSocket message (close 1009)
  int max_header_bytes = 16384;              // largest HTTP request header block (431)
  int max_json_depth = 64;                   // deepest nesting of a payload (400 invalid_json)
  int http_idle_seconds = 60;  // a kept-alive connection's wait for its next request header
  int http_body_seconds = 30;  // time to deliver a request body once its header arrived

  // Process.
  int threads = 0;                  // I/O threads; 0 = one per core
  int db_pool_size = 4;             // PostgreSQL connections for reads
  std::string log_level = "info";   // debug, info, warn or error
  std::string log_format = "text";  // text (key=value) or json
  bool migrate_on_start = true;     // serve applies migrations first (--no-migrate turns off)

  // Where seqcast's tables are: database_url and database_schema.
  storage::database database() const { return {database_url, database_schema}; }
};

// What the command line asked for.
struct command_line {
  std::string command;  // serve, migrate, replay, channels, drain, help, version
  config settings;
  std::map<std::string, std::string> args;  // subcommand options (e.g. channel, from, follow)
};

// Parses `argv` over the environment (SEQCAST_NAME) and the defaults; flags
// win over the environment. Throws std::invalid_argument with a message naming
// the bad setting.
command_line parse_command_line(int argc, const char* const* argv);

// The --help text: every setting with its flag, environment name, unit and default.
std::string help_text();

// The smallest replay grant: room for one message of max_payload_bytes with its framing.
std::size_t min_replay_grant(const config& c);

// Checks ranges and required settings for `command`; throws std::invalid_argument.
void validate(const config& c, const std::string& command);

}  // namespace seqcast
