-- The last CRL number each issuer used (RFC 5280 §5.2.3: monotonically increasing per
-- issuer). Kept in the store so that replicas sharing it never reuse or go back on a
-- number, and two CRLs built in one millisecond still differ.
CREATE TABLE crl_numbers (
    issuer  TEXT PRIMARY KEY NOT NULL,
    number  BIGINT NOT NULL
);
