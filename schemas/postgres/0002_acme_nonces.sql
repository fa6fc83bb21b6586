-- ACME nonces (RFC 8555 §6.5) handed out and not used yet, so that a nonce one replica
-- issued is accepted once by any replica. (An SQLite store has one process, which keeps
-- them in memory.)
CREATE TABLE acme_nonces (
    nonce       TEXT PRIMARY KEY NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX acme_nonces_expiry ON acme_nonces (expires_at);
