-- One classification per case (分类结果), with what matched, for the clerk reviewing it.
CREATE TABLE classifications (
    case_id          TEXT    PRIMARY KEY,
    case_no          TEXT    NOT NULL,
    category         TEXT    NOT NULL,
    sub_item         TEXT    NOT NULL,
    urgency          TEXT    NOT NULL,
    confidence       DOUBLE PRECISION    NOT NULL,
    matched_keywords TEXT    NOT NULL,
    fallback         BOOLEAN NOT NULL,
    classified_at    BIGINT NOT NULL
);
CREATE INDEX classifications_case_no ON classifications (case_no);
