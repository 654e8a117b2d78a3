// The operator subcommands that talk to PostgreSQL directly: replay and channels.
#pragma once

#include "config.hpp"

namespace seqcast::cli {

// seqcast replay --channel C [--from S] [--to T] [--follow]: the log as NDJSON
// on stdout, from PostgreSQL. --follow keeps tailing: LISTEN starts before the
// backlog is read, and every wake-up reads by seq, so nothing falls between.
// Returns the process exit status.
int replay(const command_line& cl);

// seqcast channels: a table of channels with epoch, first/last seq, messages, bytes.
int channels(const config& cfg);

// seqcast drain --url http://node:port [--window-seconds W]: asks a running
// node to move its clients elsewhere (POST /v1/admin/drain) without stopping.
int drain(const command_line& cl);

}  // namespace seqcast::cli
