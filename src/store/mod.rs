//! The store: the only code that writes SQL. SQLite (WAL, synchronous=FULL so an
//! acknowledged write survives power loss) with one writer connection, so transactions
//! never fail on lock upgrades, and a pool of readers. New objects and audit events go
//! through the group-committing writer task (`writer.rs`).

mod acme;
mod audit;
mod engines;
mod error;
mod grants;
mod leases;
mod objects;
mod tokens;
mod writer;

pub(crate) use acme::{AccountRow, AuthzRow, ChallengeRow, EabKeyRow, NewOrder, OrderRow};
pub(crate) use audit::SealRow;
pub(crate) use engines::EngineConfig;
pub(crate) use error::StoreError;
pub(crate) use leases::{CertificateRow, LeaseRow};
pub(crate) use objects::{match_key, DateColumn, LocateQuery, NewObject, ObjectRow};
pub(crate) use tokens::TokenRow;
pub(crate) use writer::{audit_hash, AuditEvent, GENESIS};

/// Lease states as stored.
pub(crate) mod lease_state {
    pub(crate) use super::leases::{ACTIVE, REVOKED};
}

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Handle on the database; cheap to clone.
#[derive(Clone)]
pub(crate) struct Store {
    read: SqlitePool,
    write: SqlitePool,
    writer: tokio::sync::mpsc::Sender<writer::Job>,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and runs the migrations.
    pub(crate) async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let write = SqlitePoolOptions::new().max_connections(1).connect_with(opts.clone()).await?;
        sqlx::migrate!("./schemas/sqlite").run(&write).await?;
        let read =
            SqlitePoolOptions::new().max_connections(4).connect_with(opts.read_only(true)).await?;
        let writer = writer::start(write.clone());
        Ok(Store { read, write, writer })
    }
}

impl Store {
    /// Writes a consistent copy of the whole database to `path` (SQLite `VACUUM INTO`),
    /// also while the service runs. Key material in it stays sealed by the HSM.
    pub(crate) async fn backup_to(&self, path: &Path) -> Result<(), StoreError> {
        sqlx::query("VACUUM INTO ?")
            .bind(path.to_string_lossy().into_owned())
            .execute(&self.read)
            .await?;
        Ok(())
    }

    /// One sealed object (id and sealed bytes), to check a backup opens with this HSM.
    pub(crate) async fn any_sealed_object(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, sealed_material FROM objects WHERE sealed_material IS NOT NULL LIMIT 1",
        )
        .fetch_optional(&self.read)
        .await?)
    }

    /// Closes the pools (before the database file is replaced).
    pub(crate) async fn close(&self) {
        self.flush().await;
        self.read.close().await;
        self.write.close().await;
    }

    /// Checks the database answers (for /health).
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
