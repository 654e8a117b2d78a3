-- seqcast schema v2: transactional publish through an outbox.
--
-- An application that shares seqcast's database calls, inside its own transaction,
--   SELECT seqcast.publish(channel, payload, idempotency_key);
-- The message lands in `outbox` and commits, or rolls back, with that transaction.
-- seqcast nodes move committed rows into the log: one mover at a time (an advisory
-- lock), in commit order, in the same transaction that inserts them into `messages`
-- (seqs by group commit) and deletes them from `outbox` — so each row is published
-- exactly once, whatever crashes in between.
--
-- Commit order: when a transaction that published commits, a deferred trigger gives
-- its rows one `ticket` from a sequence while holding a transaction-scoped advisory
-- lock, which PostgreSQL releases only after the commit is visible. The next
-- committing transaction waits for that lock, so tickets follow commit order, and a
-- mover that sees ticket t sees every lower one. (An UPDATE of a counter row would
-- order them too, but fails REPEATABLE READ transactions with a serialization error.)
-- The same trigger NOTIFYs the nodes: one notification per transaction, on the
-- schema's channel, with the payload "outbox". Both the lock and the NOTIFY are held
-- through the commit's flush: transactions that publish commit one at a time, as
-- with Action Cable's PostgreSQL adapter (its NOTIFY takes the same lock).
--
-- The functions run with their owner's rights (SECURITY DEFINER), so that an
-- application role needs only USAGE on the schema; their search_path is the schema
-- then pg_temp, named last (set at the end of this file), so that no caller's
-- temporary table or sequence can stand in for ours.

-- Limits the database's own code checks: nodes write theirs at start.
CREATE TABLE settings (
  name  text PRIMARY KEY,
  value text NOT NULL
);
INSERT INTO settings (name, value) VALUES ('max_payload_bytes', '1048576');

CREATE SEQUENCE outbox_tickets;

CREATE TABLE outbox (
  id              bigserial PRIMARY KEY,
  channel         text NOT NULL,
  payload         text NOT NULL,
  idempotency_key text,
  ticket          bigint,  -- commit order; set as the publishing transaction commits
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_order ON outbox (ticket, id);

-- Checks what the HTTP API checks, with its error codes at the start of the message,
-- then queues the message. Returns nothing: the seq is assigned after the commit.
CREATE FUNCTION publish(channel text, payload text, idempotency_key text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
  max_bytes bigint;
BEGIN
  IF publish.channel IS NULL OR length(publish.channel) NOT BETWEEN 1 AND 1024
     OR publish.channel !~ '^[A-Za-z0-9_.:@=/-]+$' THEN
    RAISE EXCEPTION 'invalid_channel: a channel name is 1-1024 characters of A-Z a-z 0-9 _ - . : @ = /'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF publish.payload IS NULL THEN
    RAISE EXCEPTION 'invalid_json: the payload is NULL' USING ERRCODE = 'invalid_text_representation';
  END IF;
  SELECT value::bigint INTO max_bytes FROM settings WHERE name = 'max_payload_bytes';
  IF octet_length(publish.payload) > max_bytes THEN
    RAISE EXCEPTION 'payload_too_large: the payload is % bytes, more than max_payload_bytes (%)',
      octet_length(publish.payload), max_bytes
      USING ERRCODE = 'program_limit_exceeded';
  END IF;
  -- A read-only block: its subtransaction takes no transaction id.
  BEGIN
    PERFORM publish.payload::json;
  EXCEPTION WHEN data_exception THEN
    RAISE EXCEPTION 'invalid_json: %', SQLERRM USING ERRCODE = 'invalid_text_representation';
  END;
  IF publish.idempotency_key IS NOT NULL
     AND (length(publish.idempotency_key) NOT BETWEEN 1 AND 128
          OR publish.idempotency_key !~ '^[ -~]+$') THEN
    RAISE EXCEPTION 'invalid_idempotency_key: an idempotency key is 1-128 printable ASCII characters'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO outbox (channel, payload, idempotency_key)
  VALUES (publish.channel, publish.payload, publish.idempotency_key);
  -- With SET CONSTRAINTS ALL IMMEDIATE the ticket trigger fires now, not at commit,
  -- and its lock would then be held for the rest of the transaction: every other
  -- publishing transaction would wait on it (or deadlock with it).
  IF split_part(current_setting('seqcast.outbox_' || current_schema(), true), ':', 1)
     = txid_current()::text THEN
    RAISE EXCEPTION 'seqcast.publish needs its trigger deferred to the commit: do not SET CONSTRAINTS ALL IMMEDIATE in a transaction that publishes'
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
END;
$$;

-- Fires as the publishing transaction commits (deferred), once per row; the first
-- row of a transaction takes its ticket, the others reuse it.
CREATE FUNCTION outbox_ticket() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
  mark_name text := 'seqcast.outbox_' || TG_TABLE_SCHEMA;
  mark      text := current_setting(mark_name, true);
  tx        text := txid_current()::text;
  t         bigint;
BEGIN
  IF mark IS NOT NULL AND split_part(mark, ':', 1) = tx THEN
    t := split_part(mark, ':', 2)::bigint;
  ELSE
    PERFORM pg_advisory_xact_lock(hashtext('seqcast outbox ' || TG_TABLE_SCHEMA));
    t := nextval('outbox_tickets');
    PERFORM set_config(mark_name, tx || ':' || t, true);
    PERFORM pg_notify(TG_TABLE_SCHEMA, 'outbox');
  END IF;
  UPDATE outbox SET ticket = t WHERE id = NEW.id;
  RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER outbox_ticket AFTER INSERT ON outbox
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION outbox_ticket();

-- The search_path both functions run with: this schema, then pg_temp explicitly and
-- last (left implicit, pg_temp would be searched first).
DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION publish(text, text, text) SET search_path = %I, pg_temp',
                 current_schema());
  EXECUTE format('ALTER FUNCTION outbox_ticket() SET search_path = %I, pg_temp',
                 current_schema());
END;
$$;
