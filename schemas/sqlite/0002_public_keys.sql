-- Public keys are not secret: their SubjectPublicKeyInfo is kept in clear. Private keys
-- live in the HSM as non-extractable token objects whose CKA_ID is the object's id.
ALTER TABLE objects ADD COLUMN public_material BLOB;
