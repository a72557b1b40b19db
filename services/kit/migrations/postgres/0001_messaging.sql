-- The kit's own tables, in every service's database: exactly-once handling (inbox), reliable
-- publishing (outbox) and messages that kept failing (dead letters).

CREATE TABLE inbox (
    consumer    TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    handled_at  BIGINT NOT NULL,
    PRIMARY KEY (consumer, message_id)
);

CREATE TABLE outbox (
    seq           BIGSERIAL PRIMARY KEY,
    event_id      TEXT    NOT NULL UNIQUE,
    subject       TEXT    NOT NULL,
    event_type    TEXT    NOT NULL,
    case_id       TEXT    NOT NULL,
    headers       TEXT    NOT NULL,
    payload       BYTEA    NOT NULL,
    created_at    BIGINT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    claimed_until BIGINT,
    sent_at       BIGINT,
    last_error    TEXT
);
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;

CREATE TABLE dead_letters (
    id          TEXT    PRIMARY KEY,
    consumer    TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    stream_seq  BIGINT NOT NULL,
    subject     TEXT    NOT NULL,
    headers     TEXT    NOT NULL,
    payload     BYTEA    NOT NULL,
    error       TEXT    NOT NULL,
    deliveries  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    replayed_at BIGINT
);
CREATE INDEX dead_letters_open ON dead_letters (created_at) WHERE replayed_at IS NULL;
