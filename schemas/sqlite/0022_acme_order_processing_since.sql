-- When a replica claimed an order for finalizing. One that stops before it finishes leaves
-- the order processing: once that is older than any finalize may take, another finalize
-- may claim it again.
ALTER TABLE acme_orders ADD COLUMN processing_since BIGINT;
