-- The CA's issuing intermediates (the root is DATA/ca.crt). The last created (highest
-- position) is the default issuer; older ones stay to answer for what they issued (CRLs,
-- OCSP). Two replicas rotating at once cannot both take one position: one fails.
CREATE TABLE ca_issuers (
    id          TEXT PRIMARY KEY NOT NULL,
    position    BIGINT NOT NULL UNIQUE,
    -- Label of the issuer's key pair in the HSM token.
    key_label   TEXT NOT NULL,
    cert_pem    TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Which CA certificate signed each certificate; rows from before the hierarchy were
-- signed by the root.
ALTER TABLE certificates ADD COLUMN issuer TEXT NOT NULL DEFAULT 'root';
CREATE INDEX certificates_issuer_revoked ON certificates (issuer, revoked_at);
