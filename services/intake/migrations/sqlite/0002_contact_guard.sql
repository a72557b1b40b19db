-- Which unit owns each case, as dispatch announced it (case.dispatched): the owning unit's
-- handler may read the citizen's contact.
CREATE TABLE case_owners (
    case_id    TEXT PRIMARY KEY,
    unit_id    TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every request for a citizen's contact, allowed or refused (联系方式调阅记录).
CREATE TABLE contact_reads (
    read_id     TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    case_id     TEXT NOT NULL,
    reader      TEXT NOT NULL,
    reader_name TEXT NOT NULL,
    roles       TEXT NOT NULL,
    unit_id     TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    allowed     BOOLEAN NOT NULL,
    refusal     TEXT NOT NULL
);
CREATE INDEX contact_reads_case ON contact_reads (case_id, at);
CREATE INDEX contact_reads_at ON contact_reads (at);
