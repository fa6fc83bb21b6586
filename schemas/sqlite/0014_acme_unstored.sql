-- Certificates of ACME profiles with `store = false` are not recorded in `certificates`
-- (no inventory, no revocation, nothing for CRLs); the order keeps the certificate, its
-- serial and issuer only so its client can download it.
ALTER TABLE acme_orders ADD COLUMN unstored_serial TEXT;
ALTER TABLE acme_orders ADD COLUMN certificate_pem TEXT;
ALTER TABLE acme_orders ADD COLUMN certificate_issuer TEXT;
CREATE INDEX acme_orders_unstored ON acme_orders (unstored_serial);
