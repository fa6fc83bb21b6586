-- The whole schema for a PostgreSQL store: the same tables and columns as the SQLite
-- migrations 0001-0010 (see schemas/sqlite for what each holds), so one set of queries
-- serves both. Differences, and why:
-- - integers are BIGINT (SQLite's INTEGER is 64-bit), flags BIGINT 0/1 as in SQLite;
-- - blobs are BYTEA;
-- - tables whose listings follow insertion order have a `rowid` identity column, the
--   name of SQLite's implicit one.

CREATE TABLE objects (
    id                          TEXT PRIMARY KEY NOT NULL,
    object_type                 BIGINT NOT NULL,
    owner                       TEXT NOT NULL,
    state                       BIGINT NOT NULL,
    sub_type                    BIGINT,
    key_format                  BIGINT,
    sealed_material             BYTEA,
    kek_label                   TEXT,
    initial_date                BIGINT NOT NULL,
    activation_date             BIGINT,
    deactivation_date           BIGINT,
    destroy_date                BIGINT,
    compromise_date             BIGINT,
    compromise_occurrence_date  BIGINT,
    revocation_reason           BIGINT,
    revocation_message          TEXT,
    last_change_date            BIGINT NOT NULL,
    version                     BIGINT NOT NULL DEFAULT 0,
    public_material             BYTEA,
    archived                    BIGINT NOT NULL DEFAULT 0,
    fresh                       BIGINT NOT NULL DEFAULT 1,
    rowid                       BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX objects_owner_type_state ON objects (owner, object_type, state);
CREATE INDEX objects_pending_activation ON objects (state, activation_date);
CREATE INDEX objects_initial ON objects (initial_date DESC, rowid DESC);

CREATE TABLE attributes (
    object_id   TEXT NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    idx         BIGINT NOT NULL,
    value       BYTEA NOT NULL,
    match_key   TEXT NOT NULL,
    PRIMARY KEY (object_id, name, idx)
);
CREATE INDEX attributes_match ON attributes (name, match_key, object_id);

CREATE TABLE audit (
    seq         BIGINT PRIMARY KEY,
    at          BIGINT NOT NULL,
    principal   TEXT NOT NULL,
    protocol    TEXT NOT NULL,
    operation   TEXT NOT NULL,
    object_id   TEXT,
    outcome     TEXT NOT NULL,
    detail      TEXT,
    hash        BYTEA
);
CREATE INDEX audit_object ON audit (object_id);

CREATE TABLE audit_head (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    seq     BIGINT NOT NULL,
    hash    BYTEA
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, NULL);

CREATE TABLE audit_seals (
    seq         BIGINT PRIMARY KEY NOT NULL,
    hash        BYTEA NOT NULL,
    signature   BYTEA NOT NULL,
    sealed_at   BIGINT NOT NULL
);

CREATE TABLE grants (
    object_id   TEXT NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    principal   TEXT NOT NULL,
    operation   TEXT NOT NULL,
    granted_by  TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (object_id, principal, operation)
);
CREATE INDEX grants_principal ON grants (principal, object_id);

CREATE TABLE tokens (
    accessor        TEXT PRIMARY KEY NOT NULL,
    hash            BYTEA NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    policies        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    created_by      TEXT NOT NULL,
    revoked_at      BIGINT
);

CREATE TABLE policies (
    name        TEXT PRIMARY KEY NOT NULL,
    body        TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE engine_configs (
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    body        TEXT NOT NULL,
    sealed      BYTEA,
    pending     BYTEA,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE leases (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    data            TEXT NOT NULL,
    issued_at       BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    max_expires_at  BIGINT NOT NULL,
    renewable       BIGINT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    revoked_at      BIGINT,
    issued_to       TEXT NOT NULL
);
CREATE INDEX leases_due ON leases (state, next_attempt_at);

CREATE TABLE certificates (
    serial              TEXT PRIMARY KEY NOT NULL,
    role                TEXT NOT NULL,
    subject             TEXT NOT NULL,
    not_before          BIGINT NOT NULL,
    not_after           BIGINT NOT NULL,
    lease_id            TEXT,
    revoked_at          BIGINT,
    revocation_reason   BIGINT,
    pem                 TEXT NOT NULL
);
CREATE INDEX certificates_revoked ON certificates (revoked_at);

CREATE TABLE acme_accounts (
    id          TEXT PRIMARY KEY NOT NULL,
    thumbprint  TEXT NOT NULL UNIQUE,
    jwk         TEXT NOT NULL,
    status      TEXT NOT NULL,
    contact     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE acme_orders (
    id                  TEXT PRIMARY KEY NOT NULL,
    account_id          TEXT NOT NULL REFERENCES acme_accounts (id),
    status              TEXT NOT NULL,
    identifiers         TEXT NOT NULL,
    expires_at          BIGINT NOT NULL,
    error               TEXT,
    certificate_serial  TEXT REFERENCES certificates (serial),
    created_at          BIGINT NOT NULL,
    replaces            TEXT,
    rowid               BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX acme_orders_certificate ON acme_orders (certificate_serial);
CREATE INDEX acme_orders_account ON acme_orders (account_id, rowid);
CREATE UNIQUE INDEX acme_orders_replaces ON acme_orders (replaces) WHERE replaces IS NOT NULL;

CREATE TABLE acme_authorizations (
    id                  TEXT PRIMARY KEY NOT NULL,
    order_id            TEXT NOT NULL REFERENCES acme_orders (id),
    account_id          TEXT NOT NULL REFERENCES acme_accounts (id),
    identifier_type     TEXT NOT NULL,
    identifier_value    TEXT NOT NULL,
    status              TEXT NOT NULL,
    expires_at          BIGINT NOT NULL,
    rowid               BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX acme_authorizations_order ON acme_authorizations (order_id);

CREATE TABLE acme_challenges (
    id              TEXT PRIMARY KEY NOT NULL,
    authz_id        TEXT NOT NULL REFERENCES acme_authorizations (id),
    type            TEXT NOT NULL,
    token           TEXT NOT NULL,
    status          TEXT NOT NULL,
    validated_at    BIGINT,
    error           TEXT,
    rowid           BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX acme_challenges_authz ON acme_challenges (authz_id);

CREATE TABLE acme_eab_keys (
    id          TEXT PRIMARY KEY NOT NULL,
    sealed_key  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    account_id  TEXT REFERENCES acme_accounts (id),
    bound_at    BIGINT
);
