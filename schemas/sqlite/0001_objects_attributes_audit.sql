-- Managed objects (KMIP), their attributes, and the audit trail.

-- One row per managed object. Lifecycle fields are columns because the server changes them;
-- key material is stored only sealed by the HSM's key-encryption key (AES-256-GCM inside
-- the HSM, with the object id as associated data), and is cleared when the object is
-- destroyed.
CREATE TABLE objects (
    id                          TEXT PRIMARY KEY NOT NULL,
    object_type                 INTEGER NOT NULL,
    owner                       TEXT NOT NULL,
    state                       INTEGER NOT NULL,
    -- Secret Data Type or Opaque Data Type, when the object type has one.
    sub_type                    INTEGER,
    key_format                  INTEGER,
    sealed_material             BLOB,
    kek_label                   TEXT,
    initial_date                INTEGER NOT NULL,
    activation_date             INTEGER,
    deactivation_date           INTEGER,
    destroy_date                INTEGER,
    compromise_date             INTEGER,
    compromise_occurrence_date  INTEGER,
    revocation_reason           INTEGER,
    revocation_message          TEXT,
    last_change_date            INTEGER NOT NULL,
    -- Optimistic concurrency: every update checks and bumps it.
    version                     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX objects_owner_type_state ON objects (owner, object_type, state);
CREATE INDEX objects_pending_activation ON objects (state, activation_date);

-- Client-visible attributes other than the lifecycle columns above: one row per instance.
-- `value` is the TTLV encoding of the Attribute Value; `match_key` its canonical text
-- (the Name Value for names), indexed so Locate never scans.
CREATE TABLE attributes (
    object_id   TEXT NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    value       BLOB NOT NULL,
    match_key   TEXT NOT NULL,
    PRIMARY KEY (object_id, name, idx)
);
CREATE INDEX attributes_match ON attributes (name, match_key, object_id);

-- Every operation and access decision: who, what, which object, and the outcome.
CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    principal   TEXT NOT NULL,
    protocol    TEXT NOT NULL,
    operation   TEXT NOT NULL,
    object_id   TEXT,
    outcome     TEXT NOT NULL,
    detail      TEXT
);
CREATE INDEX audit_object ON audit (object_id);
