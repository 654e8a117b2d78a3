-- seqcast schema v1: channels with a gapless seq counter, and the message log.

-- One row per database: its identity, so that a node's cache filled from
-- another database is recognised and discarded.
CREATE TABLE seqcast_identity (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  id         text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO seqcast_identity (id)
VALUES (md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text));

-- A channel row is one incarnation (epoch) of a channel's history. DELETE
-- removes the row and its messages; the next publish creates a new row with a
-- new id and a new epoch. last_seq is the gapless counter: a publishing
-- transaction locks the row, bumps it by its batch size and inserts the
-- messages, so per channel commit order is seq order.
CREATE TABLE channels (
  id         bigserial PRIMARY KEY,
  name       text NOT NULL UNIQUE,
  epoch      text NOT NULL DEFAULT substr(md5(random()::text || clock_timestamp()::text), 1, 16),
  last_seq   bigint NOT NULL DEFAULT 0,
  first_seq  bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE messages (
  channel_id      bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  seq             bigint NOT NULL,
  ts              timestamptz NOT NULL,
  payload         text NOT NULL,
  idempotency_key text,
  PRIMARY KEY (channel_id, seq)
);

CREATE UNIQUE INDEX messages_idempotency_key
  ON messages (channel_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
