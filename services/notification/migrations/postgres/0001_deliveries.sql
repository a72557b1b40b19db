-- One row per message to send through one sink (通知投递). A citizen's phone number is never
-- stored: `recipient` holds the masked form (138****8000) once intake has been asked for it.
CREATE TABLE deliveries (
    delivery_id      TEXT    PRIMARY KEY,
    case_id          TEXT    NOT NULL,
    case_no          TEXT    NOT NULL,
    event_id         TEXT    NOT NULL,
    recipient_kind   TEXT    NOT NULL,   -- citizen | unit | supervisor
    recipient        TEXT    NOT NULL,
    template         TEXT    NOT NULL,
    text             TEXT    NOT NULL,
    sink             TEXT    NOT NULL,   -- log | webhook
    status           TEXT    NOT NULL,   -- pending | sent | failed
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    last_error       TEXT    NOT NULL DEFAULT '',
    created_at       BIGINT  NOT NULL,
    sent_at          BIGINT,
    -- W3C trace context of the event that caused the delivery, so the attempt joins its trace.
    trace_context    TEXT    NOT NULL DEFAULT '{}',
    -- A re-handled event never doubles a delivery.
    UNIQUE (event_id, recipient_kind, sink)
);

CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_case_id ON deliveries (case_id);
CREATE INDEX deliveries_case_no ON deliveries (case_no);
