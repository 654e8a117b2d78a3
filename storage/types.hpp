// Value types shared by the storage layer and its callers: channels, messages, publishes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "result.hpp"

namespace seqcast::storage {

using seq_t = std::int64_t;
using channel_id = std::int64_t;

// An epoch a channel row left behind when it was rebased after a failover
// (timeline.hpp): its seqs 1..rewound_to are the same messages in every later epoch.
struct past_epoch {
  std::string epoch;
  seq_t rewound_to = 0;
  bool operator==(const past_epoch&) const = default;
};

// One incarnation of a channel as PostgreSQL knows it.
struct channel_info {
  channel_id id = 0;
  std::string name;
  std::string epoch;
  seq_t first_seq = 1;           // oldest retained seq
  seq_t last_seq = 0;            // head; 0 = no message yet
  std::vector<past_epoch> past;  // oldest first; filled by head reads only
};

// How much one range read may return: at most `messages` rows and, past the first row,
// at most `bytes` of payload in all. The first row always comes, however large, so a
// read always makes progress; a message as large as max_payload_bytes is always readable.
struct page_limit {
  std::size_t messages = 1000;
  std::size_t bytes = 4 << 20;
};

// A message as stored: payload bytes exactly as published.
struct stored_message {
  seq_t seq = 0;
  std::int64_t ts_us = 0;  // commit timestamp, microseconds since the Unix epoch
  std::string payload;
};

// One message of a publish request.
struct publish_item {
  std::string channel;
  std::string payload;
  std::optional<std::string> idempotency_key;
};

// Where one item landed.
struct publish_result {
  std::string channel;
  seq_t seq = 0;
  std::string epoch;
  std::int64_t ts_us = 0;
  bool duplicate = false;  // an idempotent retry: nothing new was published
};

// A message this node has just committed, handed to ingest so it need not be read back.
struct committed_message {
  channel_id channel = 0;
  std::string name;
  std::string epoch;
  stored_message message;
};

// A channel with its retained volume, for operators.
struct channel_stats {
  channel_info info;
  std::int64_t messages = 0;
  std::int64_t bytes = 0;
};

// A node sharing the database, as its row in `nodes` says.
struct node_record {
  std::string name;
  std::string address;  // where operators reach it (advertise_url)
  std::string version;
  std::int64_t started_at_us = 0;  // microseconds since the Unix epoch
  std::int64_t last_seen_us = 0;   // set by the database (its clock)
  std::int64_t websocket = 0;      // open connections by kind
  std::int64_t cable = 0;
  std::int64_t sse = 0;
  bool draining = false;
};

// What one retention pass did.
struct trim_report {
  bool ran = false;  // false: another node holds the trim lock
  std::int64_t channels_trimmed = 0;
  std::int64_t messages_deleted = 0;
};

// What the NOTIFY of a commit says about one channel: seqs (from, to] now exist.
struct channel_advance {
  channel_id id = 0;
  std::string name;
  std::string epoch;
  seq_t to_seq = 0;
};

// PostgreSQL operations that failed since the process started (thread-safe).
std::uint64_t pg_errors();

}  // namespace seqcast::storage
