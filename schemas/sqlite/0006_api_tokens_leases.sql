-- The HTTP API: tokens and their policies, dynamic-credential engines (database connections
-- and roles, certificate roles), leases, and certificates issued through the API.

-- API tokens. Only the SHA-256 of a token is kept; `accessor` names the token in audit
-- records and lets it be revoked without knowing it.
CREATE TABLE tokens (
    accessor        TEXT PRIMARY KEY NOT NULL,
    hash            BLOB NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    -- JSON array of policy names.
    policies        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    -- NULL: no expiry (the initial admin token).
    expires_at      INTEGER,
    created_by      TEXT NOT NULL,
    revoked_at      INTEGER
);

-- Named ACL policies in the policy language (`path "..." { capabilities = [...] }`).
CREATE TABLE policies (
    name        TEXT PRIMARY KEY NOT NULL,
    body        TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Configuration documents of the secrets engines, by kind ('database-connection',
-- 'database-role', 'database-static-role', 'pki-role') and name, as JSON. Secrets in them
-- (a connection's password) live only in `sealed`, sealed by the HSM's key-encryption key
-- with "KIND/NAME" as associated data; `pending` holds a rotated password not yet confirmed.
CREATE TABLE engine_configs (
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    body        TEXT NOT NULL,
    sealed      BLOB,
    pending     BLOB,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
);

-- Leases on dynamic credentials. The id starts with the path that issued it
-- ("database/creds/ROLE/..."), so revoke-prefix is a prefix match on it.
CREATE TABLE leases (
    id              TEXT PRIMARY KEY NOT NULL,
    -- 'database' or 'pki': which engine revokes it.
    kind            TEXT NOT NULL,
    -- What the engine needs to revoke or renew it (JSON: connection, role, username; or serial).
    data            TEXT NOT NULL,
    issued_at       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    max_expires_at  INTEGER NOT NULL,
    renewable       INTEGER NOT NULL,
    -- 'active', 'revoked', or 'revoke_failed' (expired or revoked, but the engine could not
    -- remove the credential yet; retried with backoff).
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    revoked_at      INTEGER,
    issued_to       TEXT NOT NULL
);
CREATE INDEX leases_due ON leases (state, next_attempt_at);

-- Certificates issued through the API (/v1/pki/...), for revocation and CRLs.
CREATE TABLE certificates (
    serial              TEXT PRIMARY KEY NOT NULL,
    role                TEXT NOT NULL,
    subject             TEXT NOT NULL,
    not_before          INTEGER NOT NULL,
    not_after           INTEGER NOT NULL,
    lease_id            TEXT,
    revoked_at          INTEGER,
    revocation_reason   INTEGER,
    pem                 TEXT NOT NULL
);
CREATE INDEX certificates_revoked ON certificates (revoked_at);
