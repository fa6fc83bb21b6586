-- Archive and Recover (KMIP 1.4 §4.22, §4.23): archived objects leave on-line storage.
ALTER TABLE objects ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
