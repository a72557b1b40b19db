-- Milestone clocks (计时器): the timer's system of record. One row per case and milestone; a
-- reopened case re-arms the same row one version up. The firing loop reads the soonest
-- next_fire_at and moves state forward with a compare-and-set on (version, state).
CREATE TABLE clocks (
    clock_id      TEXT    PRIMARY KEY,   -- "<case_id>:<milestone>"
    case_id       TEXT    NOT NULL,
    case_no       TEXT    NOT NULL,
    milestone     TEXT    NOT NULL,      -- dispatch | accept | contact | reply | resolve | escalate
    version       INTEGER NOT NULL,      -- arming generation, 1 first
    round         INTEGER NOT NULL,      -- handling round it was armed for (0: before dispatch)
    state         TEXT    NOT NULL,      -- armed | warned | breached | stopped
    started_at    INTEGER NOT NULL,
    warn_at       INTEGER NOT NULL,
    deadline      INTEGER NOT NULL,
    stopped_at    INTEGER,
    unit_id       TEXT    NOT NULL,      -- answerable unit; '' before dispatch
    urgency       TEXT    NOT NULL,      -- emergency | normal | complex
    next_fire_at  INTEGER,               -- next instant it may fire; NULL once nothing can
    armed_by      TEXT    NOT NULL,      -- id of the event that armed this version
    updated_at    INTEGER NOT NULL
);

CREATE INDEX clocks_next_fire_at ON clocks (next_fire_at) WHERE next_fire_at IS NOT NULL;
CREATE INDEX clocks_case_id ON clocks (case_id);
CREATE INDEX clocks_case_no ON clocks (case_no);

-- What happened to each clock version (the case timeline): armed, warning, breached, and how it
-- stopped (met, closed, superseded). At most once each per version.
CREATE TABLE clock_history (
    clock_id     TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    event        TEXT    NOT NULL,      -- armed | warning | breached | met | closed | superseded
    case_id      TEXT    NOT NULL,
    milestone    TEXT    NOT NULL,
    happened_at  INTEGER NOT NULL,
    deadline     INTEGER NOT NULL,      -- the version's deadline, for the timeline's wording
    PRIMARY KEY (clock_id, version, event)
);

CREATE INDEX clock_history_case ON clock_history (case_id, happened_at);
