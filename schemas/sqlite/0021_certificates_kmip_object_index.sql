-- A KMIP Revoke finds the certificate of the object it revokes by this column (the
-- object's certificate may be gone already: a destroyed object keeps no material).
CREATE INDEX certificates_kmip_object ON certificates (kmip_object) WHERE kmip_object IS NOT NULL;
