-- The citizen's query code (查询码, sealed like the contact); whether the request was found on
-- patrol before anyone complained (未诉先办); who entered it (the verified caller, or the channel's
-- producer); the walk-in session it was entered at.
ALTER TABLE submissions ADD COLUMN query_code TEXT NOT NULL DEFAULT '';
ALTER TABLE submissions ADD COLUMN proactive BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE submissions ADD COLUMN entered_by TEXT NOT NULL DEFAULT '';
ALTER TABLE submissions ADD COLUMN session TEXT NOT NULL DEFAULT '';

-- Files uploaded for submissions (附件), stored on disk by the SHA-256 of their content; the
-- copy others than the centre see has its location and other metadata removed (stripped_sha256).
CREATE TABLE uploads (
    sha256          TEXT   PRIMARY KEY,
    stripped_sha256 TEXT   NOT NULL,
    media_type      TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    size            BIGINT NOT NULL,
    channel         TEXT   NOT NULL,
    uploaded_at     BIGINT NOT NULL
);

-- What the citizen is told of their request's progress (办理进度), one row per event that
-- moved it, from the case events intake reads.
CREATE TABLE public_steps (
    event_id  TEXT   PRIMARY KEY,
    case_id   TEXT   NOT NULL,
    at        BIGINT NOT NULL,
    step      TEXT   NOT NULL,
    text      TEXT   NOT NULL,
    unit_name TEXT   NOT NULL
);
CREATE INDEX public_steps_case ON public_steps (case_id, at);

-- Wrong query codes, per case number, so that a code cannot be guessed.
CREATE TABLE status_misses (
    case_no TEXT   NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX status_misses_case ON status_misses (case_no, at);
