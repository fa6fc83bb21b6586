-- When a challenge's validation started. A process that stops mid-validation leaves its
-- challenge processing: once that is older than any validation may take, the client may
-- start it again, and a late result of the old validation is not recorded over the new.
ALTER TABLE acme_challenges ADD COLUMN processing_since BIGINT;
