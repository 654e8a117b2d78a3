// The NOTIFY payload format: which channels advanced to which seq. IDs only, never data.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "types.hpp"

namespace seqcast::storage {

// Every node LISTENs on the channel named as its schema (database::schema), so that
// deployments sharing one database in different schemas never hear each other.

// The payload of the outbox's NOTIFY (migrations/002_outbox.sql): rows were committed
// to it. Never a valid advance line.
inline constexpr std::string_view outbox_notify_payload = "outbox";

// PostgreSQL rejects NOTIFY payloads of 8000 bytes or more; we stay well below.
inline constexpr std::size_t max_notify_bytes = 7900;

// Encodes advances as lines "<id> <to_seq> <epoch> <name>", split into payloads
// each under max_notify_bytes. Channel names and epochs contain no spaces.
std::vector<std::string> encode_notify(const std::vector<channel_advance>& advances);

// Parses one payload. Malformed lines are skipped (a NOTIFY is only a hint:
// a missed one is repaired by the head re-read after a reconnect).
std::vector<channel_advance> decode_notify(std::string_view payload);

}  // namespace seqcast::storage
