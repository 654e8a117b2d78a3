-- seqcast schema v4: a group commit in one round trip.
--
-- The writer took six round trips or more per commit (BEGIN, lock, idempotency keys,
-- bump, insert, NOTIFY, COMMIT, and the outbox's peek, lock, take and delete).
-- commit_batch() does all of it in one call, which the writer sends on its own
-- (autocommit): one round trip, one transaction, one COMMIT.
--
-- Input, one element per message, in the order the node received them:
--   ids, names  the channel row the writer's cache names for it, and its name;
--   payloads, keys (idempotency key or NULL), reqs (request number: a request's
--   messages are published all or none);
-- then refused (request numbers the writer has judged to conflict), ts_us (the
-- batch's timestamp, µs since 1970), and the outbox page: take committed outbox rows
-- (transactional publishes, 002_outbox.sql) first when move_outbox, up to
-- outbox_rows of them and, past the first, outbox_bytes of payload; refused_outbox
-- names outbox rows judged to conflict.
--
-- Which requests conflict is the writer's rule, applied in order (a request whose key
-- was used with another payload — in the log, or by an earlier request of the commit
-- that was published — fails alone). This function only checks that what it is told
-- to publish holds no such clash. If it does (a first call, or a key another node
-- committed since), nothing is done and the answer is one 'judge' row per message,
-- outbox rows first, with what the writer needs to judge: seq, ts and same_payload of
-- the message its key already names in the log, and the outbox rows' contents. The
-- writer then calls again with `refused` filled in. A commit without conflicts — the
-- common case — takes one call.
--
-- Otherwise the answer is one row per message, in commit order (`ord`: outbox rows,
-- then the batch; `item`: 1-based position in the batch, 0 for an outbox row), state:
--   'new'       published now at `seq`, `ts`;
--   'existing'  an idempotent retry: seq and ts of the message its key names;
--   'conflict'  its request was refused: nothing of it was published (an outbox row
--               refused is dropped, as it can never be published);
-- or a single row 'stale' (nothing done) when a channel row of the writer's cache is
-- gone or names another channel: the writer reads its ids again and calls again.
-- Rows carry channel_id, channel and epoch (this node's own hub takes new messages
-- without reading them back); outbox rows also carry their payload.
--
-- The rules are the writer's of before: channel rows are locked in id order (writers
-- on several nodes never deadlock); each channel's last_seq is bumped once by its
-- count and its bytes by theirs (003_console.sql); NOTIFY carries
-- "<id> <to_seq> <epoch> <name>" lines, split to stay under 8,000 bytes; one node
-- moves the outbox at a time (an advisory lock; when another holds it, none move).
CREATE FUNCTION commit_batch(ids bigint[], names text[], payloads text[], keys text[],
                             reqs int[], refused int[], ts_us bigint, move_outbox boolean,
                             outbox_rows int, outbox_bytes bigint, refused_outbox bigint[])
RETURNS TABLE (ord int, item int, state text, channel_id bigint, channel text, epoch text,
               seq bigint, ts bigint, payload text, idempotency_key text,
               same_payload boolean, outbox_id bigint)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
  ob_ids bigint[] := '{}';
  ob_names text[] := '{}';
  ob_payloads text[] := '{}';
  ob_keys text[] := '{}';
  n_ob int := 0;
  a_ids bigint[];
  a_names text[];
  a_payloads text[];
  a_keys text[];
  a_refused boolean[];
  l_ids bigint[];
  l_names text[];
  l_epochs text[];
  l_last bigint[];
  r_state text[];
  r_seq bigint[];
  r_ts bigint[];
  ts_at timestamptz := to_timestamp(0) + ts_us * interval '1 microsecond';
BEGIN
  -- Outbox rows first: they committed before any of these publishes is answered.
  IF move_outbox
     AND pg_try_advisory_xact_lock(hashtext('seqcast outbox mover ' || current_schema())) THEN
    -- A page bounded by rows and by bytes (a move of big rows must stay far below
    -- the statement timeout, or it would fail for good); the first row always goes.
    SELECT coalesce(array_agg(p.id ORDER BY p.ticket, p.id), '{}'),
           coalesce(array_agg(p.channel ORDER BY p.ticket, p.id), '{}'),
           coalesce(array_agg(p.payload ORDER BY p.ticket, p.id), '{}'),
           coalesce(array_agg(p.idempotency_key ORDER BY p.ticket, p.id), '{}')
      INTO ob_ids, ob_names, ob_payloads, ob_keys
      FROM (SELECT o.*, sum(octet_length(o.payload)) OVER (ORDER BY o.ticket, o.id) AS upto
              FROM (SELECT * FROM outbox ORDER BY ticket, id LIMIT outbox_rows) AS o) AS p
     WHERE p.upto = octet_length(p.payload) OR p.upto <= outbox_bytes;
    n_ob := cardinality(ob_ids);
    IF n_ob > 0 THEN
      -- Their channels may have no row yet.
      INSERT INTO channels (name)
      SELECT DISTINCT x FROM unnest(ob_names) AS x ORDER BY x
      ON CONFLICT (name) DO NOTHING;
    END IF;
  END IF;

  SELECT coalesce(array_agg(c.id ORDER BY t.o), '{}') INTO a_ids
    FROM unnest(ob_names) WITH ORDINALITY AS t(name, o) JOIN channels c ON c.name = t.name;
  a_ids := a_ids || coalesce(ids, '{}');
  a_names := ob_names || coalesce(names, '{}');
  a_payloads := ob_payloads || coalesce(payloads, '{}');
  a_keys := ob_keys || coalesce(keys, '{}');
  SELECT coalesce(array_agg(t.id = ANY(coalesce(refused_outbox, '{}')) ORDER BY t.o), '{}')
         || coalesce((SELECT array_agg(r = ANY(coalesce(refused, '{}')) ORDER BY o)
                        FROM unnest(reqs) WITH ORDINALITY AS q(r, o)), '{}')
    INTO a_refused
    FROM unnest(ob_ids) WITH ORDINALITY AS t(id, o);

  -- Lock every channel row of the commit, in id order; a cached id that no longer
  -- names its channel makes the whole call a no-op.
  SELECT coalesce(array_agg(l.id ORDER BY l.id), '{}'), coalesce(array_agg(l.name ORDER BY l.id), '{}'),
         coalesce(array_agg(l.epoch ORDER BY l.id), '{}'),
         coalesce(array_agg(l.last_seq ORDER BY l.id), '{}')
    INTO l_ids, l_names, l_epochs, l_last
    FROM (SELECT c.id, c.name, c.epoch, c.last_seq FROM channels c
           WHERE c.id = ANY(a_ids) ORDER BY c.id FOR UPDATE) AS l;
  IF EXISTS (SELECT 1 FROM unnest(a_ids, a_names) AS t(cid, name)
               LEFT JOIN unnest(l_ids, l_names) AS l(id, name) ON l.id = t.cid
              WHERE l.name IS DISTINCT FROM t.name) THEN
    RETURN QUERY SELECT 0, 0, 'stale'::text, NULL::bigint, NULL::text, NULL::text, NULL::bigint,
                        NULL::bigint, NULL::text, NULL::text, NULL::boolean, NULL::bigint;
    RETURN;
  END IF;

  -- A clash among the messages to publish: a key that names another payload in the
  -- log, or two payloads under one key. The writer judges which requests to refuse.
  IF EXISTS (SELECT 1
               FROM unnest(a_ids, a_payloads, a_keys, a_refused) AS t(cid, payload, key, refused)
               JOIN messages m ON m.channel_id = t.cid AND m.idempotency_key = t.key
              WHERE NOT t.refused AND m.payload <> t.payload)
     OR EXISTS (SELECT 1
                  FROM unnest(a_ids, a_payloads, a_keys, a_refused) AS t(cid, payload, key, refused)
                 WHERE NOT t.refused AND t.key IS NOT NULL
                 GROUP BY t.cid, t.key HAVING min(t.payload) <> max(t.payload)) THEN
    RETURN QUERY
    SELECT t.o::int, CASE WHEN t.o > n_ob THEN t.o::int - n_ob ELSE 0 END, 'judge'::text, t.cid,
           t.name, NULL::text, m.seq, (extract(epoch FROM m.ts) * 1000000)::bigint,
           CASE WHEN t.o <= n_ob THEN t.payload END, CASE WHEN t.o <= n_ob THEN t.key END,
           m.payload = t.payload, CASE WHEN t.o <= n_ob THEN ob_ids[t.o] END
      FROM unnest(a_ids, a_names, a_payloads, a_keys) WITH ORDINALITY AS t(cid, name, payload, key, o)
      LEFT JOIN messages m ON m.channel_id = t.cid AND m.idempotency_key = t.key
     ORDER BY t.o;
    RETURN;
  END IF;

  -- Each message's fate: refused; a retry of a message in the log; a repeat of a key
  -- first used earlier in this commit (it gets that one's seq below); or new, numbered
  -- after its channel's head in commit order.
  WITH items AS (
    SELECT t.o, t.cid, t.key, t.refused, m.seq AS ex_seq,
           (extract(epoch FROM m.ts) * 1000000)::bigint AS ex_ts
      FROM unnest(a_ids, a_keys, a_refused) WITH ORDINALITY AS t(cid, key, refused, o)
      LEFT JOIN messages m ON m.channel_id = t.cid AND m.idempotency_key = t.key),
  fated AS (
    SELECT i.*,
           CASE WHEN i.refused THEN 'conflict'
                WHEN i.ex_seq IS NOT NULL THEN 'existing'
                WHEN i.key IS NOT NULL
                     AND i.o <> min(i.o) FILTER (WHERE NOT i.refused) OVER (PARTITION BY i.cid, i.key)
                  THEN 'repeat'
                ELSE 'new' END AS fate
      FROM items i),
  numbered AS (
    SELECT f.*,
           CASE WHEN f.fate = 'new'
                THEN l.last + count(*) FILTER (WHERE f.fate = 'new')
                                OVER (PARTITION BY f.cid ORDER BY f.o) END AS new_seq
      FROM fated f JOIN unnest(l_ids, l_last) AS l(id, last) ON l.id = f.cid),
  firsts AS (
    SELECT n.cid, n.key, n.new_seq FROM numbered n WHERE n.fate = 'new' AND n.key IS NOT NULL)
  SELECT array_agg(CASE WHEN n.fate = 'repeat' THEN 'existing' ELSE n.fate END ORDER BY n.o),
         array_agg(coalesce(n.new_seq, n.ex_seq, fs.new_seq) ORDER BY n.o),
         array_agg(CASE WHEN n.fate IN ('new', 'repeat') THEN ts_us ELSE n.ex_ts END ORDER BY n.o)
    INTO r_state, r_seq, r_ts
    FROM numbered n
    LEFT JOIN firsts fs ON n.fate = 'repeat' AND fs.cid = n.cid AND fs.key = n.key;

  UPDATE channels c SET last_seq = v.last, bytes = c.bytes + v.added
    FROM (SELECT t.cid, max(t.seq) AS last, sum(octet_length(t.payload)) AS added
            FROM unnest(a_ids, a_payloads, r_state, r_seq) AS t(cid, payload, state, seq)
           WHERE t.state = 'new' GROUP BY t.cid) AS v
   WHERE c.id = v.cid;
  INSERT INTO messages (channel_id, seq, ts, payload, idempotency_key)
  SELECT t.cid, t.seq, ts_at, t.payload, t.key
    FROM unnest(a_ids, r_seq, a_payloads, a_keys, r_state) AS t(cid, seq, payload, key, state)
   WHERE t.state = 'new'
   ORDER BY t.cid, t.seq;
  -- A chunk holds the lines ending in one 6,800-byte stretch: under 6,800 + one line
  -- (a name is at most 1,024 bytes), below NOTIFY's 8,000.
  PERFORM pg_notify(current_schema(), chunk.lines)
     FROM (SELECT string_agg(a.line, '' ORDER BY a.id) AS lines
             FROM (SELECT h.id, h.line, sum(octet_length(h.line)) OVER (ORDER BY h.id) AS upto
                     FROM (SELECT l.id, format(E'%s %s %s %s\n', l.id, max(t.seq), l.epoch, l.name)
                                    AS line
                             FROM unnest(a_ids, r_state, r_seq) AS t(cid, state, seq)
                             JOIN unnest(l_ids, l_names, l_epochs) AS l(id, name, epoch)
                               ON l.id = t.cid
                            WHERE t.state = 'new'
                            GROUP BY l.id, l.epoch, l.name) AS h) AS a
            GROUP BY (a.upto - 1) / 6800) AS chunk;
  IF n_ob > 0 THEN
    DELETE FROM outbox WHERE id = ANY(ob_ids);
  END IF;

  RETURN QUERY
  SELECT t.o::int, CASE WHEN t.o > n_ob THEN t.o::int - n_ob ELSE 0 END, t.state, t.cid, t.name,
         l.epoch, t.seq, t.ts, CASE WHEN t.o <= n_ob THEN t.payload END, NULL::text,
         NULL::boolean, CASE WHEN t.o <= n_ob THEN ob_ids[t.o] END
    FROM unnest(a_ids, a_names, a_payloads, r_state, r_seq, r_ts)
         WITH ORDINALITY AS t(cid, name, payload, state, seq, ts, o)
    JOIN unnest(l_ids, l_epochs) AS l(id, epoch) ON l.id = t.cid
   ORDER BY t.o;
END;
$$;

-- Its search_path: this schema, then pg_temp explicitly and last.
DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION commit_batch(bigint[], text[], text[], text[], int[], int[], '
                 'bigint, boolean, int, bigint, bigint[]) SET search_path = %I, pg_temp',
                 current_schema());
END;
$$;
