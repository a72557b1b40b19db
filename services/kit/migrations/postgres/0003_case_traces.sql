-- The trace a case belongs to (一案一链路), as the first message of the case this service handled
-- carried it: a later command on the case (accept, resolve, a revisit, a timer firing) joins
-- that trace instead of starting its own. Purged with the inbox.
CREATE TABLE case_traces (
    case_id     TEXT PRIMARY KEY,
    traceparent TEXT NOT NULL,
    tracestate  TEXT NOT NULL DEFAULT '',
    seen_at     BIGINT NOT NULL
);
CREATE INDEX case_traces_seen_at ON case_traces (seen_at);
