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
        let mut tx = self.write.begin().await?;
        for op in operations {
            sqlx::query(
                "INSERT OR REPLACE INTO grants (object_id, principal, operation, granted_by, granted_at) \
                 VALUES (?, ?, ?, ?, ?)",
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
        let mut tx = self.write.begin().await?;
        for op in operations {
            removed += sqlx::query(
                "DELETE FROM grants WHERE object_id = ? AND principal = ? AND operation = ?",
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
            "SELECT 1 FROM grants WHERE object_id = ? AND principal = ? AND operation = ?",
        )
        .bind(object_id)
        .bind(principal)
        .bind(operation)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.is_some())
    }
}
