// Which server timeline the database is on, and what a change of it means for a
// channel. A promoted standby starts a new timeline; with asynchronous replication it
// may lack the last commits, so every channel found on another timeline than its row
// records is rebased (migrations/004_failover.sql): it continues in a new epoch whose
// seqs 1..R are the messages that survived, R recorded with the old epoch in `rewinds`.
#pragma once

#include <cstdint>
#include <functional>

namespace seqcast::storage {

// The timeline of the server the newest connection reached; 0 while none is known (a
// server that hides its WAL position never has one, and is never rebased).
std::int32_t current_timeline();

// Called (on the thread that opened the connection, before it is used) when a new
// connection finds another timeline than the one known before: a failover happened,
// and anything read before may name messages the database no longer has. Set once,
// before any connection is opened.
void on_timeline_change(std::function<void(std::int32_t from, std::int32_t to)> fn);

// Records the timeline a new connection found (0: none); pg_connection.cpp calls it.
void note_timeline(std::int32_t timeline);

// The statement that rebases the channel rows $1::bigint[] found on another timeline
// than $2 (never when either is 0), in one statement: their old epoch and head go to
// `rewinds`, the row takes the derived epoch and the timeline. Answers (id, epoch) of
// the rows it changed. Prepared as "rebase" by the writer and the reader.
extern const char* const rebase_sql;

}  // namespace seqcast::storage
