-- Hot spots are counted on case_marks, which every decided case is recorded in anyway: the
-- separate area_cases table cost a second insert per case. Its rows move over (a case counted
-- before the marks existed keeps counting in its place's baseline).
INSERT INTO case_marks (case_id, case_no, channel, sub_item, citizen_key, street, community, grid, place, digest, title,
                        at_ms, first_case_id, first_case_no, chain, duplicate_of)
SELECT case_id, '', '', sub_item, '', street, community, grid, '', '', '', classified_at, case_id, '', 1, ''
FROM area_cases WHERE true  -- (SQLite needs a WHERE before an upsert clause of INSERT … SELECT)
ON CONFLICT (case_id) DO NOTHING;
DROP TABLE area_cases;
CREATE INDEX case_marks_grid ON case_marks (sub_item, grid, at_ms);
