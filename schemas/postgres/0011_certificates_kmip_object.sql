-- The KMIP Certificate object that Certify (or Re-certify) made for a certificate. Only a
-- Revoke of that object revokes the certificate itself: anyone may Register a copy of a
-- certificate, and revoking the copy must not put the original on the CRL.
ALTER TABLE certificates ADD COLUMN kmip_object TEXT;
