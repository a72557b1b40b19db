-- The cases dispatch owns (工单): where each went, who holds it, where it stands in the loop.
CREATE TABLE cases (
    case_id        TEXT    PRIMARY KEY,
    case_no        TEXT    NOT NULL UNIQUE,
    status         TEXT    NOT NULL,  -- dispatched | accepted | resolved | reopened | closed
    unit_id        TEXT    NOT NULL,  -- the lead unit (主办), for every round (首问首办)
    unit_name      TEXT    NOT NULL,
    assisting      TEXT    NOT NULL,  -- JSON array of assisting unit ids (协办)
    sub_item       TEXT    NOT NULL,
    category       TEXT    NOT NULL,
    urgency        TEXT    NOT NULL,  -- unspecified | normal | emergency | complex
    round          INTEGER NOT NULL,
    title          TEXT    NOT NULL,
    street         TEXT    NOT NULL,  -- the street office responsible for the place, if known
    community      TEXT    NOT NULL,
    reply          TEXT    NOT NULL,  -- the latest answer to the citizen (答复内容)
    accepted_by    TEXT    NOT NULL,
    resolved_by    TEXT    NOT NULL,
    dispatched_at  INTEGER NOT NULL,
    accepted_at    INTEGER,
    resolved_at    INTEGER,
    closed_at      INTEGER,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX cases_by_unit ON cases (unit_id, status, case_id);
CREATE INDEX cases_by_status ON cases (status, case_id);

-- What happened to each case, for its timeline (办理记录). Details are Chinese, for people.
CREATE TABLE case_history (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id  TEXT    NOT NULL REFERENCES cases (case_id),
    at       INTEGER NOT NULL,
    event    TEXT    NOT NULL,
    detail   TEXT    NOT NULL,
    actor    TEXT    NOT NULL
);
CREATE INDEX case_history_by_case ON case_history (case_id, id);
