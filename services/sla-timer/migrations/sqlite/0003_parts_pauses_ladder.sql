-- An assisting unit's part (协办) has a clock of its own: clock_id "<case_id>:assist:<unit_id>",
-- part = the unit. Empty for the case's own clocks.
ALTER TABLE clocks ADD COLUMN part TEXT NOT NULL DEFAULT '';
-- Since when a clock is paused (挂起); NULL while it runs.
ALTER TABLE clocks ADD COLUMN paused_at INTEGER;
-- When a red clock still not met is escalated (the ladder's last rung); NULL: never.
ALTER TABLE clocks ADD COLUMN escalate_at INTEGER;

-- What the policy chooses a case's limits by (channel × urgency × request type × category), as
-- the events told them.
CREATE TABLE case_facts (
    case_id       TEXT    PRIMARY KEY,
    channel       TEXT    NOT NULL DEFAULT '',
    urgency       TEXT    NOT NULL DEFAULT 'normal',
    request_type  TEXT    NOT NULL DEFAULT '',
    category      TEXT    NOT NULL DEFAULT '',
    updated_at    INTEGER  NOT NULL
);

-- Cases at risk by unit read the running clocks of a unit by state.
CREATE INDEX clocks_unit_state ON clocks (unit_id, state);
