-- Where a dead letter was in its stream, for all time (<stream>@<created>:<sequence>): replayed,
-- it is recognised as the message it was.
ALTER TABLE dead_letters ADD COLUMN stream_key TEXT NOT NULL DEFAULT '';
