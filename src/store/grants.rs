//! Access grants: which identity may run which operation on another owner's object.

use super::{Store, StoreError};

impl Store {
    /// Grants `principal` the named operations on `object_id`.
    pub(crate) async fn grant(
        &self,
        object_id: &str,
        principal: &str,
        operations: &[String],
        by: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        for op in operations {
            sqlx::query(
                "INSERT INTO grants (object_id, principal, operation, granted_by, granted_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (object_id, principal, operation) \
                 DO UPDATE SET granted_by = excluded.granted_by, granted_at = excluded.granted_at",
            )
            .bind(object_id)
            .bind(principal)
            .bind(op)
            .bind(by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Withdraws grants; returns how many there were.
    pub(crate) async fn revoke_grants(
        &self,
        object_id: &str,
        principal: &str,
        operations: &[String],
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        for op in operations {
            removed += sqlx::query(
                "DELETE FROM grants WHERE object_id = $1 AND principal = $2 AND operation = $3",
            )
            .bind(object_id)
            .bind(principal)
            .bind(op)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Whether `principal` holds a grant for `operation` on `object_id`.
    pub(crate) async fn is_granted(
        &self,
        object_id: &str,
        principal: &str,
        operation: &str,
    ) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM grants WHERE object_id = $1 AND principal = $2 AND operation = $3",
        )
        .bind(object_id)
        .bind(principal)
        .bind(operation)
        .fetch_optional(&mut *self.read.get().await?)
        .await?;
        Ok(row.is_some())
    }
}
