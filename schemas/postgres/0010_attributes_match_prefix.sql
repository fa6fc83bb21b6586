-- An index entry on PostgreSQL holds at most about 2.7 kB, and an attribute's canonical
-- text (a Name, a custom attribute's text, or bytes in hex) may be longer: such values
-- had to be refused. The index now keeps the first 200 characters; a lookup compares
-- those through the index and then the whole value (see `where_clause`).
DROP INDEX attributes_match;
CREATE INDEX attributes_match ON attributes (name, substr(match_key, 1, 200), object_id);
