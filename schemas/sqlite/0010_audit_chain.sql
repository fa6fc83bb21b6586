-- Tamper evidence for the audit trail: every record carries
-- hash = SHA-256(previous hash, seq, and the record's fields), the head of the chain is
-- kept in `audit_head`, and `audit_seals` holds HSM signatures over the head at points
-- in time. Records written before this migration predate the chain (hash NULL).
ALTER TABLE audit ADD COLUMN hash BLOB;

CREATE TABLE audit_head (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    seq     INTEGER NOT NULL,
    hash    BLOB
);
INSERT INTO audit_head (id, seq, hash) SELECT 1, COALESCE(MAX(seq), 0), NULL FROM audit;

CREATE TABLE audit_seals (
    seq         INTEGER PRIMARY KEY NOT NULL,
    hash        BLOB NOT NULL,
    -- ECDSA P-256 SHA-256 (DER) by the HSM key "strongroom-audit" over seq (8 bytes,
    -- big-endian) followed by hash.
    signature   BLOB NOT NULL,
    sealed_at   INTEGER NOT NULL
);
