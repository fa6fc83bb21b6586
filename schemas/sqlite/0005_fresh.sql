-- Fresh (KMIP 1.4 §3.34): true until the object's key material is first served to a client.
ALTER TABLE objects ADD COLUMN fresh INTEGER NOT NULL DEFAULT 1;
