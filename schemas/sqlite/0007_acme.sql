-- ACME (RFC 8555): accounts (identified by their key's RFC 7638 thumbprint), orders, the
-- authorizations an order needs and their challenges. Issued certificates go to the
-- `certificates` table like the API's, with role 'acme'.

CREATE TABLE acme_accounts (
    id          TEXT PRIMARY KEY NOT NULL,
    thumbprint  TEXT NOT NULL UNIQUE,
    -- The account key as a JWK (JSON).
    jwk         TEXT NOT NULL,
    -- valid, deactivated or revoked.
    status      TEXT NOT NULL,
    -- JSON array of contact URLs.
    contact     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE acme_orders (
    id                  TEXT PRIMARY KEY NOT NULL,
    account_id          TEXT NOT NULL REFERENCES acme_accounts (id),
    -- pending, ready, processing, valid or invalid.
    status              TEXT NOT NULL,
    -- JSON array of {"type", "value"} identifiers.
    identifiers         TEXT NOT NULL,
    expires_at          INTEGER NOT NULL,
    -- JSON problem document when invalid.
    error               TEXT,
    certificate_serial  TEXT REFERENCES certificates (serial),
    created_at          INTEGER NOT NULL
);
CREATE INDEX acme_orders_certificate ON acme_orders (certificate_serial);

CREATE TABLE acme_authorizations (
    id                  TEXT PRIMARY KEY NOT NULL,
    order_id            TEXT NOT NULL REFERENCES acme_orders (id),
    account_id          TEXT NOT NULL REFERENCES acme_accounts (id),
    identifier_type     TEXT NOT NULL,
    identifier_value    TEXT NOT NULL,
    -- pending, valid, invalid, deactivated, expired or revoked.
    status              TEXT NOT NULL,
    expires_at          INTEGER NOT NULL
);
CREATE INDEX acme_authorizations_order ON acme_authorizations (order_id);

CREATE TABLE acme_challenges (
    id              TEXT PRIMARY KEY NOT NULL,
    authz_id        TEXT NOT NULL REFERENCES acme_authorizations (id),
    -- http-01, dns-01 or tls-alpn-01.
    type            TEXT NOT NULL,
    token           TEXT NOT NULL,
    -- pending, processing, valid or invalid.
    status          TEXT NOT NULL,
    validated_at    INTEGER,
    -- JSON problem document when invalid.
    error           TEXT
);
CREATE INDEX acme_challenges_authz ON acme_challenges (authz_id);
