-- Get Usage Allocation (KMIP 1.4 §4.18): units taken from an object's Usage Limits Count
-- and set aside for one client, whose protecting operations draw on them first.
CREATE TABLE usage_allocations (
    object_id   TEXT NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    principal   TEXT NOT NULL,
    remaining   BIGINT NOT NULL,
    PRIMARY KEY (object_id, principal)
);
