-- Nonces are written on every ACME request (one issued, one used up). As an unlogged
-- table their commits wait for no WAL flush; what a crash of PostgreSQL costs is that
-- every outstanding nonce is gone (the table comes back empty), so clients get badNonce
-- and retry with a fresh one (RFC 8555 §6.5), and no used nonce can come back. A standby
-- has the table empty too.
ALTER TABLE acme_nonces SET UNLOGGED;
