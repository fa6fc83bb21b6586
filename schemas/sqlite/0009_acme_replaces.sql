-- ACME Renewal Information (RFC 9773): the certificate an order replaces, as its ARI
-- CertID; an order may replace a certificate once.
ALTER TABLE acme_orders ADD COLUMN replaces TEXT;
CREATE UNIQUE INDEX acme_orders_replaces ON acme_orders (replaces) WHERE replaces IS NOT NULL;
