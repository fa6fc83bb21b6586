//! API tokens (stored as SHA-256 digests) and named ACL policies.

use super::{Store, StoreError};

/// A stored token, without the token itself.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct TokenRow {
    pub(crate) accessor: String,
    pub(crate) display_name: String,
    /// JSON array of policy names.
    pub(crate) policies: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) created_by: String,
    pub(crate) revoked_at: Option<i64>,
}

impl TokenRow {
    pub(crate) fn policy_names(&self) -> Vec<String> {
        serde_json::from_str(&self.policies).unwrap_or_default()
    }

    /// Whether the token may still be used at `now`.
    pub(crate) fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// `SELECT` list of [`TokenRow`]; a macro so queries stay `&'static str`.
macro_rules! token_columns {
    () => {
        "SELECT accessor, display_name, policies, created_at, expires_at, created_by, revoked_at \
         FROM tokens "
    };
}

impl Store {
    /// Stores a new token by its digest.
    pub(crate) async fn insert_token(&self, row: &TokenRow, hash: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tokens (accessor, hash, display_name, policies, created_at, expires_at, \
             created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.accessor)
        .bind(hash)
        .bind(&row.display_name)
        .bind(&row.policies)
        .bind(row.created_at)
        .bind(row.expires_at)
        .bind(&row.created_by)
        .execute(&mut *self.write.get().await?)
        .await?;
        Ok(())
    }

    /// The token with this digest, live or not.
    pub(crate) async fn token_by_hash(&self, hash: &[u8]) -> Result<Option<TokenRow>, StoreError> {
        Ok(sqlx::query_as(concat!(token_columns!(), "WHERE hash = $1"))
            .bind(hash)
            .fetch_optional(&mut *self.read.get().await?)
            .await?)
    }

    /// Whether any live token exists (if none, start-up writes a new admin token).
    pub(crate) async fn has_tokens(&self) -> Result<bool, StoreError> {
        let n: (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM tokens WHERE revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(crate::util::now())
        .fetch_one(&mut *self.read.get().await?)
        .await?;
        Ok(n.0 > 0)
    }

    /// Revokes a token; false when there was no live token with this accessor.
    pub(crate) async fn revoke_token(&self, accessor: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE accessor = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(accessor)
        .execute(&mut *self.write.get().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes a token and, as in Vault, every live token it created, theirs, and so on;
    /// returns the accessors revoked (none when the token was not live).
    pub(crate) async fn revoke_token_tree(
        &self,
        accessor: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut revoked = Vec::new();
        if !self.revoke_token(accessor, now).await? {
            return Ok(revoked);
        }
        let mut next = vec![accessor.to_owned()];
        while let Some(parent) = next.pop() {
            let children: Vec<(String,)> = sqlx::query_as(
                "UPDATE tokens SET revoked_at = $1 WHERE created_by = $2 AND revoked_at IS NULL \
                 RETURNING accessor",
            )
            .bind(now)
            .bind(format!("token:{parent}"))
            .fetch_all(&mut *self.write.get().await?)
            .await?;
            next.extend(children.into_iter().map(|(a,)| a));
            revoked.push(parent);
        }
        Ok(revoked)
    }

    /// Revokes, at `now`, every live token whose creator is revoked (a tree walk that
    /// stopped half-way, a child made while its parent was being revoked); their
    /// accessors.
    pub(crate) async fn revoke_orphaned_tokens(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let mut revoked = Vec::new();
        // One generation a statement; a chain deeper than this is taken at the next pass.
        for _ in 0..64 {
            let found: Vec<(String,)> = sqlx::query_as(
                "UPDATE tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND created_by IN \
                 (SELECT 'token:' || accessor FROM tokens WHERE revoked_at IS NOT NULL) \
                 RETURNING accessor",
            )
            .bind(now)
            .fetch_all(&mut *self.write.get().await?)
            .await?;
            if found.is_empty() {
                break;
            }
            revoked.extend(found.into_iter().map(|(a,)| a));
        }
        Ok(revoked)
    }

    pub(crate) async fn put_policy(
        &self,
        name: &str,
        body: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO policies (name, body, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(name)
            .bind(body)
            .bind(now)
            .execute(&mut *self.write.get().await?)
            .await?;
        Ok(())
    }

    pub(crate) async fn policy(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT body FROM policies WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *self.read.get().await?)
            .await?;
        Ok(row.map(|r| r.0))
    }

    pub(crate) async fn policy_names(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT name FROM policies ORDER BY name")
            .fetch_all(&mut *self.read.get().await?)
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    pub(crate) async fn delete_policy(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM policies WHERE name = $1")
            .bind(name)
            .execute(&mut *self.write.get().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
