-- seqcast schema v3: what the operator's console reads without scanning the log.
--
-- 1. channels.bytes: the payload bytes a channel retains, kept as a running total
--    by the writer (its bump of last_seq adds the bytes of the messages it inserts)
--    and by retention (each delete subtracts what it removed), so that listing
--    channels never aggregates over `messages`. The number of retained messages
--    needs no column: the log is gapless, so it is last_seq - first_seq + 1.
--    Backfilled here, under this transaction's lock on `channels`.
ALTER TABLE channels ADD COLUMN bytes bigint NOT NULL DEFAULT 0;
UPDATE channels c SET bytes = s.bytes
FROM (SELECT channel_id, sum(octet_length(payload)) AS bytes FROM messages GROUP BY channel_id) AS s
WHERE s.channel_id = c.id;

-- 2. Paging channels by name in byte order, whatever the database's collation:
--    queries compare and sort `name COLLATE "C"`, which this index serves. It
--    covers `name` only, so the writer's updates of last_seq and bytes stay HOT
--    (a partial index on last_seq > 0 would make every publish update the index).
CREATE INDEX channels_name_bytes ON channels (name COLLATE "C");

-- 3. The nodes sharing this database, one row per node_name, refreshed by each
--    node every few seconds (last_seen is the database's clock, so nodes with
--    skewed clocks still agree on who was seen recently).
CREATE TABLE nodes (
  name       text PRIMARY KEY,
  address    text NOT NULL,
  version    text NOT NULL,
  started_at timestamptz NOT NULL,
  last_seen  timestamptz NOT NULL DEFAULT now(),
  websocket  bigint NOT NULL DEFAULT 0,  -- open connections by kind, at last_seen
  cable      bigint NOT NULL DEFAULT 0,
  sse        bigint NOT NULL DEFAULT 0,
  draining   boolean NOT NULL DEFAULT false
);
