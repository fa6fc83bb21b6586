-- Root rotation: besides intermediates, ca_issuers holds newer roots (self-signed; parent
-- is their own id) and cross-certificates (a newer root's key certified by an older root;
-- certifies names that root). parent is the id of the signing authority ('root' is
-- DATA/ca.crt).
ALTER TABLE ca_issuers ADD COLUMN kind TEXT NOT NULL DEFAULT 'intermediate';
ALTER TABLE ca_issuers ADD COLUMN parent TEXT NOT NULL DEFAULT 'root';
ALTER TABLE ca_issuers ADD COLUMN certifies TEXT;
