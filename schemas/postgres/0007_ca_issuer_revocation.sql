-- A revoked intermediate issues no more, is no longer offered to complete client chains,
-- and client certificates under it are refused; its certificate is also recorded in
-- `certificates` (issuer: its root) so the root's CRL and OCSP answers list it.
ALTER TABLE ca_issuers ADD COLUMN revoked_at BIGINT;
