//! Reading the audit hash chain and its seals (written by `writer.rs`).

use super::{Store, StoreError};

/// An audit record with its chain hash (`None` for records older than the chain), as the
/// API's audit query and the export show it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub(crate) struct ChainRow {
    pub(crate) seq: i64,
    pub(crate) at: i64,
    pub(crate) principal: String,
    pub(crate) protocol: String,
    pub(crate) operation: String,
    pub(crate) object_id: Option<String>,
    pub(crate) outcome: String,
    pub(crate) detail: Option<String>,
    #[serde(serialize_with = "hex_opt")]
    pub(crate) hash: Option<Vec<u8>>,
}

fn hex_opt<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

impl ChainRow {
    /// The fields the chain hash covers, in its order.
    pub(crate) fn chain_fields(&self) -> [Option<&str>; 6] {
        [
            Some(self.principal.as_str()),
            Some(self.protocol.as_str()),
            Some(self.operation.as_str()),
            self.object_id.as_deref(),
            Some(self.outcome.as_str()),
            self.detail.as_deref(),
        ]
    }
}

/// An HSM signature over the chain head at `seq`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct SealRow {
    pub(crate) seq: i64,
    pub(crate) hash: Vec<u8>,
    pub(crate) signature: Vec<u8>,
    pub(crate) sealed_at: i64,
}

impl Store {
    /// Audit records after `after_seq`, oldest first, optionally only one principal's or
    /// one outcome's; at most `limit`.
    pub(crate) async fn audit_events(
        &self,
        after_seq: i64,
        principal: Option<&str>,
        outcome: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ChainRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT seq, at, principal, protocol, operation, object_id, outcome, detail, hash \
             FROM audit WHERE seq > $1 AND ($2 IS NULL OR principal = $3) \
             AND ($4 IS NULL OR outcome = $5) ORDER BY seq LIMIT $6",
        )
        .bind(after_seq)
        .bind(principal)
        .bind(principal)
        .bind(outcome)
        .bind(outcome)
        .bind(limit)
        .fetch_all(&mut *self.read.get().await?)
        .await?)
    }

    /// When and by whom `object_id`'s material was last served over the API (a TDE key
    /// read), from the audit trail.
    pub(crate) async fn last_api_read(
        &self,
        object_id: &str,
    ) -> Result<Option<(i64, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT at, principal FROM audit WHERE object_id = $1 AND protocol = 'api' \
             AND outcome = 'ok' AND operation LIKE 'GET %/data/%' ORDER BY seq DESC LIMIT 1",
        )
        .bind(object_id)
        .fetch_optional(&mut *self.read.get().await?)
        .await?)
    }

    /// The chain head: the last chained record's sequence number and hash.
    pub(crate) async fn audit_head(&self) -> Result<(i64, Option<Vec<u8>>), StoreError> {
        Ok(sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *self.read.get().await?)
            .await?)
    }

    pub(crate) async fn audit_seals(&self) -> Result<Vec<SealRow>, StoreError> {
        Ok(sqlx::query_as("SELECT seq, hash, signature, sealed_at FROM audit_seals ORDER BY seq")
            .fetch_all(&mut *self.read.get().await?)
            .await?)
    }

    pub(crate) async fn insert_audit_seal(&self, seal: &SealRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_seals (seq, hash, signature, sealed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (seq) DO NOTHING",
        )
        .bind(seal.seq)
        .bind(&seal.hash)
        .bind(&seal.signature)
        .bind(seal.sealed_at)
        .execute(&mut *self.write.get().await?)
        .await?;
        Ok(())
    }

    /// Counts for the metrics gauges, in one read.
    pub(crate) async fn gauges(&self) -> Result<Gauges, StoreError> {
        Ok(sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM objects) AS objects, \
             (SELECT COUNT(*) FROM leases WHERE state = 'active') AS leases_active, \
             (SELECT COUNT(*) FROM certificates) AS certificates, \
             (SELECT COUNT(*) FROM certificates WHERE revoked_at IS NOT NULL) AS revoked, \
             (SELECT COUNT(*) FROM acme_accounts) AS acme_accounts, \
             (SELECT seq FROM audit_head WHERE id = 1) AS audit_head, \
             (SELECT MAX(sealed_at) FROM audit_seals) AS last_seal",
        )
        .fetch_one(&mut *self.read.get().await?)
        .await?)
    }
}

/// What `/metrics` reports from the store.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Gauges {
    pub(crate) objects: i64,
    pub(crate) leases_active: i64,
    pub(crate) certificates: i64,
    pub(crate) revoked: i64,
    pub(crate) acme_accounts: i64,
    pub(crate) audit_head: i64,
    pub(crate) last_seal: Option<i64>,
}
