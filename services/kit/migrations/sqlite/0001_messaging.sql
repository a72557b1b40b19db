-- The kit's own tables, in every service's database: exactly-once handling (inbox), reliable
-- publishing (outbox) and messages that kept failing (dead letters).

CREATE TABLE inbox (
    consumer    TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    handled_at  INTEGER NOT NULL,
    PRIMARY KEY (consumer, message_id)
);

CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT    NOT NULL UNIQUE,
    subject       TEXT    NOT NULL,
    event_type    TEXT    NOT NULL,
    case_id       TEXT    NOT NULL,
    headers       TEXT    NOT NULL,
    payload       BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    claimed_until INTEGER,
    sent_at       INTEGER,
    last_error    TEXT
);
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;

CREATE TABLE dead_letters (
    id          TEXT    PRIMARY KEY,
    consumer    TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    stream_seq  INTEGER NOT NULL,
    subject     TEXT    NOT NULL,
    headers     TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    error       TEXT    NOT NULL,
    deliveries  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    replayed_at INTEGER
);
CREATE INDEX dead_letters_open ON dead_letters (created_at) WHERE replayed_at IS NULL;
