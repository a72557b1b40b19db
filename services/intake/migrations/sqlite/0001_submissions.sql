-- Every accepted submission (受理记录). The citizen's name and phone live here and nowhere else.
CREATE TABLE submissions (
    case_id        TEXT    PRIMARY KEY,
    case_no        TEXT    NOT NULL UNIQUE,
    channel        TEXT    NOT NULL,
    channel_ref    TEXT    NOT NULL,
    title          TEXT    NOT NULL,
    description    TEXT    NOT NULL,
    street         TEXT    NOT NULL,
    community      TEXT    NOT NULL,
    grid           TEXT    NOT NULL,
    address        TEXT    NOT NULL,
    latitude       DOUBLE PRECISION NOT NULL,
    longitude      DOUBLE PRECISION NOT NULL,
    attachments    TEXT    NOT NULL,
    category_hint  TEXT    NOT NULL,
    citizen_name   TEXT    NOT NULL,
    citizen_phone  TEXT    NOT NULL,
    anonymous      BOOLEAN NOT NULL,
    submitted_at   INTEGER NOT NULL,
    received_at    INTEGER NOT NULL,
    UNIQUE (channel, channel_ref)
);

-- The day's last case number sequence, per local day.
CREATE TABLE case_no_counters (
    day   TEXT    PRIMARY KEY,
    last  INTEGER NOT NULL
);
