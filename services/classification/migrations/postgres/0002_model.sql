-- The trained classifier's decision: which model made it (its version is recorded on every
-- decision), the kind of request, and the sub-items it weighed ("[[code, probability], …]").
ALTER TABLE classifications ADD COLUMN model_version TEXT NOT NULL DEFAULT '';
ALTER TABLE classifications ADD COLUMN request_type TEXT NOT NULL DEFAULT '';
ALTER TABLE classifications ADD COLUMN candidates TEXT NOT NULL DEFAULT '[]';
