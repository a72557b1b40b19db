-- Where each classified case is, by sub-item, for hot spots (热点): only the place, never who.
CREATE TABLE area_cases (
    case_id        TEXT    PRIMARY KEY,
    sub_item       TEXT    NOT NULL,
    street         TEXT    NOT NULL,
    community      TEXT    NOT NULL,
    classified_at  INTEGER  NOT NULL
);
CREATE INDEX area_cases_place ON area_cases (sub_item, community, classified_at);

-- Hot spots raised: a sub-item rising in one community over its own baseline.
CREATE TABLE hotspots (
    hotspot_id     TEXT    PRIMARY KEY,
    sub_item       TEXT    NOT NULL,
    street         TEXT    NOT NULL,
    community      TEXT    NOT NULL,
    count          INTEGER  NOT NULL,
    baseline       REAL  NOT NULL,
    window_start   INTEGER  NOT NULL,
    raised_at      INTEGER  NOT NULL,
    case_ids       TEXT    NOT NULL   -- JSON array
);
CREATE INDEX hotspots_place ON hotspots (sub_item, community, raised_at);
CREATE INDEX hotspots_raised ON hotspots (raised_at);
