-- seqcast schema v4: a failover to a standby that lacks the last commits is told,
-- never silent (docs/reliability.md, "Failover").
--
-- A promoted standby starts a new server timeline. Each channel row remembers the
-- timeline its epoch was last confirmed on; the first writer or reader that finds a
-- channel on another timeline "rebases" it (storage/timeline.cpp): the channel
-- continues in a new epoch, derived from the old one and the timeline so that every
-- node that does it computes the same one, whose seqs 1..last_seq are the messages
-- that survived, and the old epoch is recorded below with that head. A position of
-- the old epoch at or below it resumes as if nothing happened; one beyond it names
-- messages the database no longer has, and gets a `rewound` reset.
--
-- 0 means "not known" (a server whose timeline cannot be read): never rebased.
ALTER TABLE channels ADD COLUMN timeline integer NOT NULL DEFAULT 0;

-- Every row of a running deployment belongs to the timeline it is on now.
DO $$
BEGIN
  IF NOT pg_is_in_recovery() THEN
    UPDATE channels
    SET timeline = ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::integer;
  END IF;
EXCEPTION WHEN OTHERS THEN
  NULL;  -- the server hides its WAL position (some managed services): stay at 0
END
$$;

-- The epochs a channel left behind by a rebase, oldest first (`n`): seqs
-- 1..rewound_to of `epoch` are the same messages in every later epoch of the row.
CREATE TABLE rewinds (
  n          bigserial PRIMARY KEY,
  channel_id bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  epoch      text NOT NULL,
  rewound_to bigint NOT NULL,
  at         timestamptz NOT NULL DEFAULT now(),
  UNIQUE (channel_id, epoch)
);
