-- Every start links certificates Certify issued before `kmip_object` existed to their
-- object; this index holds only those (Certify records the object now), so the search
-- does not read the whole table, which may hold millions of certificates.
CREATE INDEX certificates_unlinked ON certificates (serial)
    WHERE role = 'kmip-certify' AND kmip_object IS NULL;
