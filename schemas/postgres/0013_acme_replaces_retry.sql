-- An order that failed no longer replaces its certificate (RFC 9773 §5): a later order
-- may name the same certificate, so `replaces` is no longer unique.
DROP INDEX acme_orders_replaces;
CREATE INDEX acme_orders_replaces ON acme_orders (replaces) WHERE replaces IS NOT NULL;
