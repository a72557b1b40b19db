-- An approved extension (延期) moves a clock's deadline; the one it had first is kept here for
-- the statistics (on-time against the original limit). NULL: never moved.
ALTER TABLE clocks ADD COLUMN original_deadline INTEGER;
