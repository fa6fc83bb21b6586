//! Configuration documents of the secrets engines (database connections and roles,
//! certificate roles): JSON bodies by kind and name, with an HSM-sealed secret beside them.

use super::{Store, StoreError};

/// One stored configuration document.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct EngineConfig {
    pub(crate) name: String,
    pub(crate) body: String,
    /// The document's secret, sealed under the HSM's key-encryption key.
    pub(crate) sealed: Option<Vec<u8>>,
    /// A replacement secret being rotated in: set before the external system is changed,
    /// promoted once it is, so a crash in between cannot lose the only working secret.
    pub(crate) pending: Option<Vec<u8>>,
}

impl Store {
    /// Creates or replaces a document. `sealed: None` keeps the stored secret.
    pub(crate) async fn put_engine_config(
        &self,
        kind: &str,
        name: &str,
        body: &str,
        sealed: Option<&[u8]>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO engine_configs (kind, name, body, sealed, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body, \
             sealed = COALESCE(excluded.sealed, engine_configs.sealed), updated_at = excluded.updated_at",
        )
        .bind(kind)
        .bind(name)
        .bind(body)
        .bind(sealed)
        .bind(now)
        .execute(&mut *self.write.get().await?)
        .await?;
        Ok(())
    }

    pub(crate) async fn engine_config(
        &self,
        kind: &str,
        name: &str,
    ) -> Result<Option<EngineConfig>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT name, body, sealed, pending FROM engine_configs WHERE kind = $1 AND name = $2",
        )
        .bind(kind)
        .bind(name)
        .fetch_optional(&mut *self.read.get().await?)
        .await?)
    }

    /// Every document of a kind, by name.
    pub(crate) async fn engine_configs(&self, kind: &str) -> Result<Vec<EngineConfig>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT name, body, sealed, pending FROM engine_configs WHERE kind = $1 ORDER BY name",
        )
        .bind(kind)
        .fetch_all(&mut *self.read.get().await?)
        .await?)
    }

    pub(crate) async fn delete_engine_config(
        &self,
        kind: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM engine_configs WHERE kind = $1 AND name = $2")
            .bind(kind)
            .bind(name)
            .execute(&mut *self.write.get().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records (or, with `None`, clears) a secret being rotated in.
    pub(crate) async fn set_pending_secret(
        &self,
        kind: &str,
        name: &str,
        pending: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE engine_configs SET pending = $1 WHERE kind = $2 AND name = $3")
            .bind(pending)
            .bind(kind)
            .bind(name)
            .execute(&mut *self.write.get().await?)
            .await?;
        Ok(())
    }

    /// Makes the pending secret the current one, replacing `body` too (it may record when).
    pub(crate) async fn promote_pending_secret(
        &self,
        kind: &str,
        name: &str,
        body: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE engine_configs SET sealed = pending, pending = NULL, body = $1, updated_at = $2 \
             WHERE kind = $3 AND name = $4 AND pending IS NOT NULL",
        )
        .bind(body)
        .bind(now)
        .bind(kind)
        .bind(name)
        .execute(&mut *self.write.get().await?)
        .await?;
        Ok(())
    }
}
