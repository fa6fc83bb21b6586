-- Revoking a token revokes the tokens it created and the leases issued to them (as in
-- Vault): both are found by who they belong to.
CREATE INDEX leases_issued_to ON leases (issued_to) WHERE state != 'revoked';
CREATE INDEX tokens_created_by ON tokens (created_by) WHERE revoked_at IS NULL;
