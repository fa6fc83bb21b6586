-- ACME profiles: the certificate profile an order asked for (or the default one), and the
-- profiles an External Account Binding key allows (a JSON array; NULL: all).
ALTER TABLE acme_orders ADD COLUMN profile TEXT;
ALTER TABLE acme_eab_keys ADD COLUMN profiles TEXT;
