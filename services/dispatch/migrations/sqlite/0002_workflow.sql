-- The handling workflow (办理流程, issue 7): the state the workflow module works on, and the
-- columns the queues filter by. `status` now holds the workflow's stage:
-- dispatched | reopened | accepted | contacted | verified | replied | staged | resolved | closed.
ALTER TABLE cases ADD COLUMN workflow TEXT NOT NULL DEFAULT '';   -- JSON of workflow::Case
ALTER TABLE cases ADD COLUMN version INTEGER NOT NULL DEFAULT 0;       -- bumped by every change
ALTER TABLE cases ADD COLUMN manual_queue INTEGER NOT NULL DEFAULT 0;                  -- waiting for the centre (待人工派单)
ALTER TABLE cases ADD COLUMN return_pending INTEGER NOT NULL DEFAULT 0;                -- a return awaits review (退回待审)
ALTER TABLE cases ADD COLUMN extension_pending INTEGER NOT NULL DEFAULT 0;             -- an extension awaits decision
ALTER TABLE cases ADD COLUMN supervised INTEGER NOT NULL DEFAULT 0;                    -- 督办
ALTER TABLE cases ADD COLUMN unreasonable INTEGER NOT NULL DEFAULT 0;                  -- closed as 不合理诉求
ALTER TABLE cases ADD COLUMN leader_id TEXT NOT NULL DEFAULT '';  -- escalated to (包案)
ALTER TABLE cases ADD COLUMN deadline INTEGER;                         -- resolve deadline in force (ms)
ALTER TABLE cases ADD COLUMN colour TEXT NOT NULL DEFAULT 'green'; -- worst SLA colour: green | yellow | red
CREATE INDEX cases_by_leader ON cases (leader_id, case_id);
CREATE INDEX cases_by_deadline ON cases (deadline);

-- Every unit working on a case, the owner and each assisting unit: a unit's queue.
CREATE TABLE case_units (
    case_id  TEXT NOT NULL REFERENCES cases (case_id),
    unit_id  TEXT NOT NULL,
    lead     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (case_id, unit_id)
);
CREATE INDEX case_units_by_unit ON case_units (unit_id, case_id);
INSERT INTO case_units (case_id, unit_id, lead) SELECT case_id, unit_id, 1 FROM cases WHERE unit_id <> '';
