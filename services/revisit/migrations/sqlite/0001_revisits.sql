-- Revisit tasks (回访任务), one per case and round: created pending when the case is resolved,
-- recorded with the citizen's answer (回访登记表).
CREATE TABLE revisits (
    revisit_id     TEXT    PRIMARY KEY,
    case_id        TEXT    NOT NULL,
    case_no        TEXT    NOT NULL,
    round          INTEGER NOT NULL,
    status         TEXT    NOT NULL,  -- pending | recorded
    unit_id        TEXT    NOT NULL,  -- the unit that resolved the case
    satisfaction   TEXT    NOT NULL,  -- '' | satisfied | basically_satisfied | dissatisfied
    solved         BOOLEAN NOT NULL,
    comment        TEXT    NOT NULL,
    recorded_by    TEXT    NOT NULL,
    reopened       BOOLEAN NOT NULL,
    created_at     INTEGER NOT NULL,
    recorded_at    INTEGER,
    UNIQUE (case_id, round)
);
CREATE INDEX revisits_by_case_no ON revisits (case_no, round);
CREATE INDEX revisits_by_status ON revisits (status, created_at);
