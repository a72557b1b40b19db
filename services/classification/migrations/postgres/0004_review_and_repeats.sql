-- The review (人工复核) of each classification: '' decided by the classifier alone, 'waiting'
-- for a person, 'confirmed' or 'reclassified' by one.
ALTER TABLE classifications ADD COLUMN review TEXT NOT NULL DEFAULT '';

-- Cases waiting for a person, with what the reviewer reads and what the case goes on with once
-- released. released_at is 0 while the case waits.
CREATE TABLE reviews (
    case_id        TEXT    PRIMARY KEY,
    case_no        TEXT    NOT NULL,
    channel        TEXT    NOT NULL,
    title          TEXT    NOT NULL,
    description    TEXT    NOT NULL,
    street         TEXT    NOT NULL,
    location       TEXT    NOT NULL,   -- JSON: street, community, grid, address, latitude, longitude
    citizen_key    TEXT    NOT NULL,
    why            TEXT    NOT NULL,
    waiting_since  BIGINT  NOT NULL,
    released_at    BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX reviews_waiting ON reviews (released_at, waiting_since);
CREATE INDEX reviews_street ON reviews (street, released_at, waiting_since);

-- Every person's decision on a classification (复核记录): who, when, what the model said and
-- what the person decided. Kept for audit, and exported for the next training run.
CREATE TABLE corrections (
    case_id             TEXT    PRIMARY KEY,
    case_no             TEXT    NOT NULL,
    channel             TEXT    NOT NULL,
    text                TEXT    NOT NULL,
    model_version       TEXT    NOT NULL,
    model_sub_item      TEXT    NOT NULL,
    model_urgency       TEXT    NOT NULL,
    model_request_type  TEXT    NOT NULL,
    model_confidence    DOUBLE PRECISION   NOT NULL,
    sub_item            TEXT    NOT NULL,
    urgency             TEXT    NOT NULL,
    request_type        TEXT    NOT NULL,
    corrected           BOOLEAN   NOT NULL,
    reviewer_subject    TEXT    NOT NULL,
    reviewer_name       TEXT    NOT NULL,
    note                TEXT    NOT NULL,
    decided_at          BIGINT  NOT NULL
);
CREATE INDEX corrections_decided ON corrections (decided_at);

-- What each classified case is remembered by to find its repeats (重复诉求): the keyed hash of
-- the citizen's phone (never the number), the place, a digest of the words (never the words).
CREATE TABLE case_marks (
    case_id        TEXT    PRIMARY KEY,
    case_no        TEXT    NOT NULL,
    channel        TEXT    NOT NULL,
    sub_item       TEXT    NOT NULL,
    citizen_key    TEXT    NOT NULL,
    street         TEXT    NOT NULL,
    community      TEXT    NOT NULL,
    grid           TEXT    NOT NULL,
    place          TEXT    NOT NULL,
    digest         TEXT    NOT NULL,
    title          TEXT    NOT NULL,
    at_ms          BIGINT  NOT NULL,
    first_case_id  TEXT    NOT NULL,
    first_case_no  TEXT    NOT NULL,
    chain          BIGINT  NOT NULL,
    duplicate_of   TEXT    NOT NULL
);
CREATE INDEX case_marks_citizen ON case_marks (citizen_key, sub_item, at_ms);
CREATE INDEX case_marks_place ON case_marks (community, place, sub_item, at_ms);
CREATE INDEX case_marks_area ON case_marks (sub_item, community, at_ms);

-- Hot spots by grid (网格) where the grid is known, beside those by community.
ALTER TABLE area_cases ADD COLUMN grid TEXT NOT NULL DEFAULT '';
CREATE INDEX area_cases_grid ON area_cases (sub_item, grid, classified_at);
ALTER TABLE hotspots ADD COLUMN grid TEXT NOT NULL DEFAULT '';
