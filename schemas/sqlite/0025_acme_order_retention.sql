-- When an order's certificate expires. Once both it and the order's own expiry are older
-- than `[acme] order_retention`, the order goes with its authorizations and challenges.
ALTER TABLE acme_orders ADD COLUMN certificate_not_after BIGINT;
UPDATE acme_orders SET certificate_not_after =
    (SELECT not_after FROM certificates WHERE certificates.serial = acme_orders.certificate_serial)
    WHERE certificate_serial IS NOT NULL;
-- A certificate kept on its order only (a no-store profile) has its expiry in its PEM,
-- which SQL cannot read: kept as if it were valid for 400 days.
UPDATE acme_orders SET certificate_not_after = created_at + 400 * 86400
    WHERE certificate_pem IS NOT NULL AND certificate_not_after IS NULL;
CREATE INDEX acme_orders_expires ON acme_orders (expires_at);
