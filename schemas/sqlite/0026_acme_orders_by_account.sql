-- An account's open orders are counted at each new order (`[acme] max_open_orders`), and
-- its orders listed.
CREATE INDEX acme_orders_account_status ON acme_orders (account_id, status);
