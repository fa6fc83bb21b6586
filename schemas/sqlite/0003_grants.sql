-- Access grants: the owner of an object (or an administrator) lets another identity run
-- named KMIP operations on it.
CREATE TABLE grants (
    object_id   TEXT NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    principal   TEXT NOT NULL,
    operation   TEXT NOT NULL,
    granted_by  TEXT NOT NULL,
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (object_id, principal, operation)
);
CREATE INDEX grants_principal ON grants (principal, object_id);
