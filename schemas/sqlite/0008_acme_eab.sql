-- External Account Binding keys for ACME (RFC 8555 §7.3.4), created through the admin API.
-- The HMAC key is stored sealed by the HSM's key-encryption key (associated data
-- "acme-eab/ID"); a key binds one account, once.
CREATE TABLE acme_eab_keys (
    id          TEXT PRIMARY KEY NOT NULL,
    sealed_key  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    account_id  TEXT REFERENCES acme_accounts (id),
    bound_at    INTEGER
);
