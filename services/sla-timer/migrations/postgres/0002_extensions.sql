-- An approved extension (延期) moves a clock's deadline; the one it had first is kept here for
-- the statistics (on-time against the original limit). NULL: never moved.
ALTER TABLE clocks ADD COLUMN original_deadline BIGINT;

-- On-time figures (按时率) over a period read the met stops by time.
CREATE INDEX clock_history_by_event ON clock_history (event, happened_at);
