-- The console's accounts (账号), sessions and audit. Case data is never here: the console reads
-- it from the services as the signed-in person.
CREATE TABLE console_accounts (
    username      TEXT    PRIMARY KEY,           -- what the person signs in with
    name          TEXT    NOT NULL,              -- shown, and recorded by the services as the actor
    roles         TEXT    NOT NULL,              -- comma-separated role keys
    unit          TEXT,                          -- the unit of a unit handler or head
    leader        TEXT,                          -- the organisation's leader id of a leader
    password_hash TEXT,                          -- argon2id PHC string; NULL: identity platform only
    oidc_subject  TEXT    UNIQUE,                -- the identity platform's `sub`, once linked
    disabled      BOOLEAN NOT NULL,
    failures      BIGINT  NOT NULL,              -- wrong passwords in a row
    locked_until  BIGINT,                        -- ms since the epoch
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

CREATE TABLE console_sessions (
    id_hash    TEXT   PRIMARY KEY,               -- SHA-256 of the cookie's value: a stolen table opens nothing
    username   TEXT   NOT NULL REFERENCES console_accounts (username) ON DELETE CASCADE,
    csrf       TEXT   NOT NULL,
    via        TEXT   NOT NULL,                  -- "password" | "oidc"
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_user ON console_sessions (username);

-- A sign-in through the identity platform between the redirect and the callback.
CREATE TABLE console_oidc_pending (
    state_hash TEXT   PRIMARY KEY,
    verifier   TEXT   NOT NULL,                  -- the PKCE code verifier
    nonce      TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE console_audit (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT  NOT NULL,
    actor   TEXT    NOT NULL,                    -- a username, or "" before sign-in
    action  TEXT    NOT NULL,                    -- "signin", "signin_refused", "account_created", …
    target  TEXT    NOT NULL,
    detail  TEXT    NOT NULL,
    client  TEXT    NOT NULL
);
CREATE INDEX console_audit_by_time ON console_audit (at);
